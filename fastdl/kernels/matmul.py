"""The dense layer's matrix product ``op(a) @ op(b)``, split over threads.

Notation
--------
M, K   rows and columns of ``op(a)``
K, N   rows and columns of ``op(b)``

``op(a)`` is ``a`` or, with ``trans_a``, ``a.T`` (then ``a`` is stored ``(K, M)``); the same
for ``b``. ``matmul(a, b, trans_a, trans_b)`` returns ``op(a) @ op(b)``, ``(M, N)``: the dense
layer's forward product, input gradient and weight gradient.

The numba twin never starts BLAS's own thread pool beside fastdl's (the two would take turns
on the same cores; see :mod:`fastdl.kernels._blas`): it gives each thread a block of the
output's rows (or columns, when it is wider than tall), and every thread calls a
single-threaded GEMM. Inside a network pass
NumPy's ``@`` runs on one BLAS thread, so ``matmul`` is what lets a dense layer use both
cores. The blocks are cut by the thread count, so the same thread count gives the same bits;
another thread count may change the last bits (BLAS sums the edge of a block in another order
than its middle).
"""

from __future__ import annotations

import numpy as np

from fastdl import config
from fastdl.kernels._blas import gemm, serial_blas
from fastdl.kernels._jit import jit, pair
from fastdl.kernels._threads import chunk_bounds, run_chunks

__all__ = ["matmul", "SERIAL_MAX_FLOPS"]

#: Products with fewer floating-point operations run on one thread, without waking a worker.
#: Since the spinning hand-over of ``_threads.run_chunks`` (an empty call ~20 µs, was
#: 150-450), two threads pay from ~15 MFLOP: the LSTM's output layer (800 x 256 @ 256 x 65,
#: 27 MFLOP) 407 -> 260 µs, the book CNN's (60 x 12544 @ 12544 x 10, 15 MFLOP) 393 -> 329.
SERIAL_MAX_FLOPS = 10_000_000


def matmul_np(a, b, trans_a, trans_b):
    """``out = op(a) @ op(b)``, ``op(x)`` being ``x.T`` when its flag is set (NumPy twin).

    Parameters
    ----------
    a : ndarray, shape (M, K), or (K, M) with ``trans_a``; float32 or float64
    b : ndarray, shape (K, N), or (N, K) with ``trans_b``; float32 or float64
    trans_a, trans_b : bool

    Returns
    -------
    out : ndarray, shape (M, N), C-contiguous, dtype ``np.result_type(a, b)``
    """
    opa = a.T if trans_a else a
    opb = b.T if trans_b else b
    return np.ascontiguousarray(opa @ opb)


def _gemm_ready(x, dtype):
    """``x`` in ``dtype`` with contiguous, non-overlapping rows (what GEMM's leading dimension
    can describe); a C-contiguous copy otherwise (reversed, broadcast or strided rows)."""
    x = x.astype(dtype, copy=False)
    rows, cols = x.shape
    item = x.itemsize
    cols_ok = cols <= 1 or x.strides[1] == item
    rows_ok = rows <= 1 or (x.strides[0] >= max(cols, 1) * item and x.strides[0] % item == 0)
    return x if cols_ok and rows_ok else np.ascontiguousarray(x)


def matmul_nb(a, b, trans_a, trans_b):
    """numba twin of :func:`matmul_np`: one block of the output per thread."""
    dtype = np.result_type(a, b)  # as NumPy's ``@`` promotes
    a, b = _gemm_ready(a, dtype), _gemm_ready(b, dtype)
    m, k = (a.shape[1], a.shape[0]) if trans_a else a.shape
    n = b.shape[0] if trans_b else b.shape[1]
    out = np.empty((m, n), dtype=dtype)
    parts = 1 if 2 * m * n * k < SERIAL_MAX_FLOPS else max(1, min(config.get_num_threads(), m, n))
    with serial_blas():
        if parts == 1:
            _matmul_serial(a, b, trans_a, trans_b, out)
        else:
            run_chunks(_matmul_chunk, parts, a, b, trans_a, trans_b, out)
    return out


@jit
def _matmul_part(a, b, trans_a, trans_b, by_rows, lo, hi, out):
    """One block of the output: rows ``lo .. hi - 1`` (``by_rows``) or those columns."""
    if by_rows:
        block = a[:, lo:hi] if trans_a else a[lo:hi]
        gemm(trans_a, trans_b, 1.0, block, b, 0.0, out[lo:hi])
    else:
        block = b[lo:hi] if trans_b else b[:, lo:hi]
        gemm(trans_a, trans_b, 1.0, a, block, 0.0, out[:, lo:hi])


@jit
def _matmul_serial(a, b, trans_a, trans_b, out):
    _matmul_part(a, b, trans_a, trans_b, True, 0, out.shape[0], out)


@jit
def _matmul_chunk(a, b, trans_a, trans_b, out, chunks, ch):
    """Block ``ch`` of ``chunks`` (:func:`run_chunks`' convention): the longer side is split,
    so each thread reads less of the other operand."""
    m, n = out.shape
    by_rows = m >= n
    lo, hi = chunk_bounds(m if by_rows else n, chunks, ch)
    _matmul_part(a, b, trans_a, trans_b, by_rows, lo, hi, out)


def matmul_st(a, b, trans_a, trans_b):
    """Staged twin of :func:`matmul_np`: blocks of output rows over fastdl's threads, each
    numpy's ``matmul`` on one BLAS thread (the ``numpy`` BLAS path)."""
    dtype = np.result_type(a, b)
    opa = (a.T if trans_a else a).astype(dtype, copy=False)
    opb = (b.T if trans_b else b).astype(dtype, copy=False)
    (m, k), n = opa.shape, opb.shape[1]
    out = np.empty((m, n), dtype=dtype)
    parts = 1 if 2 * m * n * k < SERIAL_MAX_FLOPS else max(1, min(config.get_num_threads(), m))

    def block(chunks, t):
        rows = slice((m * t) // chunks, (m * (t + 1)) // chunks)
        np.matmul(opa[rows], opb, out=out[rows])

    with serial_blas():
        run_chunks(block, parts)
    return out


matmul = pair(matmul_np, matmul_nb, matmul_st)
