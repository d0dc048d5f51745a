"""Weight initialisers: ``"glorot"``, ``"he"`` and ``"standard"``.

All draw from a normal distribution with mean 0 and the standard deviation below, from the
layer's ``numpy.random.Generator`` (never the global one), directly in the layer's dtype:

- ``"glorot"``: ``sqrt(2 / (fan_in + fan_out))`` (Glorot & Bengio 2010; PyTorch's
  ``xavier_normal_``, Keras's ``glorot_normal``). The book passes the *variance*
  ``2 / (fan_in + fan_out)`` as numpy's ``scale``; fastdl uses its square root, as intended.
- ``"he"``: ``sqrt(2 / fan_in)`` (He et al. 2015; suits ReLU).
- ``"standard"``: 1 (the book's default).

For a dense layer ``fan_in = D`` and ``fan_out = H``; for a convolution
``fan_in = C_in·KH·KW`` and ``fan_out = C_out·KH·KW``; for a transposed convolution the
other way round (``fan_in = C_out·KH·KW``, those of the convolution it is the transpose of,
as PyTorch and Keras count them).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["WEIGHT_INITS", "init_weights", "check_weight_init"]

WEIGHT_INITS = ("glorot", "he", "standard")


def check_weight_init(where: str, weight_init: str) -> str:
    """Return ``weight_init`` if it is known; otherwise raise ``ValueError`` naming ``where``."""
    if weight_init not in WEIGHT_INITS:
        raise ValueError(f"{where}: weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}")
    return weight_init


def init_weights(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
    weight_init: str,
    dtype: np.dtype,
) -> np.ndarray:
    """Draw a weight array.

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int
        Shape of the weight array, e.g. ``(D, H)`` or ``(C_out, C_in, KH, KW)``.
    fan_in, fan_out : int
    weight_init : {"glorot", "he", "standard"}
    dtype : float32 or float64

    Returns
    -------
    ndarray, shape ``shape``, dtype ``dtype``
    """
    check_weight_init("init_weights", weight_init)
    if weight_init == "glorot":
        std = math.sqrt(2.0 / (fan_in + fan_out))
    elif weight_init == "he":
        std = math.sqrt(2.0 / fan_in)
    else:
        std = 1.0
    w = rng.standard_normal(shape, dtype=np.dtype(dtype).type)
    w *= std
    return w
