"""The one place where numba is imported and its flags are chosen; ``pair`` binds twins.

Every compiled kernel is decorated with :func:`jit` so its flags come from here:

- ``cache=True``: compiled code is kept in ``__pycache__`` and reused by the next process;
- ``fastmath=False``: fast-math would let LLVM assume no NaN/Inf, which breaks NaN checks;
- ``error_model="numpy"``: division by zero gives inf/nan instead of a Python exception; the
  exception check in every loop would stop LLVM from vectorising it;
- ``parallel`` only where the kernel asks for it, i.e. where it uses ``prange`` over
  independent outputs (never a ``prange`` that adds into a shared accumulator); and then
  only the ``prange`` loops run in parallel, not the kernel's array expressions.

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
    prange = range
else:
    import numba
    from numba import prange  # noqa: F401  (re-exported for kernel modules)

    from fastdl.kernels import _cache_guard

    _cache_guard.install()  # a damaged cache entry is compiled again, never loaded

    # numba's "workqueue" threads sleep between parallel regions; its default OpenMP threads
    # spin, and on a machine shared with other jobs the spinning and the barrier at the end of
    # each region cost more than they save (on the 2-core reference machine with another job
    # running, the CNN and LSTM steps ran 1.3-2.2x faster with workqueue). fastdl's
    # regions are coarse (a few per network pass), so waking sleeping threads costs little.
    # The choice is made at the first parallel region; NUMBA_THREADING_LAYER overrides it.
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"

    config.on_threads_changed(numba.set_num_threads)

__all__ = ["jit", "cfunc", "pair", "prange", "numba", "cache_is_cold"]

#: Every kernel compiled through :func:`jit`, in the order its module was imported.
DISPATCHERS: list = []
#: Every C callback compiled through :func:`cfunc` (BLAS paths make some on first use).
CFUNCS: list = []

_FLAGS = {"cache": True, "fastmath": False, "error_model": "numpy", "nogil": True}

# ``parallel=True`` would also turn every array expression (``np.zeros``, ``a += b``, ...) of
# the kernel into its own parallel region; each region wakes the thread pool, which costs
# microseconds on an idle machine and milliseconds on a busy one. Only explicit ``prange``
# loops run in parallel.
_PARALLEL = {
    "prange": True,
    "comprehension": False,
    "reduction": False,
    "inplace_binop": False,
    "setitem": False,
    "numpy": False,
    "stencil": False,
    "fusion": False,
}


def jit(fn: Callable | None = None, *, parallel: bool = False) -> Callable:
    """Compile ``fn`` with fastdl's numba flags (``@jit`` or ``@jit(parallel=True)``)."""

    def decorate(f: Callable) -> Callable:
        if numba is None:
            return f
        dispatcher = numba.njit(parallel=dict(_PARALLEL) if parallel else False, **_FLAGS)(f)
        DISPATCHERS.append(dispatcher)
        return dispatcher

    return decorate if fn is None else decorate(fn)


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
