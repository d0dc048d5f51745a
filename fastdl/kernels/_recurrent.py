"""What the RNN, GRU and LSTM kernels share: the input projection, its gradients, the weight
gradients, and the per-thread partial sums.

Every recurrent kernel splits the batch into one chunk of rows per thread
(:mod:`fastdl.kernels._threads`); each thread runs the whole time loop on its rows (no
synchronisation per step) with single-threaded BLAS.
Shapes: ``x`` ``(N, T, D)`` float, or ``ids`` ``(N, T)`` integer token ids that stand for
one-hot rows of width D (then the projection ``x @ W_ih`` is the row gather ``W_ih[ids]``
and its weight gradient a scatter-add); ``w_ih`` ``(D, G·H)``; a chunk's projection ``xp``
``(nc·T, G·H)`` with row ``n·T + t``.

:func:`project` and :func:`input_grads` take either kind of input: compiled code picks the
dense or the token-id version from the type of ``x`` (a numba ``overload``), so each cell
has one forward and one backward frame. The ``_st`` helpers are the same steps for the
staged twins, with the matrix products done by numpy's ``matmul``; the ``_np`` helpers are
the NumPy twins' versions.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels._blas import gemm
from fastdl.kernels._jit import jit, numba

__all__ = [
    "sigmoid",
    "project_np",
    "input_grads_np",
    "shifted_np",
    "chunked_grads",
    "project",
    "input_grads",
    "project_st",
    "input_grads_st",
    "weight_grads",
    "weight_grads_st",
    "shifted_states",
    "colsum_into",
    "transposed",
]


def sigmoid(a: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-a))``, written as ``½·tanh(a/2) + ½`` so that it
    cannot overflow."""
    return 0.5 * np.tanh(0.5 * a) + 0.5


def project_np(x: np.ndarray, w_ih: np.ndarray) -> np.ndarray:
    """``x @ w_ih`` over all time steps at once; integer ``x`` is a row gather."""
    if x.ndim == 2:
        return w_ih[x]
    n, t_len, d = x.shape
    return (x.reshape(n * t_len, d) @ w_ih).reshape(n, t_len, w_ih.shape[1])


def input_grads_np(x, w_ih, da, need_dx):
    """``dW_ih`` (one product, or a scatter-add for token ids) and ``dx`` (or None)."""
    g = da.shape[-1]
    da2 = da.reshape(-1, g)
    if x.ndim == 2:
        # onehot(ids)ᵀ @ da: a product, because NumPy's scatter-add (np.add.at) is ~5× slower
        onehot = np.eye(w_ih.shape[0], dtype=da.dtype)[x.reshape(-1)]
        return None, onehot.T @ da2
    n, t_len, d = x.shape
    dw_ih = x.reshape(n * t_len, d).T @ da2
    dx = (da2 @ w_ih.T).reshape(n, t_len, d) if need_dx else None
    return dx, dw_ih


def shifted_np(h0: np.ndarray, hs: np.ndarray) -> np.ndarray:
    """``h_{t-1}`` for every step, rows ``(n, t)`` flattened: ``(N·T, H)``."""
    return np.concatenate([h0[:, None, :], hs[:, :-1, :]], axis=1).reshape(-1, hs.shape[2])


def chunked_grads(frame, chunks: int, args: tuple, shapes: list[tuple], dtype) -> list:
    """Run ``frame(*args, partials, chunks, ch)`` over the chunks, where ``partials`` is a
    tuple of one ``(chunks, *shape)`` array per weight gradient that chunk ``ch`` fills at
    ``[ch]``; return their sums over the chunks (always in the same order)."""
    from fastdl.kernels._threads import run_chunks

    partials = [np.empty((chunks,) + tuple(shape), dtype) for shape in shapes]
    run_chunks(frame, chunks, *args, tuple(partials))
    return [p.sum(axis=0) for p in partials]


@jit
def _project_dense(x, w_ih, n0, n1, xp):
    nc, t_len, d = n1 - n0, x.shape[1], x.shape[2]
    gemm(False, False, 1.0, x[n0:n1].reshape(nc * t_len, d), w_ih, 0.0, xp)


@jit
def _project_ids(ids, w_ih, n0, n1, xp):
    t_len, g = ids.shape[1], w_ih.shape[1]
    for n in range(n0, n1):
        for t in range(t_len):
            src = w_ih[ids[n, t]]
            dst = xp[(n - n0) * t_len + t]
            for k in range(g):
                dst[k] = src[k]


@jit
def _input_grads_dense(x, w_ih, dxp, n0, n1, dw_ih, dx, need_dx):
    nc, t_len, d = n1 - n0, x.shape[1], x.shape[2]
    gemm(True, False, 1.0, x[n0:n1].reshape(nc * t_len, d), dxp, 0.0, dw_ih)
    if need_dx:
        gemm(False, True, 1.0, dxp, w_ih, 0.0, dx[n0:n1].reshape(nc * t_len, d))


@jit
def _input_grads_ids(ids, w_ih, dxp, n0, n1, dw_ih, dx, need_dx):
    t_len, g = ids.shape[1], dxp.shape[1]
    dw_ih[:] = 0
    for n in range(n0, n1):
        for t in range(t_len):
            src = dxp[(n - n0) * t_len + t]
            dst = dw_ih[ids[n, t]]
            for k in range(g):
                dst[k] += src[k]


def project(x, w_ih, n0, n1, xp):
    """``xp = x[n0:n1] @ w_ih`` with rows ``(n, t)`` flattened: one GEMM for all time steps;
    for token ids ``x`` ``(N, T)``, the row gather ``w_ih[ids]``. (Compiled code only.)"""
    raise NotImplementedError("project is compiled-code only")


def input_grads(x, w_ih, dxp, n0, n1, dw_ih, dx, need_dx):
    """``dw_ih = x[n0:n1]ᵀ dxp`` (one GEMM) and, if ``need_dx``, ``dx[n0:n1] = dxp w_ihᵀ``;
    for token ids, ``dw_ih = onehot(ids)ᵀ dxp`` as a scatter-add and no ``dx``. (Compiled
    code only.)"""
    raise NotImplementedError("input_grads is compiled-code only")


if numba is not None:
    from numba.extending import overload

    @overload(project, jit_options={"nogil": True})
    def _project_overload(x, w_ih, n0, n1, xp):
        if x.ndim == 2:
            return lambda x, w_ih, n0, n1, xp: _project_ids(x, w_ih, n0, n1, xp)
        return lambda x, w_ih, n0, n1, xp: _project_dense(x, w_ih, n0, n1, xp)

    @overload(input_grads, jit_options={"nogil": True})
    def _input_grads_overload(x, w_ih, dxp, n0, n1, dw_ih, dx, need_dx):
        if x.ndim == 2:
            return lambda x, w_ih, dxp, n0, n1, dw_ih, dx, need_dx: _input_grads_ids(
                x, w_ih, dxp, n0, n1, dw_ih, dx, need_dx
            )
        return lambda x, w_ih, dxp, n0, n1, dw_ih, dx, need_dx: _input_grads_dense(
            x, w_ih, dxp, n0, n1, dw_ih, dx, need_dx
        )


def project_st(x, w_ih, n0, n1):
    """Staged :func:`project`: ``(nc·T, G·H)``, the product by numpy's ``matmul``."""
    t_len = x.shape[1]
    if x.ndim == 2:
        xp = np.empty(((n1 - n0) * t_len, w_ih.shape[1]), w_ih.dtype)
        _project_ids(x, w_ih, n0, n1, xp)
        return xp
    return x[n0:n1].reshape(-1, x.shape[2]) @ w_ih


def input_grads_st(x, w_ih, dxp, n0, n1, dw_ih, dx, need_dx):
    """Staged :func:`input_grads`, the products by numpy's ``matmul``."""
    if x.ndim == 2:
        _input_grads_ids(x, w_ih, dxp, n0, n1, dw_ih, dx, need_dx)
        return
    x_c = x[n0:n1].reshape(-1, x.shape[2])
    np.matmul(x_c.T, dxp, out=dw_ih)
    if need_dx:
        np.matmul(dxp, w_ih.T, out=dx[n0:n1].reshape(-1, x.shape[2]))


def weight_grads_st(h0, hs, d, n0, n1, dw_hh, db):
    """``dW_hh = Σ_t h_{t-1}ᵀ d_t`` and ``db = Σ d`` over rows ``n0:n1`` (staged); returns
    ``d`` of those rows flattened to ``(nc·T, G·H)``."""
    hprev = np.empty(((n1 - n0) * hs.shape[1], hs.shape[2]), hs.dtype)
    shifted_states(h0, hs, n0, n1, hprev)
    d_c = d[n0:n1].reshape(-1, d.shape[2])
    np.matmul(hprev.T, d_c, out=dw_hh)
    colsum_into(d_c, db)
    return d_c


@jit
def weight_grads(h0, hs, d, n0, n1, dw_hh, db):
    """Compiled :func:`weight_grads_st`: one GEMM and a column sum."""
    nc, t_len, hid = n1 - n0, hs.shape[1], hs.shape[2]
    hprev = np.empty((nc * t_len, hid), hs.dtype)
    shifted_states(h0, hs, n0, n1, hprev)
    d_c = d[n0:n1].reshape(nc * t_len, d.shape[2])
    gemm(True, False, 1.0, hprev, d_c, 0.0, dw_hh)
    colsum_into(d_c, db)
    return d_c


@jit
def shifted_states(h0, hs, n0, n1, out):
    """``out[n·T + t] = h_{t-1}`` of row ``n0 + n``: ``h0`` at ``t = 0``, else ``hs[:, t-1]``."""
    t_len = hs.shape[1]
    for n in range(n0, n1):
        base = (n - n0) * t_len
        out[base] = h0[n]
        for t in range(1, t_len):
            out[base + t] = hs[n, t - 1]


@jit
def colsum_into(a, out):
    """``out = a.sum(axis=0)`` for a 2-D ``a``."""
    out[:] = 0
    for r in range(a.shape[0]):
        row = a[r]
        for k in range(a.shape[1]):
            out[k] += row[k]


@jit
def _transpose_into(a, out):
    rows, cols = a.shape
    for i0 in range(0, rows, 8):
        i1 = min(i0 + 8, rows)
        for j0 in range(0, cols, 64):
            j1 = min(j0 + 64, cols)
            for j in range(j0, j1):
                for i in range(i0, i1):
                    out[j, i] = a[i, j]


def transposed(a: np.ndarray) -> np.ndarray:
    """``a.T`` as a new C-contiguous array, copied in blocks of 8 rows × 64 columns.

    Rows of a recurrent weight are a power-of-two number of bytes apart (4 KB for 4H = 1024
    float32), so reading down a column maps every element to the same L1 set; more than 8
    rows at a time (the L1's associativity) thrash (timings: ``bench_recurrent``'s docstring).
    """
    out = np.empty((a.shape[1], a.shape[0]), a.dtype)
    _transpose_into(np.ascontiguousarray(a), out)
    return out
