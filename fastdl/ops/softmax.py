"""The arithmetic of softmax cross-entropy for :class:`fastdl.losses.SoftmaxCrossEntropy`.

Integer labels (the usual case) go through the kernels of :mod:`fastdl.kernels.softmax`; soft
or one-hot float labels are handled here in NumPy. Shapes: logits ``z`` ``(M, K)``; labels
``(M,)`` integers or ``(M, K)`` floats with rows summing to 1; ``M`` is ``N`` or ``N·T``.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels.softmax import log_softmax, softmax_ce_backward, softmax_ce_forward

__all__ = ["cross_entropy_forward", "cross_entropy_backward"]


def cross_entropy_forward(z: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over rows of ``−Σ_k target_k log softmax(z)_k``, and ``softmax(z)`` ``(M, K)``."""
    if np.issubdtype(target.dtype, np.integer):
        return softmax_ce_forward(z, target)
    log_p = log_softmax(z)
    loss = -(target * log_p).sum(dtype=np.float64) / z.shape[0]
    return float(loss), np.exp(log_p)


def cross_entropy_backward(p: np.ndarray, target: np.ndarray) -> np.ndarray:
    """d(mean cross-entropy)/dz ``(M, K)`` from the forward pass's probabilities ``p``."""
    if np.issubdtype(target.dtype, np.integer):
        return softmax_ce_backward(p, target)
    # d/dz of −Σ y log softmax(z) is p·Σy − y: exactly p − y only for rows summing to 1.
    grad = p * target.sum(axis=1, keepdims=True) - target
    grad *= 1.0 / p.shape[0]
    return grad
