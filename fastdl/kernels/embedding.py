"""Token-id kernels: embedding gather and its scatter-add gradient, one-hot detection.

Notation
--------
N, T   batch size and time steps (any leading shape ``S`` works: ``(N,)``, ``(N, T)``, ...)
V      vocabulary size
E      embedding size

``embedding_forward(w, ids)`` is ``w[ids]``; ``embedding_backward(ids, dout, V)`` is the
gradient with respect to ``w``: row ``v`` sums ``dout`` over every position holding id ``v``.
``onehot_ids(x)`` returns the ids ``x`` encodes when every row of ``x`` is exactly one-hot
(one 1, all else 0), else None; the recurrent ops use it to turn ``x @ W_ih`` into a row
gather, which is exact.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels._jit import jit, pair

__all__ = ["embedding_forward", "embedding_backward", "onehot_ids"]


def embedding_forward_np(w, ids):
    """Look up embeddings (NumPy twin).

    Parameters
    ----------
    w : ndarray, shape (V, E), float32 or float64
    ids : ndarray, shape S, integer in ``[0, V)``

    Returns
    -------
    ndarray, shape S + (E,), dtype of ``w``
    """
    return w[ids]


def embedding_backward_np(ids, dout, vocab_size):
    """Gradient of :func:`embedding_forward_np` with respect to ``w`` (NumPy twin).

    Parameters
    ----------
    ids : ndarray, shape S, integer in ``[0, V)``
    dout : ndarray, shape S + (E,)
    vocab_size : int
        V.

    Returns
    -------
    dw : ndarray, shape (V, E), dtype of ``dout``
    """
    e = dout.shape[-1]
    dw = np.zeros((vocab_size, e), dout.dtype)
    np.add.at(dw, ids.reshape(-1), dout.reshape(-1, e))
    return dw


def onehot_ids_np(x):
    """The ids a one-hot array encodes, or None if it is not exactly one-hot (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape S + (V,), float

    Returns
    -------
    ndarray, shape S, int64; or None
    """
    ids = x.argmax(axis=-1)
    ones = np.take_along_axis(x, ids[..., None], axis=-1)
    if not np.all(ones == 1) or np.count_nonzero(x) != ids.size:
        return None
    return ids


@jit
def _gather(w, ids, out):
    for r in range(ids.shape[0]):
        src, dst = w[ids[r]], out[r]
        for k in range(w.shape[1]):
            dst[k] = src[k]


@jit
def _scatter_add(ids, dout, dw):
    for r in range(ids.shape[0]):
        src, dst = dout[r], dw[ids[r]]
        for k in range(dw.shape[1]):
            dst[k] += src[k]


@jit
def _onehot(x, ids):
    for r in range(x.shape[0]):
        row = x[r]
        hot = -1
        for k in range(x.shape[1]):
            v = row[k]
            if v == 1 and hot < 0:
                hot = k
            elif v != 0:
                return False
        if hot < 0:
            return False
        ids[r] = hot
    return True


def embedding_forward_nb(w, ids):
    """numba twin of :func:`embedding_forward_np`."""
    flat = np.ascontiguousarray(ids).reshape(-1)
    out = np.empty((flat.size, w.shape[1]), w.dtype)
    _gather(w, flat, out)
    return out.reshape(ids.shape + (w.shape[1],))


def embedding_backward_nb(ids, dout, vocab_size):
    """numba twin of :func:`embedding_backward_np`."""
    e = dout.shape[-1]
    dw = np.zeros((vocab_size, e), dout.dtype)
    _scatter_add(
        np.ascontiguousarray(ids).reshape(-1), np.ascontiguousarray(dout).reshape(-1, e), dw
    )
    return dw


def onehot_ids_nb(x):
    """numba twin of :func:`onehot_ids_np` (stops at the first row that is not one-hot)."""
    ids = np.empty(x.shape[:-1], np.int64)
    ok = _onehot(np.ascontiguousarray(x).reshape(-1, x.shape[-1]), ids.reshape(-1))
    return ids if ok else None


embedding_forward = pair(embedding_forward_np, embedding_forward_nb)
embedding_backward = pair(embedding_backward_np, embedding_backward_nb)
onehot_ids = pair(onehot_ids_np, onehot_ids_nb)
