"""The flags threads hand each other (kernels._spin): atomic loads and stores reach the other
thread, spins stop at their budget, and the wait-after-post delay is part of the call."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fastdl import config

pytestmark = pytest.mark.skipif(config.PURE_AT_IMPORT, reason="compiled code only")

if not config.PURE_AT_IMPORT:
    from fastdl.kernels import _spin


def test_a_posted_value_is_what_a_spin_sees():
    flags = np.zeros(4 * _spin.FLAG_STRIDE, np.int64)
    _spin.post(flags, 2 * _spin.FLAG_STRIDE, 7)
    assert flags[2 * _spin.FLAG_STRIDE] == 7 and flags.sum() == 7
    assert _spin.spin_until(flags, 2 * _spin.FLAG_STRIDE, 0, 1, 7, 1)
    assert not _spin.spin_until(flags, 2 * _spin.FLAG_STRIDE, 0, 1, 8, 1000)


def test_spin_until_needs_every_flag_of_the_stride():
    s = _spin.FLAG_STRIDE
    flags = np.zeros(6 * s, np.int64)
    flags[[0, 2 * s, 4 * s]] = [3, 3, 2]
    assert not _spin.spin_until(flags, 0, 2 * s, 3, 3, 100)  # the third is behind
    assert _spin.spin_until(flags, 0, 2 * s, 2, 3, 100)
    flags[4 * s] = 5
    assert _spin.spin_until(flags, 0, 2 * s, 3, 3, 100)
    assert _spin.spin_until(flags, 0, 2 * s, 0, 99, 1)  # no flags: nothing to wait for


def test_a_store_on_another_thread_ends_the_spin():
    """The load in the loop is atomic: a plain load could be hoisted out of the loop and the
    spin would never see the store (it would run to its budget, tens of seconds here)."""
    flags = np.zeros(2 * _spin.FLAG_STRIDE, np.int64)
    rate = _spin.polls_per_us(flags, _spin.FLAG_STRIDE)
    assert rate > 0

    def later():
        time.sleep(0.05)
        _spin.post(flags, 0, 1)

    t = threading.Thread(target=later)
    start = time.perf_counter()
    t.start()
    seen = _spin.spin_until(flags, 0, 0, 1, 1, int(rate * 30e6))  # a 30-second budget
    t.join()
    assert seen and time.perf_counter() - start < 10


def test_the_budget_ends_a_spin_that_sees_nothing():
    flags = np.zeros(_spin.FLAG_STRIDE, np.int64)
    rate = _spin.polls_per_us(flags, 0)
    start = time.perf_counter()
    assert not _spin.wait_for_post(flags, 0, 1, int(rate * 20_000), 0)  # 20 ms
    assert 0.002 < time.perf_counter() - start < 2.0


def test_post_then_wait_stores_first_and_delays_after_seeing():
    s = _spin.FLAG_STRIDE
    flags = np.zeros(2 * s, np.int64)
    flags[s] = 4
    rate = _spin.polls_per_us(flags, 0)
    start = time.perf_counter()
    assert _spin.post_then_wait(flags, 0, 9, s, 4, 10, int(rate * 20_000))  # a 20-ms delay
    assert time.perf_counter() - start > 0.002
    assert flags[0] == 9
    assert not _spin.post_then_wait(flags, 0, 10, s, 5, 100, 0)
    assert flags[0] == 10
