"""Thread counts of the BLAS libraries in this process, through threadpoolctl.

fastdl's compiled kernels call GEMM from inside their own parallel regions, one thread per
block of images or rows; a multi-threaded BLAS there starts a second pool of threads that
competes with the first for the same cores. So while fastdl computes, every BLAS library that
threadpoolctl can steer (OpenBLAS, MKL, BLIS, FlexiBLAS) is held to one thread, and its count
is restored afterwards.

Accelerate (macOS) has no thread-count API: it picks its own threads per call, from the
``VECLIB_MAXIMUM_THREADS`` environment variable read when the library loads. fastdl cannot
change it at run time; set ``VECLIB_MAXIMUM_THREADS=1`` before starting Python to keep it
from competing with fastdl's threads. Without threadpoolctl installed, nothing is steered.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = [
    "refresh",
    "controlled",
    "get_blas_threads",
    "set_blas_threads",
    "blas_threads",
    "serial_blas",
]

_controllers: list = []


def refresh() -> None:
    """Look again for BLAS libraries (after one was loaded, e.g. SciPy's)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        _controllers.clear()
        return
    _controllers[:] = [
        c for c in ThreadpoolController().lib_controllers if getattr(c, "user_api", "") == "blas"
    ]


def controlled() -> list[tuple[str, str, int]]:
    """``(kind, file, threads)`` for every BLAS library whose threads fastdl steers."""
    return [(c.internal_api, c.filepath, c.get_num_threads()) for c in _controllers]


def get_blas_threads() -> int:
    """The largest thread count of the steerable BLAS libraries (1 when there is none)."""
    return max([c.get_num_threads() for c in _controllers] or [1])


def set_blas_threads(n: int) -> None:
    """Set every steerable BLAS library to ``n`` threads."""
    for c in _controllers:
        c.set_num_threads(int(n))


@contextlib.contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the block with every steerable BLAS on ``n`` threads, then restore each count."""
    previous = [c.get_num_threads() for c in _controllers]
    set_blas_threads(n)
    try:
        yield
    finally:
        for c, count in zip(_controllers, previous, strict=True):
            c.set_num_threads(count)


@contextlib.contextmanager
def serial_blas() -> Iterator[None]:
    """Run the block with every steerable BLAS on one thread (cheap when it already is)."""
    changed = []
    for c in _controllers:
        count = c.get_num_threads()
        if count != 1:
            c.set_num_threads(1)
            changed.append((c, count))
    try:
        yield
    finally:
        for c, count in changed:
            c.set_num_threads(count)


refresh()
