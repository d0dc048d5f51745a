"""Central-difference gradient checks for :mod:`fastdl.autodiff`: the oracle for its tests.

A finite difference needs only the forward pass, so it checks the hand-written backward
closures independently: ``df/dx[i] ≈ (f(x + ε eᵢ) − f(x − ε eᵢ)) / 2ε``, with an error of order
``ε²`` (truncation) plus ``machine epsilon · |f| / ε`` (rounding). In float64 with ``ε = 1e-6``
both are far below the default tolerance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fastdl.autodiff.tensor import Tensor

__all__ = ["numerical_grad", "check_grad"]


def numerical_grad(f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6):
    """Central-difference gradient of a scalar function of one array.

    Parameters
    ----------
    f : callable, ndarray of shape S → float
    x : array_like, shape S
        Not modified (a float64 copy is perturbed, one element at a time).
    eps : float, default 1e-6

    Returns
    -------
    ndarray, shape S, float64
    """
    x = np.array(x, dtype=np.float64)
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        f_plus = f(x)
        x[i] = saved - eps
        f_minus = f(x)
        x[i] = saved
        grad[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def check_grad(
    f: Callable[..., Tensor],
    *inputs: np.ndarray,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-5,
) -> float:
    """Check the autodiff gradients of ``f`` against central differences, in float64.

    Parameters
    ----------
    f : callable, Tensors → Tensor with one element
        Called with one float64 :class:`Tensor` per input.
    *inputs : array_like
        The point at which to differentiate.
    eps : float, default 1e-6
        Finite-difference step.
    atol, rtol : float
        Each element must satisfy ``|analytic − numeric| <= atol + rtol · |numeric|``.

    Returns
    -------
    float
        The largest ``|analytic − numeric|`` over all inputs.

    Raises
    ------
    AssertionError
        Naming the input and the worst element, if any gradient is off.
    """
    arrays = [np.array(x, dtype=np.float64) for x in inputs]
    tensors = [Tensor(x) for x in arrays]
    f(*tensors).backward()
    worst = 0.0
    for k, t in enumerate(tensors):

        def f_k(xk: np.ndarray, k: int = k) -> float:
            args = [Tensor(xk if j == k else x) for j, x in enumerate(arrays)]
            return float(f(*args).value)

        numeric = numerical_grad(f_k, arrays[k], eps)
        analytic = t.grad if t.grad is not None else np.zeros_like(numeric)
        diff = np.abs(analytic - numeric)
        excess = diff - (atol + rtol * np.abs(numeric))
        if excess.size and excess.max() > 0:
            i = np.unravel_index(np.argmax(excess), excess.shape)
            raise AssertionError(
                f"gradient of input {k} (shape {arrays[k].shape}) is off at {i}: "
                f"analytic {analytic[i]!r}, numeric {numeric[i]!r}"
            )
        worst = max(worst, float(diff.max(initial=0.0)))
    return worst
