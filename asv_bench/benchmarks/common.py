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


def example_flops(net, x, training=True, one_hot=False):
    """FLOPs per call of ``net`` on the batch ``x`` — a training step's forward + backward, or
    a forward pass — from :func:`fastdl.summary.count` (2 per multiply-add of the matrix
    products, no input gradient in the first layer), so a rate cannot drift from the model
    it measures. Imported here, not at the top, so that the benchmark files still load for
    commits from before ``fastdl.summary``."""
    from fastdl.summary import count

    counted = count(net, x.shape[1:], one_hot=one_hot)
    return len(x) * (counted.training_flops if training else counted.forward_flops)
