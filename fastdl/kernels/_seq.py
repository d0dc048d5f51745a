"""Pieces shared by the recurrent kernels: input projection, its gradients, thread chunks.

Every recurrent kernel splits the batch into one chunk per thread; each thread runs the whole
time loop on its rows (no synchronisation per step) and calls single-threaded BLAS. Shapes:
``x`` ``(N, T, D)`` float, or ``ids`` ``(N, T)`` integer token ids that stand for one-hot
rows of width D (then the projection ``x @ W_ih`` is the row gather ``W_ih[ids]`` and its
weight gradient a scatter-add); ``w_ih`` ``(D, G·H)``; a chunk's projection ``xp``
``(nc·T, G·H)`` with row ``n·T + t``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fastdl.kernels._blas import gemm
from fastdl.kernels._jit import jit, numba

__all__ = [
    "n_chunks",
    "run_chunks",
    "project_dense",
    "project_ids",
    "input_grads_dense",
    "input_grads_ids",
    "shifted_states",
    "colsum_into",
    "transposed",
]


_pool: ThreadPoolExecutor | None = None
_pool_pid = -1


def run_chunks(kernel, chunks: int, *args) -> None:
    """Call ``kernel(*args, chunks, ch)`` for every chunk ``ch``, in parallel.

    The kernels are compiled with ``nogil=True``, so plain threads run them in parallel: chunk
    0 on the calling thread, the others on a small pool of threads that sleep on a lock in
    between. A numba ``prange`` region instead pays the threading layer's wake-up each call
    (measured here with the workqueue layer: ~1 ms per region once the main thread has done
    other work in between, two regions per training step of a recurrent layer).
    """
    global _pool, _pool_pid
    stale = _pool is None or _pool._max_workers < chunks - 1 or _pool_pid != os.getpid()
    if chunks > 1 and stale:  # (threads do not survive a fork: a child makes its own pool)
        _pool = ThreadPoolExecutor(max_workers=chunks - 1, thread_name_prefix="fastdl-rnn")
        _pool_pid = os.getpid()
    futures = [_pool.submit(kernel, *args, chunks, ch) for ch in range(1, chunks)]
    kernel(*args, chunks, 0)
    for f in futures:
        f.result()


def n_chunks(n_rows: int) -> int:
    """Chunks to split a batch of ``n_rows`` into: one per numba thread, at most one per row."""
    return max(1, min(numba.get_num_threads(), n_rows))


@jit
def project_dense(x, w_ih, n0, n1, xp):
    """``xp = x[n0:n1] @ w_ih`` with rows ``(n, t)`` flattened: one GEMM for all time steps."""
    nc, t_len, d = n1 - n0, x.shape[1], x.shape[2]
    gemm(False, False, 1.0, x[n0:n1].reshape(nc * t_len, d), w_ih, 0.0, xp)


@jit
def project_ids(ids, w_ih, n0, n1, xp):
    """``xp = onehot(ids[n0:n1]) @ w_ih``, done as the row gather ``w_ih[ids]``."""
    t_len, g = ids.shape[1], w_ih.shape[1]
    for n in range(n0, n1):
        for t in range(t_len):
            src = w_ih[ids[n, t]]
            dst = xp[(n - n0) * t_len + t]
            for k in range(g):
                dst[k] = src[k]


@jit
def input_grads_dense(x, w_ih, dxp, n0, n1, dw_ih, dx, need_dx):
    """``dw_ih = x[n0:n1]ᵀ dxp`` (one GEMM) and, if ``need_dx``, ``dx[n0:n1] = dxp w_ihᵀ``."""
    nc, t_len, d = n1 - n0, x.shape[1], x.shape[2]
    gemm(True, False, 1.0, x[n0:n1].reshape(nc * t_len, d), dxp, 0.0, dw_ih)
    if need_dx:
        gemm(False, True, 1.0, dxp, w_ih, 0.0, dx[n0:n1].reshape(nc * t_len, d))


@jit
def input_grads_ids(ids, dxp, n0, n1, dw_ih):
    """``dw_ih = onehot(ids[n0:n1])ᵀ dxp``, done as a scatter-add of the rows of ``dxp``."""
    t_len, g = ids.shape[1], dxp.shape[1]
    dw_ih[:] = 0
    for n in range(n0, n1):
        for t in range(t_len):
            src = dxp[(n - n0) * t_len + t]
            dst = dw_ih[ids[n, t]]
            for k in range(g):
                dst[k] += src[k]


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
    rows at a time (the L1's associativity) thrash. numpy's copy of ``w.T`` and 32 × 32
    blocks took 0.75 ms for a (256, 1024) float32 array here, 8-row blocks 0.21 ms.
    """
    out = np.empty((a.shape[1], a.shape[0]), a.dtype)
    _transpose_into(np.ascontiguousarray(a), out)
    return out
