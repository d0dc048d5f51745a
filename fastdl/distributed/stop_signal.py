"""A signal handler in compiled code that writes a rank's stop message the moment it lands.

MPICH's hydra tells the surviving ranks that one died with SIGUSR1 (under
``-disable-auto-cleanup``) and kills them with SIGKILL about a millisecond later. A Python
signal handler runs only between two bytecodes of the main thread — not while it is inside a
compiled kernel, a BLAS call or ``MPI_Test`` — so during a training step it would run too late.
This handler is a C function (a numba ``cfunc``): the kernel runs it on the thread the signal
interrupts, wherever that thread is; it calls ``write(2, text, length)`` and ``_exit(128 +
signal)``, both async-signal-safe, and touches no Python object.

The texts, and four pointer-sized cells holding their addresses and lengths, live in memory
from ``malloc`` that is never freed (a signal may come while the interpreter shuts down).
LLVM resolves the cells by name, as :mod:`fastdl.kernels._blas.compiled` does for its GEMM
slots, so the compiled handler is cached once for every rank and every message.

Needs numba: under ``FASTDL_PURE=1`` :mod:`fastdl.distributed.watch` does not import this
module and installs a Python handler instead.
"""

from __future__ import annotations

import ctypes
import signal

from llvmlite import binding as llvm
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from fastdl.kernels._jit import cfunc

__all__ = ["install"]

_SIGNALS = {signal.SIGUSR1: "usr1", signal.SIGTERM: "term"}
_libc = ctypes.CDLL(None)
_malloc = _libc.malloc
_malloc.restype, _malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
_CELLS: dict[str, int] = {}  # name: address of its 8 bytes


def _never_freed(data: bytes) -> int:
    """The address of a copy of ``data`` in memory Python never frees, not even while the
    interpreter shuts down (when a signal may still come)."""
    address = _malloc(max(1, len(data)))
    if not address:
        raise MemoryError("fastdl.distributed.stop_signal: malloc failed")
    ctypes.memmove(address, data, len(data))
    return address


def _cell(name: str):
    """An intrinsic returning the uint64 held in a cell that LLVM resolves ``name`` to."""
    _CELLS[name] = _never_freed(bytes(8))
    llvm.add_symbol(name, _CELLS[name])

    @intrinsic
    def load(typingctx):
        def codegen(context, builder, signature, args):
            glob = builder.module.globals.get(name)
            if glob is None:
                glob = ir.GlobalVariable(builder.module, ir.IntType(64), name)
                glob.linkage = "external"
            return builder.load(glob)

        return types.uint64(), codegen

    return load


_usr1_text, _usr1_len = _cell("fastdl_stop_usr1_text"), _cell("fastdl_stop_usr1_len")
_term_text, _term_len = _cell("fastdl_stop_term_text"), _cell("fastdl_stop_term_len")
# write(int, const void *, size_t), the pointer passed as a 64-bit integer; _exit(int)
_write = types.ExternalFunction("write", types.int64(types.int32, types.uint64, types.uint64))
_exit = types.ExternalFunction("_exit", types.void(types.int32))
_USR1 = int(signal.SIGUSR1)


@cfunc(types.void(types.int32))
def _handler(signum):
    if signum == _USR1:
        text, length = _usr1_text(), _usr1_len()
    else:
        text, length = _term_text(), _term_len()
    if length > 0:
        _write(2, text, length)
    _exit(128 + signum)


def install(messages: dict[int, str]) -> bool:
    """Make each signal of ``messages`` (SIGUSR1, SIGTERM) write its text to stderr and end
    the process with status 128 + the signal's number.

    Returns
    -------
    bool
        False where libc has no ``signal`` to install it with.
    """
    set_handler = getattr(_libc, "signal", None)
    if set_handler is None:
        return False
    set_handler.restype = ctypes.c_void_p
    set_handler.argtypes = [ctypes.c_int, ctypes.c_void_p]
    for signum, text in messages.items():
        name = _SIGNALS[signum]
        data = text.encode()
        ctypes.c_uint64.from_address(_CELLS[f"fastdl_stop_{name}_len"]).value = 0
        ctypes.c_uint64.from_address(_CELLS[f"fastdl_stop_{name}_text"]).value = _never_freed(data)
        ctypes.c_uint64.from_address(_CELLS[f"fastdl_stop_{name}_len"]).value = len(data)
        set_handler(int(signum), _handler.address)
    return True
