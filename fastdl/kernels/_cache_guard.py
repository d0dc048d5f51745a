"""A damaged numba cache entry of fastdl's kernels is recompiled, never loaded.

numba keeps compiled kernels in ``.nbi`` (index) and ``.nbc`` (data) files. Loading an
emptied index raises ``EOFError``, a truncated or altered data file raises an unpickling
error, fails in LLVM or crashes the process — and keeps doing so until the user deletes the
cache. So, for the cache files of fastdl's own kernels:

- every data file numba writes gets a checksum beside it (``<name>.nbc.sha256``), and a
  data file is loaded only if it matches (one without a checksum, from before this guard,
  is compiled again once);
- an index that cannot be read counts as empty.

Either way numba compiles the kernel again and replaces the entry, and fastdl warns once per
process. The guard wraps three methods of numba's ``IndexDataCacheFile``; where a numba
version lacks them, it stays off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings

__all__ = ["install"]

_warned: list[bool] = []


def _ours(cache_file) -> bool:
    """Whether a cache file belongs to one of fastdl's kernels (marked when numba made it)."""
    return getattr(cache_file, "_fastdl", False)


def _warn(path: str, why: str) -> None:
    if not _warned:
        _warned.append(True)
        warnings.warn(
            f"fastdl: a damaged numba cache entry ({os.path.basename(path)}: {why}) was "
            "discarded; the kernel is compiled again",
            RuntimeWarning,
            stacklevel=3,
        )


def _digest_path(path: str) -> str:
    return path + ".sha256"


def _drop(*paths: str) -> None:
    for p in paths:
        with contextlib.suppress(OSError):
            os.unlink(p)


def install() -> bool:
    """Wrap numba's cache file methods; returns False where this numba lacks them."""
    try:
        from numba.core.caching import Cache, IndexDataCacheFile
    except ImportError:
        return False
    names = ("_load_index", "_load_data", "_save_data", "_data_path", "_dump", "_open_for_write")
    if not all(hasattr(IndexDataCacheFile, n) for n in names) or not hasattr(Cache, "__init__"):
        return False
    if getattr(IndexDataCacheFile, "_fastdl_guarded", False):
        return True
    load_index, load_data = IndexDataCacheFile._load_index, IndexDataCacheFile._load_data
    save_data = IndexDataCacheFile._save_data
    cache_init = Cache.__init__

    def marking_init(self, py_func, *args, **kwargs):
        cache_init(self, py_func, *args, **kwargs)
        cache_file = getattr(self, "_cache_file", None)
        if cache_file is not None:  # only fastdl's own kernels are guarded
            cache_file._fastdl = getattr(py_func, "__module__", "").startswith("fastdl.")

    def guarded_load_index(self):
        if not _ours(self):
            return load_index(self)
        try:
            return load_index(self)
        except Exception as err:  # EOFError, UnpicklingError, ValueError, ...
            _warn(self._index_path, f"{type(err).__name__}")
            _drop(self._index_path)
            return {}

    def guarded_load_data(self, name):
        if not _ours(self):
            return load_data(self, name)
        path = self._data_path(name)
        with open(path, "rb") as f:  # FileNotFoundError: numba treats it as a miss
            data = f.read()
        try:
            with open(_digest_path(path)) as f:
                expected = f.read().strip()
        except OSError:
            expected = None
        if expected != hashlib.sha256(data).hexdigest():
            if expected is not None:
                _warn(path, "checksum mismatch")
            _drop(path, _digest_path(path))
            raise FileNotFoundError(path)  # numba's load() takes it as a miss and recompiles
        return load_data(self, name)

    def guarded_save_data(self, name, data):
        if not _ours(self):
            return save_data(self, name, data)
        payload = self._dump(data)
        path = self._data_path(name)
        with self._open_for_write(path) as f:
            f.write(payload)
        with self._open_for_write(_digest_path(path)) as f:
            f.write(hashlib.sha256(payload).hexdigest().encode())

    Cache.__init__ = marking_init
    IndexDataCacheFile._load_index = guarded_load_index
    IndexDataCacheFile._load_data = guarded_load_data
    IndexDataCacheFile._save_data = guarded_save_data
    IndexDataCacheFile._fastdl_guarded = True
    return True
