"""Where numba caches fastdl's kernels, how much is there, and what this process compiled.

numba writes two kinds of file per kernel: an index ``<module>.<kernel>-<line>.py311.nbi``
and one data file per compiled signature, ``....py311.<k>.nbc`` (fastdl's cache guard adds a
``.nbc.sha256`` beside each data file, see :mod:`fastdl.kernels._cache_guard`). They go to
``__pycache__`` beside each kernel file, or, when ``NUMBA_CACHE_DIR`` is set, to a folder
per source folder under it (``<NUMBA_CACHE_DIR>/kernels_<sha1 of the folder>/``); numba falls
back to its user-wide cache folder when neither is writable. The folders are read from the
kernels themselves (``Dispatcher.stats.cache_path``), so they are the ones numba really uses.

Only imported when the compiled kernels are (never under ``FASTDL_PURE=1``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from numba.core.dispatcher import Dispatcher

__all__ = ["CacheUsage", "kernels", "cache_folders", "cache_usage", "compile_counts"]

#: Endings of the files numba (and fastdl's cache guard) writes for a cached kernel.
CACHE_SUFFIXES = (".nbi", ".nbc", ".nbc.sha256")


@dataclass(frozen=True)
class CacheUsage:
    """What the cache folders hold.

    Attributes
    ----------
    folders : tuple of str
        The folders numba caches fastdl's kernels in.
    n_bytes : int
        Total size of the cache files in them.
    n_files : int
        Number of cache files (indexes, data files and their checksums).
    n_indexes : int
        Number of ``.nbi`` index files: one per kernel (and per source line it was ever
        compiled at) that has been cached.
    """

    folders: tuple[str, ...]
    n_bytes: int
    n_files: int
    n_indexes: int


def kernels() -> list:
    """Every compiled kernel of fastdl made in this process: numba ``Dispatcher`` objects
    (``@jit``) and ``CFunc`` objects (``@cfunc``, made when a BLAS path needs them), from the
    registries of :mod:`fastdl.kernels._jit`, through which every fastdl kernel is compiled."""
    import fastdl  # noqa: F401  (loads every kernel module)
    from fastdl.kernels import _jit

    return [*_jit.DISPATCHERS, *_jit.CFUNCS]


def cache_folders() -> tuple[str, ...]:
    """The folders numba keeps fastdl's compiled kernels in, sorted."""
    folders = set()
    for k in kernels():
        if isinstance(k, Dispatcher):
            path = k.stats.cache_path
        else:
            path = getattr(getattr(k, "_cache", None), "cache_path", None)
        if path:
            folders.add(os.path.abspath(path))
    return tuple(sorted(folders))


def cache_usage(folders: tuple[str, ...] | None = None) -> CacheUsage:
    """Size and number of the cache files in ``folders`` (default :func:`cache_folders`)."""
    folders = cache_folders() if folders is None else tuple(folders)
    n_bytes = n_files = n_indexes = 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith(CACHE_SUFFIXES) or not entry.is_file():
                continue
            try:
                n_bytes += entry.stat().st_size
            except OSError:
                continue
            n_files += 1
            n_indexes += entry.name.endswith(".nbi")
    return CacheUsage(folders, n_bytes, n_files, n_indexes)


def compile_counts() -> dict[int, tuple[object, int, int]]:
    """For each kernel alive now: ``id → (kernel, signatures loaded from the cache, signatures
    compiled)`` in this process so far. The difference of two calls says what ran between.

    A kernel called from another compiled kernel is compiled along with its caller; when the
    caller is loaded from the cache instead, the callee is neither loaded nor compiled.
    """
    counts = {}
    for k in kernels():
        if isinstance(k, Dispatcher):
            stats = k.stats
            hits, misses = sum(stats.cache_hits.values()), sum(stats.cache_misses.values())
        else:  # a CFunc is compiled (or loaded) once, when it is made
            hits = k.cache_hits
            misses = 1 - hits
        counts[id(k)] = (k, hits, misses)
    return counts
