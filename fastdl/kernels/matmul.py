"""Batched matrix product ``(B, M, K) @ (B, K, N) → (B, M, N)``, optionally transposed operands.

Notation
--------
B      matrices in the batch
M, K   rows and columns of ``op(a)``
K, N   rows and columns of ``op(b)``

``op(a)`` is ``a`` or, with ``trans_a``, ``a`` with its last two axes swapped (then ``a`` is
stored ``(B, K, M)``); the same for ``b``. The output is ``(B, M, N)``:
``out[i] = op(a[i]) @ op(b[i])``.

The numba twin gives each thread its own matrices and calls a single-threaded GEMM on each
(no BLAS thread pool beside numba's); it pays for many small or medium matrices, where
numpy's ``matmul`` calls a multi-threaded GEMM once per matrix.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels._blas import gemm, serial_blas
from fastdl.kernels._jit import jit, pair, prange

__all__ = ["batched_matmul"]


def batched_matmul_np(a, b, trans_a, trans_b):
    """``out[i] = op(a[i]) @ op(b[i])`` for every matrix ``i`` of the batch (NumPy twin).

    Parameters
    ----------
    a : ndarray, shape (B, M, K), or (B, K, M) with ``trans_a``; float32 or float64,
        C-contiguous
    b : ndarray, shape (B, K, N), or (B, N, K) with ``trans_b``; dtype of ``a``, C-contiguous
    trans_a, trans_b : bool
        Use the transpose of each matrix of ``a`` / ``b``.

    Returns
    -------
    out : ndarray, shape (B, M, N), dtype of ``a``
    """
    opa = a.transpose(0, 2, 1) if trans_a else a
    opb = b.transpose(0, 2, 1) if trans_b else b
    return np.matmul(opa, opb)


def batched_matmul_nb(a, b, trans_a, trans_b):
    """numba twin of :func:`batched_matmul_np`: same contract, one matrix per thread."""
    m = a.shape[2] if trans_a else a.shape[1]
    n = b.shape[1] if trans_b else b.shape[2]
    out = np.empty((a.shape[0], m, n), dtype=a.dtype)  # numpy's allocator (huge pages)
    with serial_blas():
        _batched_matmul(a, b, trans_a, trans_b, out)
    return out


@jit(parallel=True)
def _batched_matmul(a, b, trans_a, trans_b, out):
    for i in prange(a.shape[0]):
        gemm(trans_a, trans_b, 1.0, a[i], b[i], 0.0, out[i])


batched_matmul = pair(batched_matmul_np, batched_matmul_nb)
