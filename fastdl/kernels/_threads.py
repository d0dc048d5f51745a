"""Plain threads for compiled kernels that release the GIL: the batch split into chunks.

Every multi-threaded kernel (convolutions, Winograd, pooling, dense products, batch norm,
the recurrent loops, translation, and the staged twins) splits its batch into one chunk of
rows (or images) per thread and runs each chunk on a plain Python thread: numba kernels
compiled with ``nogil=True`` and numpy's ``matmul`` release the GIL, so the chunks run in
parallel. numba's own threading layer is never started (see :mod:`fastdl.kernels._jit`).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from fastdl import config
from fastdl.kernels._jit import jit

__all__ = ["run_chunks", "n_chunks", "chunk_bounds"]


_pool: ThreadPoolExecutor | None = None
_pool_pid = -1
_pool_lock = threading.Lock()
_inside = threading.local()  # .chunk is True on a thread while it runs a chunk


def run_chunks(kernel, chunks: int, *args) -> None:
    """Call ``kernel(*args, chunks, ch)`` for every chunk ``ch``, in parallel.

    The kernels are compiled with ``nogil=True`` (and the staged ones spend their time in
    such kernels and in numpy's ``matmul``, which releases the GIL too), so plain threads run
    them in parallel: chunk 0 on the calling thread, the others on a small pool of threads
    that sleep on a lock in between. A numba ``prange`` region instead paid the threading
    layer's wake-up each call (~0.5 ms on the 2-core reference machine), more than many
    kernels' work.

    Every chunk has finished when this returns or raises (an error in one chunk is raised
    after the others are done, the first chunk's first). A call from inside a chunk, or one
    made when the interpreter is shutting down and no thread can be started, runs its chunks
    one after the other on the calling thread: the same blocks, so the same results.
    """
    pool = _worker_pool(chunks) if chunks > 1 and not getattr(_inside, "chunk", False) else None
    futures = []
    if pool is not None:
        # numpy's error handling is per thread: the caller's applies to every chunk
        errors = (np.geterr(), np.geterrcall())
        try:
            for ch in range(1, chunks):
                futures.append(pool.submit(_chunk, errors, kernel, *args, chunks, ch))
        except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
            pass
    first_error = None
    outer, _inside.chunk = getattr(_inside, "chunk", False), True
    try:
        for ch in (0, *range(len(futures) + 1, chunks)):  # and the chunks no thread took
            kernel(*args, chunks, ch)
    except BaseException as error:  # noqa: BLE001 (raised below, once every chunk is done)
        first_error = error
    finally:
        _inside.chunk = outer
    wait(futures)
    for f in futures:
        if first_error is None and f.exception() is not None:
            first_error = f.exception()
    if first_error is not None:
        raise first_error


def _worker_pool(chunks: int) -> ThreadPoolExecutor:
    """The pool of ``chunks - 1`` or more threads (made again after a fork: threads do not
    survive one)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool._max_workers < chunks - 1 or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=chunks - 1, thread_name_prefix="fastdl")
            _pool_pid = os.getpid()
        return _pool


def _chunk(errors: tuple, kernel, *args) -> None:
    """One chunk on a pool thread, under the caller's numpy error handling."""
    modes, call = errors
    _inside.chunk = True  # a pool thread runs nothing else
    with np.errstate(call=call, **modes):
        kernel(*args)


def n_chunks(n_rows: int) -> int:
    """Chunks to split a batch of ``n_rows`` into: one per thread, at most one per row."""
    return max(1, min(config.get_num_threads(), n_rows))


@jit
def chunk_bounds(n_rows, n_chunks, chunk):
    """Rows ``[start, stop)`` of ``chunk`` when ``n_rows`` are split into ``n_chunks`` parts."""
    return chunk * n_rows // n_chunks, (chunk + 1) * n_rows // n_chunks
