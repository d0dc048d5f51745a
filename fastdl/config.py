"""fastdl's settings: the ``FASTDL_*`` environment variables, read once, and their overrides.

Settings
--------
FASTDL_PURE=1
    Run every kernel on its pure-NumPy twin; numba is then never imported.
FASTDL_NUM_THREADS=n
    Threads for fastdl's own parallel kernels (default: the CPUs the process may run on —
    its affinity mask — or ``NUMBA_NUM_THREADS`` where that is smaller; the smallest wins).
FASTDL_BLAS=auto|cblas|scipy|numpy|loops
    How the compiled kernels multiply matrices (see :mod:`fastdl.kernels._blas`): ``auto``
    (default) takes the first that can run here, in that order; another value forces it.
FASTDL_BLAS_LIBRARY=file
    The BLAS library file whose CBLAS GEMM the ``cblas`` path calls, instead of numpy's own.
FASTDL_DATA=folder
    Where data sets are looked for first (one sub-folder per data set); read by
    :mod:`fastdl.datasets`, not here.

``use_pure()`` switches to the NumPy twins for a block and restores the previous setting;
``use_blas(path)`` does the same for the BLAS path. ``set_num_threads(n)`` changes the
thread count for fastdl's parallel kernels at run time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator

__all__ = [
    "pure",
    "use_pure",
    "BLAS_PATHS",
    "blas_path",
    "use_blas",
    "numba_available",
    "set_num_threads",
    "get_num_threads",
]


def _env_flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{name}={os.environ[name]!r}: expected 1/0, true/false, yes/no or on/off")


def _cores() -> int:
    """CPUs this process may run on: its affinity mask (``taskset``, a batch scheduler's
    binding, a container's cpuset) where the system has one, else all of them."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _env_count(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name}={raw!r}: expected a whole number >= 1")
    return int(raw)


def _thread_limit() -> tuple[int, str]:
    """The most threads fastdl may use, and why: the CPUs it may run on, and
    ``NUMBA_NUM_THREADS`` where that is set (honoured as a cap on compiled code's threads,
    although fastdl's kernels run on fastdl's own threads, not numba's pool)."""
    limit, why = _cores(), "the CPUs this process may run on"
    numba_threads = _env_count("NUMBA_NUM_THREADS")
    if numba_threads is not None and numba_threads < limit:
        limit, why = numba_threads, "NUMBA_NUM_THREADS"
    return limit, why


def _env_threads() -> int:
    """The default thread count: the smallest of the limit and ``FASTDL_NUM_THREADS``."""
    wanted = _env_count("FASTDL_NUM_THREADS")
    limit = _thread_limit()[0]
    return limit if wanted is None else min(wanted, limit)


#: The BLAS paths, fastest first (see :mod:`fastdl.kernels._blas`).
BLAS_PATHS = ("cblas", "scipy", "numpy", "loops")


def _check_blas(value: str, where: str) -> str:
    if value not in ("auto",) + BLAS_PATHS:
        raise ValueError(f"{where}: expected auto, {', '.join(BLAS_PATHS)}; got {value!r}")
    return value


#: FASTDL_BLAS as read at import.
BLAS_REQUESTED: str = _check_blas(
    os.environ.get("FASTDL_BLAS", "").strip().lower() or "auto", "FASTDL_BLAS"
)

#: True when numba can be imported at all (looked up without importing it).
numba_available: bool = importlib.util.find_spec("numba") is not None

#: FASTDL_PURE as read at import. Without numba the library runs pure whatever it says.
PURE_AT_IMPORT: bool = _env_flag("FASTDL_PURE") or not numba_available

_state = {"pure": PURE_AT_IMPORT, "threads": _env_threads(), "blas": BLAS_REQUESTED}

# Functions called with the new thread count whenever it changes (kernels register numba's
# and the BLAS pool's setters here, so this module never imports either).
_thread_hooks: list[Callable[[int], None]] = []


def pure() -> bool:
    """True when kernels should run their NumPy twins."""
    return _state["pure"]


@contextlib.contextmanager
def use_pure(enabled: bool = True) -> Iterator[None]:
    """Run the block on the NumPy twins (``enabled=True``) or the numba kernels (``False``).

    The previous setting is restored on exit, also after an exception. Asking for the numba
    kernels when the library was imported with ``FASTDL_PURE=1`` (or without numba) raises
    ``RuntimeError``: numba was deliberately never imported in that process.
    """
    if not enabled and PURE_AT_IMPORT:
        why = "numba is not installed" if not numba_available else "FASTDL_PURE=1 was set at import"
        raise RuntimeError(f"use_pure(False): the numba kernels are unavailable ({why})")
    previous = _state["pure"]
    _state["pure"] = bool(enabled)
    try:
        yield
    finally:
        _state["pure"] = previous


# The hook that checks and applies a BLAS path (registered by fastdl.kernels._blas, which
# returns the path it resolved "auto" to).
_blas_hooks: list[Callable[[str], str]] = []


def blas_path() -> str:
    """The BLAS path in use: one of :data:`BLAS_PATHS` (``"auto"`` before the kernels load)."""
    return _state["blas"]


def _set_blas(path: str) -> None:
    for hook in _blas_hooks:
        path = hook(path)
    _state["blas"] = path


@contextlib.contextmanager
def use_blas(path: str) -> Iterator[None]:
    """Run the block with the compiled kernels' matrix products on ``path``.

    Parameters
    ----------
    path : {"auto", "cblas", "scipy", "numpy", "loops"}
        As ``FASTDL_BLAS``. A path that cannot run here raises ``RuntimeError`` naming why.

    The previous path is restored on exit. Not thread-safe: it changes what every thread's
    kernels call.
    """
    _check_blas(path, "use_blas")
    previous = _state["blas"]
    _set_blas(path)
    try:
        yield
    finally:
        _set_blas(previous)


def on_blas_changed(hook: Callable[[str], str]) -> None:
    """Register ``hook(requested) -> resolved``, called now and whenever the path changes."""
    _blas_hooks.append(hook)
    _set_blas(_state["blas"])


def get_num_threads() -> int:
    """Threads that fastdl's parallel kernels use."""
    return _state["threads"]


def set_num_threads(n: int) -> None:
    """Set the threads for all of fastdl's parallelism (compiled kernels and the BLAS they call).

    Parameters
    ----------
    n : int
        Between 1 and the limit: the CPUs this process may run on (its affinity mask), or
        ``NUMBA_NUM_THREADS`` where that is smaller (honoured as a cap).
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: expected an int, got {type(n).__name__}")
    limit, why = _thread_limit()
    if not 1 <= n <= limit:
        raise ValueError(f"set_num_threads: expected 1..{limit} threads ({why}), got {n}")
    _state["threads"] = n
    for hook in _thread_hooks:
        hook(n)


def on_threads_changed(hook: Callable[[int], None]) -> None:
    """Register ``hook(n)``, called now and whenever the thread count changes."""
    _thread_hooks.append(hook)
    hook(_state["threads"])


# Context managers entered around every network pass (kernels register one that, for example,
# keeps numpy's BLAS pool from competing with fastdl's threads while fastdl computes).
_compute_contexts: list[Callable[[], contextlib.AbstractContextManager]] = []


def on_compute(factory: Callable[[], contextlib.AbstractContextManager]) -> None:
    """Register ``factory()``, a context manager entered around every network pass."""
    _compute_contexts.append(factory)


@contextlib.contextmanager
def compute() -> Iterator[None]:
    """Enter every registered compute context (see :func:`on_compute`) for the block."""
    with contextlib.ExitStack() as stack:
        for factory in _compute_contexts:
            stack.enter_context(factory())
        yield
