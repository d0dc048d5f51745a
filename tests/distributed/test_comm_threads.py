"""Each rank's default thread count: its share of the node's CPUs."""

from __future__ import annotations

import pytest

from fastdl import config
from fastdl.distributed.base import Communicator
from fastdl.distributed.threads import apply_default, share_of_cpus

EIGHT = frozenset(range(8))


@pytest.mark.parametrize(
    "node, local_rank, threads, why",
    [
        ([EIGHT], 0, 8, "the 8 CPUs this rank may run on (the only rank on its node)"),
        ([EIGHT] * 2, 1, 4, "8 CPUs shared by 2 ranks on this node"),
        ([EIGHT] * 3, 0, 2, "8 CPUs shared by 3 ranks on this node"),  # 8 // 3
        ([frozenset({0, 1})] * 3, 2, 1, "2 CPUs shared by 3 ranks on this node"),  # never 0
        ([frozenset({0, 1, 2}), frozenset({3, 4, 5})], 1, 3, "the 3 CPUs the launcher bound"),
        ([frozenset({0, 1, 2, 3}), frozenset({2, 3})], 0, 3, "a 3-CPU share of the 4 CPUs"),
        ([frozenset({0, 1, 2, 3}), frozenset({2, 3})], 1, 1, "a 1-CPU share of the 2 CPUs"),
    ],
    ids=["alone", "2-ranks", "3-ranks", "oversubscribed", "bound", "overlap-0", "overlap-1"],
)
def test_share_of_cpus(node, local_rank, threads, why):
    n, reason = share_of_cpus(node, local_rank)
    assert n == threads
    assert reason.startswith(why)


class TwoRanks(Communicator):
    """Local rank 1 of 2, both free to run on every CPU this process may use."""

    def __init__(self):
        super().__init__(rank=1, size=2, local_rank=1, local_size=2, backend="test")


@pytest.fixture
def threads_restored(monkeypatch):
    previous = config.get_num_threads()
    monkeypatch.delenv("FASTDL_NUM_THREADS", raising=False)
    yield
    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    config.set_num_threads(previous)


def test_apply_default_sets_the_share(threads_restored):
    comm = TwoRanks()
    cores = config._thread_limit()[0]
    apply_default(comm)
    assert comm.threads == config.get_num_threads() == max(1, cores // 2)
    assert comm.threads_why == f"{cores} CPUs shared by 2 ranks on this node"


def test_fastdl_num_threads_wins(threads_restored, monkeypatch):
    monkeypatch.setenv("FASTDL_NUM_THREADS", "1")
    before = config.get_num_threads()
    comm = TwoRanks()
    apply_default(comm)
    assert (comm.threads, comm.threads_why) == (before, "FASTDL_NUM_THREADS")


def test_the_share_is_capped_at_numba_num_threads(threads_restored, monkeypatch):
    class Alone(Communicator):
        def __init__(self):
            super().__init__(0, 1, 0, 1, "test")

        def node_cpus(self):
            return [EIGHT]

    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    comm = Alone()
    apply_default(comm)
    assert comm.threads == config.get_num_threads() == 1
    assert comm.threads_why.endswith(", capped at 1 (NUMBA_NUM_THREADS)")
