"""Helpers shared by the benchmark files: rates measured over a fixed stretch of wall time."""

import time


def per_second(fn, items, seconds=2.0):
    """``items`` processed per second by repeated ``fn()`` calls, timed over at least ``seconds``
    (one untimed call first, so a lazy setup is never counted)."""
    fn()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return items * calls / (time.perf_counter() - start)


def rate(fn, flops, seconds=1.0):
    """GFLOP/s of ``fn()``, which does ``flops`` floating-point operations per call."""
    return per_second(fn, flops, seconds) / 1e9
