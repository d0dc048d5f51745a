"""The GEMM the compiled kernels call, and the targets it can be pointed at (numba).

Kernels call :func:`gemm`, which calls through a *slot*: a pointer-sized global variable,
registered with LLVM under a fixed name (``fastdl_sgemm_slot``, ``fastdl_dgemm_slot``), that
holds the address of the function doing the work. Compiled code refers to the slot by name
only, so it is cached once and serves every BLAS path: choosing a path (``FASTDL_BLAS``,
``config.use_blas``) writes an address into the slot, in this process, at run time.

Every target has the CBLAS row-major signature with 64-bit integers (ILP64)::

    void gemm(int32 order, int32 trans_a, int32 trans_b, int64 M, int64 N, int64 K,
              T alpha, T *A, int64 lda, T *B, int64 ldb, T beta, T *C, int64 ldc)

computing ``C = alpha·op(A)·op(B) + beta·C`` (``C`` is not read when ``beta == 0``):

- an ILP64 CBLAS library's own ``sgemm``/``dgemm`` (numpy's OpenBLAS, Accelerate's
  ``$ILP64`` symbols), called directly;
- :func:`lp64_targets`: the same call with 32-bit integers, for an LP64 CBLAS (MKL, a system
  OpenBLAS or BLIS), whose address sits in a second slot;
- :func:`fortran_targets`: SciPy's Fortran BLAS (``scipy.linalg.cython_blas``, what numba's
  ``np.dot`` calls). A row-major ``C = op(A)·op(B)`` is the column-major
  ``Cᵀ = op(B)ᵀ·op(A)ᵀ``, so the operands swap places and every argument goes by pointer;
- :func:`loop_targets`: compiled loops, for a machine with no BLAS at all.
"""

from __future__ import annotations

import ctypes

import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba import carray, types
from numba.extending import intrinsic

from fastdl.kernels._jit import cfunc, jit

__all__ = [
    "gemm",
    "point",
    "lp64_targets",
    "fortran_targets",
    "loop_targets",
    "ROW_MAJOR",
    "NO_TRANS",
    "TRANS",
]

ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

_i32, _i64, _vp = types.int32, types.int64, types.voidptr


def _cblas(real, index):
    """Argument types of a CBLAS ``?gemm`` with ``index``-typed integers."""
    return (_i32, _i32, _i32, index, index, index, real, _vp, index, _vp, index, real, _vp, index)


CBLAS = {np.float32: _cblas(types.float32, _i64), np.float64: _cblas(types.float64, _i64)}
LP64 = {np.float32: _cblas(types.float32, _i32), np.float64: _cblas(types.float64, _i32)}
FORTRAN = (_vp,) * 13  # ?gemm(transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

#: The slots: name → pointer-sized cell whose address LLVM resolves that name to.
SLOTS: dict[str, ctypes.c_void_p] = {}


def _slot(name: str) -> str:
    SLOTS[name] = ctypes.c_void_p(0)
    llvm.add_symbol(name, ctypes.addressof(SLOTS[name]))
    return name


def point(slot: str, address: int) -> None:
    """Make calls through ``slot`` go to the function at ``address``."""
    SLOTS[slot].value = address


def _slot_call(slot: str, argtypes: tuple):
    """A compiled-code intrinsic ``call(args)``: call the function in ``slot`` with the tuple
    ``args``, each element cast to ``argtypes``."""

    @intrinsic
    def call(typingctx, args):
        if not isinstance(args, types.BaseTuple) or len(args) != len(argtypes):
            return None

        def codegen(context, builder, signature, llargs):
            (packed,) = llargs
            values = [
                context.cast(builder, builder.extract_value(packed, i), args[i], argtypes[i])
                for i in range(len(argtypes))
            ]
            fnty = ir.FunctionType(ir.VoidType(), [context.get_value_type(t) for t in argtypes])
            cell = builder.module.globals.get(slot)
            if cell is None:
                cell = ir.GlobalVariable(builder.module, fnty.as_pointer(), slot)
                cell.linkage = "external"
            builder.call(builder.load(cell), values)
            return context.get_dummy_value()

        return types.void(args), codegen

    return call


_sgemm = _slot_call(_slot("fastdl_sgemm_slot"), CBLAS[np.float32])
_dgemm = _slot_call(_slot("fastdl_dgemm_slot"), CBLAS[np.float64])
_lp64_sgemm = _slot_call(_slot("fastdl_lp64_sgemm_slot"), LP64[np.float32])
_lp64_dgemm = _slot_call(_slot("fastdl_lp64_dgemm_slot"), LP64[np.float64])
_f77_sgemm = _slot_call(_slot("fastdl_f77_sgemm_slot"), FORTRAN)
_f77_dgemm = _slot_call(_slot("fastdl_f77_dgemm_slot"), FORTRAN)


@jit
def gemm(trans_a, trans_b, alpha, a, b, beta, c):
    """``c = alpha·op(a) @ op(b) + beta·c`` in place, through the GEMM slot.

    ``a``, ``b``, ``c`` are 2-D arrays of one dtype (float32 or float64) whose rows are
    contiguous (C-contiguous arrays, or blocks of rows or columns of them); ``op(x)`` is
    ``x.T`` when its flag is true. Shapes: ``op(a)`` ``(M, K)``, ``op(b)`` ``(K, N)``, ``c``
    ``(M, N)``. Callers check shapes; this function does not.
    """
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    if m == 0 or n == 0:
        return
    ta = TRANS if trans_a else NO_TRANS
    tb = TRANS if trans_b else NO_TRANS
    # Leading dimensions from the row strides: a block of rows or columns of a C-contiguous
    # array (rows still contiguous) is multiplied in place, without a copy.
    lda = max(1, a.strides[0] // a.itemsize, a.shape[1])
    ldb = max(1, b.strides[0] // b.itemsize, b.shape[1])
    ldc = max(1, c.strides[0] // c.itemsize, n)
    args = (ROW_MAJOR, ta, tb, m, n, k, alpha, a.ctypes, lda, b.ctypes, ldb, beta, c.ctypes, ldc)
    if c.itemsize == 4:
        _sgemm(args)
    else:
        _dgemm(args)


_made: dict[str, tuple] = {}


def lp64_targets() -> tuple[int, int]:
    """Addresses of ILP64 → LP64 adapters that call the functions in the ``lp64`` slots."""
    if "lp64" not in _made:

        @cfunc(types.void(*CBLAS[np.float32]))
        def lp64_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
            _lp64_sgemm((order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))

        @cfunc(types.void(*CBLAS[np.float64]))
        def lp64_dgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
            _lp64_dgemm((order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))

        _made["lp64"] = (lp64_sgemm, lp64_dgemm)
    return tuple(f.address for f in _made["lp64"])


@jit
def _fortran_args(ta, tb, m, n, k, lda, ldb, ldc, real):
    """Fortran-order arguments of the row-major product, by pointer: the operands swap."""
    ints = np.empty(6, np.int32)  # n, m, k, ldb, lda, ldc
    ints[0], ints[1], ints[2], ints[3], ints[4], ints[5] = n, m, k, ldb, lda, ldc
    flags = np.empty(2, np.uint8)
    flags[0] = 84 if tb == TRANS else 78  # 'T' or 'N'
    flags[1] = 84 if ta == TRANS else 78
    return ints, flags, np.empty(2, real)


def fortran_targets() -> tuple[int, int]:
    """Addresses of CBLAS-row-major → Fortran adapters that call the ``f77`` slots."""
    if "f77" not in _made:

        @cfunc(types.void(*CBLAS[np.float32]))
        def f77_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
            ints, flags, ab = _fortran_args(ta, tb, m, n, k, lda, ldb, ldc, np.float32)
            ab[0], ab[1] = alpha, beta
            _f77_sgemm((flags[0:].ctypes, flags[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes,
                        ints[2:].ctypes, ab[0:].ctypes, b, ints[3:].ctypes, a, ints[4:].ctypes,
                        ab[1:].ctypes, c, ints[5:].ctypes))  # fmt: skip

        @cfunc(types.void(*CBLAS[np.float64]))
        def f77_dgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
            ints, flags, ab = _fortran_args(ta, tb, m, n, k, lda, ldb, ldc, np.float64)
            ab[0], ab[1] = alpha, beta
            _f77_dgemm((flags[0:].ctypes, flags[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes,
                        ints[2:].ctypes, ab[0:].ctypes, b, ints[3:].ctypes, a, ints[4:].ctypes,
                        ab[1:].ctypes, c, ints[5:].ctypes))  # fmt: skip

        _made["f77"] = (f77_sgemm, f77_dgemm)
    return tuple(f.address for f in _made["f77"])


@jit
def _loop_gemm(trans_a, trans_b, m, n, k, alpha, a, b, beta, c):
    """``C = alpha·op(A)·op(B) + beta·C`` in i-p-j order; ``a``, ``b``, ``c`` are 2-D views
    whose rows are the leading dimension long (only the first columns are read)."""
    for i in range(m):
        ci = c[i]
        for j in range(n):
            ci[j] = beta * ci[j] if beta != 0 else 0
        for p in range(k):
            aip = alpha * (a[p, i] if trans_a else a[i, p])
            if trans_b:
                for j in range(n):
                    ci[j] += aip * b[j, p]
            else:
                bp = b[p]
                for j in range(n):
                    ci[j] += aip * bp[j]


def loop_targets() -> tuple[int, int]:
    """Addresses of compiled loop GEMMs with the CBLAS signature (no BLAS needed)."""
    if "loops" not in _made:

        @cfunc(types.void(*CBLAS[np.float32]))
        def loops_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
            _loop_gemm(ta == TRANS, tb == TRANS, m, n, k, alpha,
                       carray(a, (k if ta == TRANS else m, lda), np.float32),
                       carray(b, (n if tb == TRANS else k, ldb), np.float32), beta,
                       carray(c, (m, ldc), np.float32))  # fmt: skip

        @cfunc(types.void(*CBLAS[np.float64]))
        def loops_dgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
            _loop_gemm(ta == TRANS, tb == TRANS, m, n, k, alpha,
                       carray(a, (k if ta == TRANS else m, lda), np.float64),
                       carray(b, (n if tb == TRANS else k, ldb), np.float64), beta,
                       carray(c, (m, ldc), np.float64))  # fmt: skip

        _made["loops"] = (loops_sgemm, loops_dgemm)
    return tuple(f.address for f in _made["loops"])
