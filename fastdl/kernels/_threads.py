"""Plain threads for compiled kernels that release the GIL: the batch split into chunks.

Every multi-threaded kernel (convolutions, Winograd, pooling, dense products, batch norm,
the recurrent loops, translation, and the staged twins) splits its batch into one chunk of
rows (or images) per thread and runs each chunk on a plain Python thread: numba kernels
compiled with ``nogil=True`` and numpy's ``matmul`` release the GIL, so the chunks run in
parallel. numba's own threading layer is never started (see :mod:`fastdl.kernels._jit`).

Hand-over. The calling thread runs chunk 0 and one *worker* thread per other chunk runs the
rest. A worker that has just finished a chunk waits for the next one by spinning on a flag
(:mod:`fastdl.kernels._spin`: compiled code, the GIL released) for up to
:data:`WORKER_SPIN_US`, then sleeps on its queue of jobs; the caller, once its own chunk is done,
spins on the workers' "done" flags for up to :data:`CALLER_SPIN_US`, then sleeps. On the
2-vCPU KVM guest of PERFORMANCE.md a sleeping thread took 50-200 µs to wake, twice per call
(the old ``ThreadPoolExecutor`` hand-over: 150-450 µs for an empty two-chunk call, against
the 0.2-10 ms kernels it split); spinning makes an empty call cost about 10-30 µs. The budgets
are short so that on a machine with no core to spare the spinning stops at once: a worker
spins only right after a chunk, the caller only while its workers compute.

A worker takes the GIL back only after seeing its job posted plus a short delay
(:data:`START_DELAY_US`), and it posts "done" from compiled code that goes straight on to
spin, so the two threads do not contend for the GIL at a hand-over (a thread that finds the
GIL taken sleeps, and pays the wake-up this module avoids).
"""

from __future__ import annotations

import atexit
import os
import queue
import threading

import numpy as np

from fastdl import config
from fastdl.kernels import _spin
from fastdl.kernels._jit import jit, numba

__all__ = ["run_chunks", "n_chunks", "chunk_bounds", "WORKER_SPIN_US", "CALLER_SPIN_US"]

#: How long a worker spins for its next chunk after finishing one, before it sleeps.
WORKER_SPIN_US = 2000.0
#: How long the caller spins for its workers after finishing its own chunk, before it sleeps.
CALLER_SPIN_US = 5000.0
#: How long a worker waits, after seeing its job posted, before it takes the GIL: the caller
#: is then inside its own chunk's compiled kernel, not holding the GIL.
START_DELAY_US = 5.0
#: At most this many worker threads (a call with more chunks runs the rest on the caller).
MAX_WORKERS = 64
#: Each worker's flags: its "posted" flag, then its "done" flag, a cache line each.
_SLOT = 2 * _spin.FLAG_STRIDE

_pool: _Workers | None = None
_pool_lock = threading.Lock()
_inside = threading.local()  # .chunk is True on a thread while it runs a chunk


def run_chunks(kernel, chunks: int, *args) -> None:
    """Call ``kernel(*args, chunks, ch)`` for every chunk ``ch``, in parallel.

    The kernels are compiled with ``nogil=True`` (and the staged ones spend their time in
    such kernels and in numpy's ``matmul``, which releases the GIL too), so plain threads run
    them in parallel: chunk 0 on the calling thread, the others on worker threads (see the
    module's docstring for how they are handed over). A numba ``prange`` region instead paid
    the threading layer's wake-up each call (~0.5 ms on the 2-core reference machine), more
    than many kernels' work.

    Every chunk has finished when this returns or raises (an error in one chunk is raised
    after the others are done, the first chunk's first). A call from inside a chunk, or one
    made when no worker thread can be had (the interpreter is shutting down, or no thread
    can be started), runs its chunks one after the other on the calling thread: the same
    blocks, so the same results. Calls from several threads at once take turns.
    """
    workers = _workers(chunks) if chunks > 1 and not getattr(_inside, "chunk", False) else None
    if workers is None:
        errors = [_run_here(kernel, chunks, args, range(chunks))]
    else:
        with workers.call_lock:
            handed = workers.post(kernel, chunks, args)
            first = _run_here(kernel, chunks, args, (0, *range(handed + 1, chunks)))
            errors = [first, *workers.wait(handed)]
    for error in errors:
        if error is not None:
            raise error


def _run_here(kernel, chunks, args, which):
    """Run chunks ``which`` on this thread; return the first error (or None) once every one
    of them has run or failed."""
    first_error = None
    outer, _inside.chunk = getattr(_inside, "chunk", False), True
    try:
        for ch in which:
            try:
                kernel(*args, chunks, ch)
            except BaseException as error:  # noqa: BLE001 (raised once every chunk is done)
                if first_error is None:
                    first_error = error
                break  # as before: a failed chunk 0 stops this thread's later chunks
    finally:
        _inside.chunk = outer
    return first_error


def _workers(chunks: int) -> _Workers | None:
    """The worker threads, at least ``chunks - 1`` of them if they can be started (made again
    after a fork, see :func:`_forget_pool_after_fork`); None once the interpreter is shutting
    down."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = _Workers()
        return _pool if _pool.grow(chunks - 1) else None


class _Workers:
    """Worker threads and their flags: worker ``w`` watches ``flags[post_i(w)]`` for the
    generation of its next job and stores the generation it finished in ``flags[done_i(w)]``.

    The flags only make waiting fast; what is handed over goes through queues, so a thread
    that gave up spinning sleeps on them: ``posted[w]`` holds worker ``w``'s jobs, and
    ``finished[w]`` a ``(generation, error)`` per job it ran (a caller that was interrupted
    while waiting leaves one behind, which the next caller skips by its generation).
    """

    def __init__(self) -> None:
        self.call_lock = threading.Lock()
        self.closed = False
        self.generation = 0
        self.threads: list[threading.Thread] = []
        self.posted: list[queue.SimpleQueue] = []
        self.finished: list[queue.SimpleQueue] = []
        self.flags = np.zeros(_SLOT * MAX_WORKERS, np.int64)
        self.spin = numba is not None
        rate = 0.0
        if self.spin:
            rate = _spin.polls_per_us(self.flags, 0)
            # compiled (or loaded) here, never on a worker, which may be cut off by the exit
            # while it compiles (flags[1] is read by no one)
            _spin.post(self.flags, 1, 0)
            _spin.post_then_wait(self.flags, 1, 0, 1, 0, 1, 1)
        self.worker_polls = int(WORKER_SPIN_US * rate)
        self.caller_polls = int(CALLER_SPIN_US * rate)
        self.delay_polls = max(1, int(START_DELAY_US * rate))

    @staticmethod
    def post_i(w: int) -> int:
        return _SLOT * w

    @staticmethod
    def done_i(w: int) -> int:
        return _SLOT * w + _spin.FLAG_STRIDE

    def grow(self, n: int) -> bool:
        """Have at least ``min(n, MAX_WORKERS)`` workers, or as many as can be started;
        False if closed or there is none (then the caller runs its chunks itself)."""
        if self.closed:
            return False
        while len(self.threads) < min(n, MAX_WORKERS):
            w = len(self.threads)
            self.posted.append(queue.SimpleQueue())
            self.finished.append(queue.SimpleQueue())
            thread = threading.Thread(
                target=self._serve, args=(w,), name=f"fastdl-{w}", daemon=True
            )
            try:
                thread.start()
            except RuntimeError:  # "can't start new thread", or at interpreter shutdown
                self.posted.pop()
                self.finished.pop()
                break
            self.threads.append(thread)
        return bool(self.threads)

    def post(self, kernel, chunks: int, args: tuple) -> int:
        """Hand chunks ``1 .. handed`` to workers ``0 .. handed - 1``; return ``handed``."""
        handed = min(chunks - 1, len(self.threads))
        self.generation += 1
        gen = self.generation
        errors = (np.geterr(), np.geterrcall())  # numpy's error handling is per thread
        for w in range(handed):
            self.posted[w].put((kernel, args, chunks, w + 1, errors, gen))
        if self.spin:
            for w in range(handed):
                _spin.post(self.flags, self.post_i(w), gen)
        return handed

    def wait(self, handed: int) -> list:
        """Wait until workers ``0 .. handed - 1`` finish this generation; their errors."""
        gen = self.generation
        if self.spin and handed:
            _spin.spin_until(self.flags, self.done_i(0), _SLOT, handed, gen, self.caller_polls)
        errors = []
        for w in range(handed):
            done, error = self.finished[w].get()  # at once, unless the spin above gave up
            while done != gen:  # left by an interrupted caller
                done, error = self.finished[w].get()
            errors.append(error)
        return errors

    def _serve(self, w: int) -> None:
        """Worker ``w``'s loop: take a job, run it, say it is done, until given None."""
        _inside.chunk = True  # a worker runs nothing else
        applied = None
        flags, post_i, done_i = self.flags, self.post_i(w), self.done_i(w)
        while True:
            job = self.posted[w].get()  # at once when the spin below saw it posted
            if job is None:  # abandon(): stop
                return
            kernel, args, chunks, ch, errors, gen = job
            error = None
            try:
                if errors != applied:  # the caller's numpy error handling (kept until changed)
                    np.seterr(**errors[0])
                    np.seterrcall(errors[1])
                    applied = errors
                kernel(*args, chunks, ch)
            except BaseException as e:  # noqa: BLE001 (the caller raises it)
                error = e
            del job, kernel, args  # hold no reference to the caller's arrays while waiting
            self.finished[w].put((gen, error))
            del error
            if self.spin:  # "done", then straight on to spin for the next job, in one call:
                # the GIL is not taken between the two, so the caller never finds it held
                _spin.post_then_wait(
                    flags, done_i, gen, post_i, gen + 1, self.worker_polls, self.delay_polls
                )

    def abandon(self) -> None:
        """Stop the workers (at exit): each finishes any chunk it runs, then takes None and
        returns."""
        self.closed = True
        with self.call_lock:
            self.generation += 1
            for w in range(len(self.threads)):
                self.posted[w].put(None)
                if self.spin:
                    _spin.post(self.flags, self.post_i(w), self.generation)


def _forget_pool_after_fork() -> None:
    """In a forked child: the parent's workers and locks are not this process's (threads do
    not survive a fork), so the child makes its own on its first call. (Windows, which has
    no ``register_at_fork``, has no fork either.)"""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


@atexit.register
def _stop_workers() -> None:
    """At exit: stop the workers and wait (briefly) until they have: a daemon thread still
    spinning in compiled code while the interpreter tears down could crash the exit."""
    with _pool_lock:
        pool = _pool
    if pool is None:
        return
    pool.abandon()
    for thread in pool.threads:
        thread.join(timeout=5.0)


def n_chunks(n_rows: int) -> int:
    """Chunks to split a batch of ``n_rows`` into: one per thread, at most one per row."""
    return max(1, min(config.get_num_threads(), n_rows))


@jit
def chunk_bounds(n_rows, n_chunks, chunk):
    """Rows ``[start, stop)`` of ``chunk`` when ``n_rows`` are split into ``n_chunks`` parts."""
    return chunk * n_rows // n_chunks, (chunk + 1) * n_rows // n_chunks
