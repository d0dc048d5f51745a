"""Softmax cross-entropy from logits with integer labels: forward (loss and probabilities), backward.

Notation
--------
M   rows: examples (``N``), or examples × time steps (``N·T``) for sequences
K   classes
z   logits ``(M, classes)``; y labels ``(M,)`` in ``[0, classes)``

For each row, with ``m = max_k z_k`` (so no ``exp`` can overflow)::

    log p_k = z_k − m − log Σ_j exp(z_j − m)          (log-softmax)
    loss    = −(1/M) Σ_rows log p_y                      (mean cross-entropy)
    dL/dz_k = (p_k − [k = y]) / M                        (its exact gradient)

The forward pass returns the loss and ``p``; the backward pass needs only ``p`` and ``y``.

The numba twin takes one ``exp`` per logit (``p = exp(z − m) / Σ``, the same number up to
rounding) and sums in float64, in one loop per row. numba's ``exp`` is a scalar call where
NumPy's is vectorised, so the loop wins while NumPy's fixed cost (a dozen array operations)
dominates, and loses beyond that: for logit arrays of more than ``LOOP_MAX_SIZE`` elements
the numba twin hands over to the NumPy twin (the crossing was measured with
``bench_softmax``; its docstring has the timings).
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels._jit import jit, pair

__all__ = ["softmax_ce_forward", "softmax_ce_backward", "log_softmax", "LOOP_MAX_SIZE"]

#: Largest logit array (M·K elements) for the compiled loop; larger ones use NumPy's vectorised exp.
LOOP_MAX_SIZE = 30_000


# -- NumPy twins -----------------------------------------------------------------------------


def log_softmax(z):
    """``log softmax(z)`` row by row, ``z − m − log Σ exp(z − m)``: ``(M, classes)`` → ``(M, classes)``."""
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_ce_forward_np(z, y):
    """Mean cross-entropy of softmax(z) against labels ``y``, and the probabilities (NumPy twin).

    Parameters
    ----------
    z : ndarray, shape (M, classes), float32 or float64
        Logits.
    y : ndarray, shape (M,), integer, values in [0, classes)

    Returns
    -------
    loss : float
    p : ndarray, shape (M, classes), dtype of ``z``
        ``softmax(z)`` row by row.
    """
    log_p = log_softmax(z)
    rows = np.arange(z.shape[0])
    loss = -log_p[rows, y].mean(dtype=np.float64)
    return float(loss), np.exp(log_p)


def softmax_ce_backward_np(p, y):
    """Gradient of the mean cross-entropy with respect to the logits (NumPy twin).

    Parameters
    ----------
    p : ndarray, shape (M, classes), float32 or float64
        The probabilities from the forward pass.
    y : ndarray, shape (M,), integer, values in [0, classes)

    Returns
    -------
    dz : ndarray, shape (M, classes), dtype of ``p``
        ``(p − onehot(y)) / M``.
    """
    m = p.shape[0]
    dz = p.copy()
    dz[np.arange(m), y] -= 1.0
    dz *= 1.0 / m
    return dz


# -- numba twins -----------------------------------------------------------------------------


@jit
def _forward_rows(z, y, p):
    """Fill ``p`` row by row; return the sum over rows of ``−log p_y`` (float64)."""
    k = z.shape[1]
    total = 0.0
    for r in range(z.shape[0]):
        row = z[r]
        out = p[r]
        top = row[0]
        for j in range(1, k):
            if row[j] > top:
                top = row[j]
        s = 0.0
        for j in range(k):
            e = np.exp(row[j] - top)
            out[j] = e
            s += e
        inv = 1.0 / s
        for j in range(k):
            out[j] = out[j] * inv
        total += np.log(s) - (row[y[r]] - top)
    return total


def softmax_ce_forward_nb(z, y):
    """numba twin of :func:`softmax_ce_forward_np` (which it calls above ``LOOP_MAX_SIZE``)."""
    if z.size > LOOP_MAX_SIZE:
        return softmax_ce_forward_np(z, y)
    p = np.empty(z.shape, dtype=z.dtype)
    total = _forward_rows(z, y, p)
    return total / z.shape[0], p


@jit
def _backward(p, y, one, scale):
    m, k = p.shape
    dz = np.empty((m, k), dtype=p.dtype)
    for r in range(m):
        for j in range(k):
            dz[r, j] = p[r, j] * scale
        dz[r, y[r]] = (p[r, y[r]] - one) * scale
    return dz


def softmax_ce_backward_nb(p, y):
    """numba twin of :func:`softmax_ce_backward_np`."""
    # Constants in p's dtype, so float32 arithmetic rounds as the NumPy twin's does.
    return _backward(p, y, p.dtype.type(1.0), p.dtype.type(1.0 / p.shape[0]))


softmax_ce_forward = pair(softmax_ce_forward_np, softmax_ce_forward_nb)
softmax_ce_backward = pair(softmax_ce_backward_np, softmax_ce_backward_nb)
