"""GEMM callable from numba kernels, bound to numpy's own OpenBLAS; and that BLAS's thread count.

numba's ``np.dot`` needs SciPy (it calls ``scipy.linalg.cython_blas``), which fastdl does not
depend on. numpy's wheels ship OpenBLAS as ``numpy.libs/libscipy_openblas64_*.so`` with the
CBLAS interface under the names ``scipy_cblas_sgemm64_`` / ``scipy_cblas_dgemm64_`` (64-bit
integers). We register their addresses as LLVM symbols and declare them as numba external
functions: the compiled kernels refer to them by name, so they stay cacheable.

Where that library cannot be found (another numpy build), :data:`HAVE_BLAS` is False and
:func:`gemm` falls back to a loop GEMM compiled by numba: slower, same results within float
rounding, and tested like the fast path.

``gemm(trans_a, trans_b, alpha, a, b, beta, c)`` computes, in place,
``c = alpha · op(a) @ op(b) + beta · c`` for 2-D arrays of one dtype (float32 or float64)
whose rows are contiguous (C-contiguous arrays, or blocks of rows or columns of them), where
``op(x)`` is ``x.T`` when the flag is true. Shapes: ``op(a)`` ``(M, K)``,
``op(b)`` ``(K, N)``, ``c`` ``(M, N)``. Callers check shapes; the kernel does not.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
from collections.abc import Iterator

import numpy as np

from fastdl import config
from fastdl.kernels._jit import jit, numba

__all__ = [
    "HAVE_BLAS",
    "gemm",
    "gemm_loops",
    "blas_threads",
    "set_blas_threads",
    "get_blas_threads",
    "serial_blas",
]

_CBLAS_ROW_MAJOR, _CBLAS_NO_TRANS, _CBLAS_TRANS = 101, 111, 112


def _find_openblas() -> ctypes.CDLL | None:
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libscipy_openblas*.so*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        if hasattr(lib, "scipy_cblas_sgemm64_") and hasattr(lib, "scipy_cblas_dgemm64_"):
            return lib
    return None


_lib = _find_openblas()
HAVE_BLAS: bool = _lib is not None and numba is not None

if HAVE_BLAS:
    from llvmlite import binding as _llvm
    from numba import types as _t

    _llvm.add_symbol(
        "fastdl_cblas_sgemm", ctypes.cast(_lib.scipy_cblas_sgemm64_, ctypes.c_void_p).value
    )
    _llvm.add_symbol(
        "fastdl_cblas_dgemm", ctypes.cast(_lib.scipy_cblas_dgemm64_, ctypes.c_void_p).value
    )
    _i32, _i64, _vp = _t.int32, _t.int64, _t.voidptr
    _sgemm = _t.ExternalFunction(
        "fastdl_cblas_sgemm",
        _t.void(
            _i32,
            _i32,
            _i32,
            _i64,
            _i64,
            _i64,
            _t.float32,
            _vp,
            _i64,
            _vp,
            _i64,
            _t.float32,
            _vp,
            _i64,
        ),
    )
    _dgemm = _t.ExternalFunction(
        "fastdl_cblas_dgemm",
        _t.void(
            _i32,
            _i32,
            _i32,
            _i64,
            _i64,
            _i64,
            _t.float64,
            _vp,
            _i64,
            _vp,
            _i64,
            _t.float64,
            _vp,
            _i64,
        ),
    )


@jit
def gemm_loops(trans_a, trans_b, alpha, a, b, beta, c):
    """Loop GEMM (the fallback): ``c = alpha·op(a)@op(b) + beta·c``, i-k-j order."""
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    for i in range(m):
        for j in range(n):
            c[i, j] = beta * c[i, j] if beta != 0 else 0
        for p in range(k):
            aip = alpha * (a[p, i] if trans_a else a[i, p])
            if trans_b:
                for j in range(n):
                    c[i, j] += aip * b[j, p]
            else:
                for j in range(n):
                    c[i, j] += aip * b[p, j]


if HAVE_BLAS:

    @jit
    def gemm(trans_a, trans_b, alpha, a, b, beta, c):
        m, n = c.shape
        k = a.shape[0] if trans_a else a.shape[1]
        if m == 0 or n == 0:
            return
        ta = _CBLAS_TRANS if trans_a else _CBLAS_NO_TRANS
        tb = _CBLAS_TRANS if trans_b else _CBLAS_NO_TRANS
        # Leading dimensions from the row strides: a block of rows or columns of a C-contiguous
        # array (rows still contiguous) is multiplied in place, without a copy.
        lda = max(1, a.strides[0] // a.itemsize, a.shape[1])
        ldb = max(1, b.strides[0] // b.itemsize, b.shape[1])
        ldc = max(1, c.strides[0] // c.itemsize, n)
        if c.itemsize == 4:
            _sgemm(
                _CBLAS_ROW_MAJOR,
                ta,
                tb,
                m,
                n,
                k,
                np.float32(alpha),
                a.ctypes,
                lda,
                b.ctypes,
                ldb,
                np.float32(beta),
                c.ctypes,
                ldc,
            )
        else:
            _dgemm(
                _CBLAS_ROW_MAJOR,
                ta,
                tb,
                m,
                n,
                k,
                np.float64(alpha),
                a.ctypes,
                lda,
                b.ctypes,
                ldb,
                np.float64(beta),
                c.ctypes,
                ldc,
            )

else:
    gemm = gemm_loops


def get_blas_threads() -> int:
    """Threads numpy's OpenBLAS uses (1 where it cannot be asked)."""
    if _lib is None or not hasattr(_lib, "scipy_openblas_get_num_threads64_"):
        return 1
    return int(_lib.scipy_openblas_get_num_threads64_())


def set_blas_threads(n: int) -> None:
    """Set the threads of numpy's OpenBLAS (no effect where it cannot be reached)."""
    if _lib is not None and hasattr(_lib, "scipy_openblas_set_num_threads64_"):
        _lib.scipy_openblas_set_num_threads64_(ctypes.c_int(int(n)))


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the block with numpy's OpenBLAS on ``n`` threads, then restore the previous count."""
    previous = get_blas_threads()
    set_blas_threads(n)
    try:
        yield
    finally:
        set_blas_threads(previous)


@contextlib.contextmanager
def serial_blas() -> Iterator[None]:
    """Run the block with numpy's OpenBLAS on one thread (cheap when it already is).

    The numba kernels call :func:`gemm` from inside ``prange`` regions, each thread on its own
    images or rows; a multi-threaded BLAS there would start a second pool that competes with
    numba's for the same cores.
    """
    previous = get_blas_threads()
    if previous == 1:
        yield
        return
    set_blas_threads(1)
    try:
        yield
    finally:
        set_blas_threads(previous)


def _compute_threads() -> contextlib.AbstractContextManager:
    """numpy's BLAS on one thread while fastdl computes, with the numba kernels or without.

    With numba, its threads do the parallel work and call BLAS single-threaded. On the NumPy
    twins (``FASTDL_PURE=1``) BLAS is single-threaded too: multi-threaded OpenBLAS
    synchronises its threads once per block of the inner dimension, and when another process
    holds a core each synchronisation can wait a scheduler tick. Measured on the 2-core
    reference machine while other jobs ran: the reference CNN's pure training step at
    56–156 images/s with 2 BLAS threads (a ``(64 × 36,864) @ (36,864 × 288)`` weight
    gradient took 0.8 s) and 471–501 images/s with one.
    """
    return serial_blas()


# One thread pool at a time: numba's workers and OpenBLAS's workers both spin after each call,
# and on a small machine letting them take turns halves the speed. Inside every network pass
# numpy's BLAS runs on one thread while numba's threads do the parallel work.
config.on_compute(_compute_threads)
