"""Plain threads for compiled kernels that release the GIL: the batch split into chunks.

The recurrent kernels and the staged twins split their batch into one chunk of rows (or
images) per thread and run each chunk on a plain Python thread: numba kernels compiled with
``nogil=True`` and numpy's ``matmul`` release the GIL, so the chunks run in parallel.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fastdl import config
from fastdl.kernels._jit import jit

__all__ = ["run_chunks", "n_chunks", "chunk_bounds"]


_pool: ThreadPoolExecutor | None = None
_pool_pid = -1


def run_chunks(kernel, chunks: int, *args) -> None:
    """Call ``kernel(*args, chunks, ch)`` for every chunk ``ch``, in parallel.

    The kernels are compiled with ``nogil=True`` (and the staged ones spend their time in
    such kernels and in numpy's ``matmul``, which releases the GIL too), so plain threads run
    them in parallel: chunk 0 on the calling thread, the others on a small pool of threads
    that sleep on a lock in between. A numba ``prange`` region instead pays the threading
    layer's wake-up each call, which on a recurrent layer's two regions per training step
    cost more than the work they held.
    """
    global _pool, _pool_pid
    stale = _pool is None or _pool._max_workers < chunks - 1 or _pool_pid != os.getpid()
    if chunks > 1 and stale:  # (threads do not survive a fork: a child makes its own pool)
        _pool = ThreadPoolExecutor(max_workers=chunks - 1, thread_name_prefix="fastdl")
        _pool_pid = os.getpid()
    errors = np.geterr()  # numpy's error handling is per thread: the caller's applies to all
    futures = [_pool.submit(_with_errstate, errors, kernel, *args, chunks, ch)
               for ch in range(1, chunks)]  # fmt: skip
    kernel(*args, chunks, 0)
    for f in futures:
        f.result()


def _with_errstate(errors: dict, kernel, *args) -> None:
    with np.errstate(**errors):
        kernel(*args)


def n_chunks(n_rows: int) -> int:
    """Chunks to split a batch of ``n_rows`` into: one per thread, at most one per row."""
    return max(1, min(config.get_num_threads(), n_rows))


@jit
def chunk_bounds(n_rows, n_chunks, chunk):
    """Rows ``[start, stop)`` of ``chunk`` when ``n_rows`` are split into ``n_chunks`` parts."""
    return chunk * n_rows // n_chunks, (chunk + 1) * n_rows // n_chunks
