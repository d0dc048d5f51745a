"""run_chunks: every chunk once, all finished before it returns or raises, errors and numpy's
error handling carried over, nested calls and a pool that refuses work run in order."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fastdl.kernels import _threads
from fastdl.kernels._threads import run_chunks


def _recorder():
    calls, lock = [], threading.Lock()

    def kernel(tag, chunks, ch):
        with lock:
            calls.append((tag, chunks, ch, threading.get_ident()))

    return calls, kernel


@pytest.mark.parametrize("chunks", [1, 2, 3, 5])
def test_every_chunk_runs_once_the_first_on_the_caller(chunks):
    calls, kernel = _recorder()
    run_chunks(kernel, chunks, "a")
    assert sorted(c[:3] for c in calls) == [("a", chunks, ch) for ch in range(chunks)]
    assert [c[3] for c in calls if c[2] == 0] == [threading.get_ident()]


def test_an_error_in_the_first_chunk_is_raised_after_the_others_finish():
    done = threading.Event()

    def kernel(chunks, ch):
        if ch == 0:
            raise ValueError("chunk 0")
        time.sleep(0.2)
        done.set()

    with pytest.raises(ValueError, match="chunk 0"):
        run_chunks(kernel, 2)
    assert done.is_set()


def test_an_error_on_a_pool_thread_is_raised_and_the_first_chunks_wins():
    def late(chunks, ch):
        if ch == 1:
            raise KeyError("chunk 1")

    with pytest.raises(KeyError, match="chunk 1"):
        run_chunks(late, 3)

    def both(chunks, ch):
        if ch == 1:
            raise KeyError("chunk 1")
        if ch == 0:
            time.sleep(0.05)
            raise ValueError("chunk 0")

    with pytest.raises(ValueError, match="chunk 0"):
        run_chunks(both, 2)


def test_a_call_from_inside_a_chunk_runs_its_chunks_on_that_thread():
    inner = []

    def outer(chunks, ch):
        calls, kernel = _recorder()
        run_chunks(kernel, 3, ch)
        inner.append((threading.get_ident(), calls))

    run_chunks(outer, 2)  # would deadlock if a pool thread waited for the pool
    assert len(inner) == 2
    for ident, calls in inner:
        assert [c[2] for c in calls] == [0, 1, 2]  # in order, on the chunk's own thread
        assert {c[3] for c in calls} == {ident}


def test_chunks_the_pool_refuses_run_here_once_each(monkeypatch):
    """At interpreter shutdown ``submit`` raises RuntimeError: the chunks it did not take run
    on the caller, and none runs twice (a per-chunk partial sum added twice would double)."""
    run_chunks(lambda chunks, ch: None, 4)  # make the pool
    pool = _threads._pool
    real, taken = pool.submit, []

    def submit(*args):
        if taken:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        taken.append(args)
        return real(*args)

    monkeypatch.setattr(pool, "submit", submit)
    calls, kernel = _recorder()
    run_chunks(kernel, 4, "b")
    assert sorted(c[2] for c in calls) == [0, 1, 2, 3]
    assert [c[2] for c in calls if c[3] == threading.get_ident()] == [0, 2, 3]


def test_the_callers_numpy_error_handling_applies_on_the_pool_threads():
    def divide(out, chunks, ch):
        out[ch] = np.float64(1.0) / np.float64(0.0)

    out = np.zeros(2)
    with np.errstate(divide="raise"), pytest.raises(FloatingPointError):
        run_chunks(divide, 2, out)
    seen = []
    with np.errstate(divide="call", call=lambda kind, flag: seen.append(kind)):
        run_chunks(divide, 2, out)
    assert seen == ["divide by zero", "divide by zero"] and np.all(np.isinf(out))
