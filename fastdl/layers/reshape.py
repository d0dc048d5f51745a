"""Reshape as a layer: ``(N, d1·d2·...) → (N, d1, d2, ...)``, e.g. a dense code back to images."""

from __future__ import annotations

import math

import numpy as np

from fastdl._checks import positive_int
from fastdl.layers.base import Layer
from fastdl.ops.reshape import Reshape as ReshapeOp

__all__ = ["Reshape"]


class Reshape(Layer):
    """Give each example the shape ``target_shape``, in C order (Keras's ``Reshape``).

    The inverse of :class:`Flatten`: ``Reshape((C, H, W))`` after a ``Dense(C·H·W)`` makes
    NCHW images of its output, as PyTorch's ``nn.Unflatten(1, (C, H, W))``. No ``-1``: every
    size is given, so a wrong input size is an error rather than a different shape.

    Parameters
    ----------
    target_shape : tuple of int
        The shape of one example after the layer, e.g. ``(7, 7, 7)``.

    Shape
    -----
    - Input: ``(N, *)`` whose axes after the first hold ``prod(target_shape)`` numbers.
    - Output: ``(N, *target_shape)``.

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> fd.Reshape((2, 3, 4)).forward(np.zeros((5, 24), dtype=np.float32)).shape
    (5, 2, 3, 4)
    """

    def __init__(self, target_shape) -> None:
        super().__init__()
        if isinstance(target_shape, (int, np.integer)) and not isinstance(target_shape, bool):
            target_shape = (target_shape,)
        if not isinstance(target_shape, (tuple, list)) or not target_shape:
            raise ValueError(
                f"Reshape: target_shape must be a non-empty tuple of positive ints, "
                f"got {target_shape!r}"
            )
        self.target_shape = tuple(positive_int("Reshape", "target_shape", d) for d in target_shape)
        self.input_ndim: int | None = None  # set up: the number of axes of its input

    def get_config(self) -> dict:
        return {"target_shape": self.target_shape}

    def _check_input(self, x: np.ndarray) -> None:
        super()._check_input(x)
        size = math.prod(self.target_shape)
        if x.ndim < 2 or math.prod(x.shape[1:]) != size:
            raise ValueError(
                f"Reshape: expected input (N, ...) holding {size} numbers per example for "
                f"target_shape {self.target_shape}, got shape {x.shape}"
            )

    def _setup_layer(self, x: np.ndarray) -> None:
        self.input_ndim = x.ndim
        self.operations = [ReshapeOp(self.target_shape)]

    def reset(self) -> None:
        super().reset()
        self.input_ndim = None
