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


def test_chunks_no_worker_can_take_run_here_once_each(monkeypatch):
    """When only one worker thread can be started (``Thread.start`` raises, as it does at
    interpreter shutdown or when the system has no thread left), that worker runs chunk 1
    and the caller the others, and none runs twice (a per-chunk partial sum added twice
    would double)."""
    monkeypatch.setattr(_threads, "_pool", _threads._Workers())
    real_start, started = threading.Thread.start, []

    def start(thread):
        if started:
            raise RuntimeError("can't start new thread")
        started.append(thread)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    calls, kernel = _recorder()
    run_chunks(kernel, 4, "b")
    assert sorted(c[2] for c in calls) == [0, 1, 2, 3]
    assert [c[2] for c in calls if c[3] == threading.get_ident()] == [0, 2, 3]
    assert [c[3] for c in calls if c[2] == 1] == [started[0].ident]
    _threads._pool.abandon()


def test_after_the_workers_stop_the_caller_runs_every_chunk(monkeypatch):
    """At exit the workers are stopped (``abandon``); a call after that runs its chunks in
    order on the calling thread."""
    workers = _threads._Workers()
    monkeypatch.setattr(_threads, "_pool", workers)
    run_chunks(lambda chunks, ch: None, 3)
    threads = list(workers.threads)
    workers.abandon()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    calls, kernel = _recorder()
    run_chunks(kernel, 3, "c")
    assert [c[2] for c in calls] == [0, 1, 2]
    assert {c[3] for c in calls} == {threading.get_ident()}


@pytest.mark.parametrize("pause_s", [0.0, 0.004, 0.02])
def test_workers_that_went_to_sleep_take_the_next_job(pause_s):
    """A worker spins for its next job only briefly (``WORKER_SPIN_US``), then sleeps: calls
    after short and long pauses all run every chunk on a worker, with the results in place."""
    out = np.zeros((6, 3))

    def kernel(out, row, chunks, ch):
        out[row, ch] = threading.get_ident()

    for row in range(out.shape[0]):
        run_chunks(kernel, 3, out, row)
        time.sleep(pause_s)
    assert np.all(out[:, 0] == threading.get_ident())
    assert np.all(out[:, 1:] != threading.get_ident()) and np.all(out[:, 1:] != 0)


def test_calls_from_several_threads_at_once_each_run_every_chunk():
    results, errors = {}, []

    def kernel(out, chunks, ch):
        out[ch] += ch + 1

    def caller(tag):
        try:
            out = np.zeros(3)
            for _ in range(200):
                run_chunks(kernel, 3, out)
            results[tag] = out
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    callers = [threading.Thread(target=caller, args=(i,)) for i in range(3)]
    for t in callers:
        t.start()
    for t in callers:
        t.join(timeout=60)
    assert not errors
    for tag in range(3):
        np.testing.assert_array_equal(results[tag], [200.0, 400.0, 600.0])


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


def test_a_stale_done_left_by_an_interrupted_caller_is_skipped(monkeypatch):
    """A caller interrupted while waiting (KeyboardInterrupt) leaves its worker's
    ``(generation, error)`` behind; the next call must wait for its own generation, not
    return on the old one while its chunk still runs."""
    workers = _threads._Workers()
    monkeypatch.setattr(_threads, "_pool", workers)
    run_chunks(lambda chunks, ch: None, 2)
    workers.finished[0].put((workers.generation - 1, KeyError("stale")))  # an old one
    out = np.zeros(2)

    def slow(out, chunks, ch):
        if ch == 1:
            time.sleep(0.1)
        out[ch] = 1.0

    run_chunks(slow, 2, out)  # neither returns early nor raises the stale error
    np.testing.assert_array_equal(out, [1.0, 1.0])
    workers.abandon()
