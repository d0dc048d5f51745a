"""The one place where numba is imported and its flags are chosen; ``pair`` binds twins.

Every compiled kernel is decorated with :func:`jit` so its flags come from here:

- ``cache=True``: compiled code is kept in ``__pycache__`` and reused by the next process;
- ``fastmath=False``: fast-math would let LLVM assume no NaN/Inf, which breaks NaN checks;
- ``error_model="numpy"``: division by zero gives inf/nan instead of a Python exception; the
  exception check in every loop would stop LLVM from vectorising it;
- ``nogil=True`` and never ``parallel``: a kernel that uses both cores is run on blocks of its
  batch by :func:`fastdl.kernels._threads.run_chunks`, one plain thread per block, the
  calling thread taking the first. numba's ``prange`` regions were slower: on the 2-core
  reference machine a region of its "workqueue" layer cost ~0.5 ms of thread wake-up (the
  reference CNN's fc1 product: 1.52 ms median against 1.05 by ``run_chunks``, 0.9 ideal),
  and its OpenMP layer spins, which on a machine shared with other jobs made the CNN and
  LSTM steps 1.3-2.2x slower. So numba's threading layer is never started.

With ``FASTDL_PURE=1`` (or without numba) numba is never imported: :func:`jit` then returns the
plain Python function, and :func:`pair` always calls the NumPy twin.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from fastdl import config

if config.PURE_AT_IMPORT:
    numba = None
else:
    import numba

    from fastdl.kernels import _cache_guard

    _cache_guard.install()  # a damaged cache entry is compiled again, never loaded

__all__ = ["jit", "cfunc", "pair", "numba", "cache_is_cold"]

#: Every kernel compiled through :func:`jit`, in the order its module was imported.
DISPATCHERS: list = []
#: Every C callback compiled through :func:`cfunc` (BLAS paths make some on first use).
CFUNCS: list = []

_FLAGS = {"cache": True, "fastmath": False, "error_model": "numpy", "nogil": True}


def jit(fn: Callable) -> Callable:
    """Compile ``fn`` with fastdl's numba flags (``@jit``)."""
    if numba is None:
        return fn
    dispatcher = numba.njit(**_FLAGS)(fn)
    DISPATCHERS.append(dispatcher)
    return dispatcher


def cfunc(signature) -> Callable:
    """Compile a C-callable function (an address other compiled code can call through) with
    fastdl's numba flags; ``nogil`` and ``parallel`` do not apply to C callbacks."""
    flags = {k: v for k, v in _FLAGS.items() if k != "nogil"}
    compile_ = numba.cfunc(signature, **flags)

    def decorate(f: Callable):
        compiled = compile_(f)
        CFUNCS.append(compiled)
        return compiled

    return decorate


def cache_is_cold() -> bool:
    """Whether the next pass will compile from scratch: no kernel has been compiled in this
    process and numba's cache holds an index for none of them (a fresh install or an emptied
    cache). False under ``FASTDL_PURE=1``, where nothing compiles."""
    if numba is None:
        return False
    for d in DISPATCHERS:
        if d.signatures:
            return False
        index = getattr(
            getattr(getattr(d, "_cache", None), "_cache_file", None), "_index_path", None
        )
        if index is None or os.path.exists(index):
            return False  # a numba without this layout: do not claim a cold cache
    return bool(DISPATCHERS)


def pair(np_fn: Callable, nb_fn: Callable, st_fn: Callable | None = None) -> Callable:
    """Return the public kernel: ``nb_fn`` normally, ``np_fn`` when :func:`config.pure` is on.

    ``st_fn``, for kernels that multiply matrices, is the *staged* twin: compiled stages with
    each matrix product done by numpy's ``matmul`` in between. It runs instead of ``nb_fn`` on
    the ``numpy`` BLAS path (``FASTDL_BLAS=numpy``, see :mod:`fastdl.kernels._blas`).

    The returned function carries the NumPy twin's name and docstring, and exposes the twins
    as ``.np``, ``.nb`` (and ``.st``) so tests and benchmarks can call either directly.
    """

    @functools.wraps(np_fn)
    def dispatch(*args, **kwargs):
        if config.pure():
            return np_fn(*args, **kwargs)
        if st_fn is not None and config.blas_path() == "numpy":
            return st_fn(*args, **kwargs)
        return nb_fn(*args, **kwargs)

    dispatch.np = np_fn
    dispatch.nb = nb_fn
    if st_fn is not None:
        dispatch.st = st_fn
    name = np_fn.__name__
    dispatch.__name__ = dispatch.__qualname__ = name[:-3] if name.endswith("_np") else name
    return dispatch
