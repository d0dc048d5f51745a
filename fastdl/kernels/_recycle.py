"""Very large output arrays, recycled instead of mapped afresh on every pass.

glibc's ``malloc`` maps an allocation above its mmap threshold (at most 32 MiB) straight
from the system and hands it back on ``free``; the next allocation of the same size is
mapped again, and the system zeroes every page of it on its first write. An inference pass
of the reference CNN over 1,000 images makes three such arrays (86, 147 and 37 MB: the two
convolutions' outputs and the pool's), and mapping them afresh costs about a sixth of the
pass (9,985 → 11,934 images/s with glibc told to keep them, ``GLIBC_TUNABLES``; smaller
arrays, a training step's, it recycles itself).

:func:`empty` keeps the arrays of at least :data:`MIN_BYTES` that it made, and gives one back
out when nothing else refers to it any more: its reference count (``sys.getrefcount``) is
then the pool's own. A view of it (a reshape, a transpose handed to the user) refers to
it, so an array is never reused while any part of it can still be read. When no kept array
fits a request, the unreferenced ones are dropped (their memory goes back to the system)
before a new one is made, and :func:`trim` drops them at the end of an inference pass or a
backward pass (:class:`fastdl.NeuralNetwork`): the pool holds the arrays in use, and
between two passes the last pass's, which the next one takes again. The values of a recycled array are whatever it held: callers overwrite every
element, as after ``np.empty``.
"""

from __future__ import annotations

import sys
import threading
from math import prod

import numpy as np

__all__ = ["empty", "trim", "MIN_BYTES"]

#: Arrays smaller than this come from ``np.empty`` (the allocator recycles them itself).
MIN_BYTES = 32 << 20

_kept: list[np.ndarray] = []
_lock = threading.Lock()


def _unreferenced(i: int) -> bool:
    """Whether ``_kept[i]`` is referred to by the list alone (getrefcount's own argument
    is the second reference)."""
    return sys.getrefcount(_kept[i]) == 2


def empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """``np.empty(shape, dtype)``, C-contiguous, from a kept array of the same size and
    dtype when one is no longer referred to (see the module's docstring).

    Parameters
    ----------
    shape : tuple of int
    dtype : numpy dtype or type

    Returns
    -------
    ndarray, shape ``shape``, dtype ``dtype``, C-contiguous; its values are undefined
    """
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    nbytes = prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    with _lock:
        for i in range(len(_kept)):
            if _kept[i].dtype == dtype and _kept[i].size * dtype.itemsize == nbytes:
                if _unreferenced(i):
                    return _kept[i].reshape(shape)
        # none fits: drop the unreferenced ones (another size, from an earlier pass) first
        _kept[:] = [_kept[i] for i in range(len(_kept)) if not _unreferenced(i)]
        made = np.empty(nbytes // dtype.itemsize, dtype=dtype)
        _kept.append(made)
        return made.reshape(shape)


def trim() -> None:
    """Drop every kept array that nothing else refers to, so its memory goes back to the
    system. The network calls this after an inference pass and after a backward pass,
    when the arrays of the pass before that were not reused are no longer wanted."""
    with _lock:
        _kept[:] = [_kept[i] for i in range(len(_kept)) if not _unreferenced(i)]
