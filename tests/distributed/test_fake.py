"""What a communicator promises, on the in-process fake backend (``run_fake``) and on
``SingleProcess``: rank-order sums in place, identical on every rank; checks before any data
moves; broadcasts; node-first runs; and a failing rank that ends the run instead of hanging."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from fastdl.distributed import DistributedError, SingleProcess
from fastdl.distributed.base import sum_in_rank_order
from fastdl.distributed.fake import run_fake


def values(rank: int, dtype: str, shape: tuple) -> np.ndarray:
    """Rank ``rank``'s buffer: magnitudes over 12 decades, so the order of the sum shows."""
    rng = np.random.default_rng([7, rank])
    if dtype == "int64":
        return rng.integers(-(2**40), 2**40, shape, dtype=np.int64)
    return (rng.standard_normal(shape) * 10.0 ** rng.uniform(-6, 6, shape)).astype(dtype)


def rank_order_sum(n: int, dtype: str, shape: tuple) -> np.ndarray:
    rows = [values(r, dtype, shape).reshape(-1) for r in range(n)]
    return sum_in_rank_order(rows, np.empty(int(np.prod(shape)), dtype)).reshape(shape)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (3, 4, 5), (1000,)], ids=str)
def test_allreduce_is_the_rank_order_sum_in_place_on_every_rank(n, dtype, shape):
    def rank(comm):
        buf = values(comm.rank, dtype, shape)
        address = buf.ctypes.data
        assert comm.allreduce_(buf) is buf and buf.ctypes.data == address
        return buf

    expected = rank_order_sum(n, dtype, shape)
    for buf in run_fake(n, rank):
        assert buf.dtype == dtype and buf.shape == shape
        assert buf.tobytes() == expected.tobytes()


def test_the_sum_follows_rank_order_where_float_addition_is_not_associative():
    x = [np.float32(1e8), np.float32(-1e8), np.float32(1.0)]  # -1e8 + 1 rounds to -1e8

    def rank(comm):
        return comm.allreduce_(np.array([x[comm.rank]]))[0]

    assert run_fake(3, rank) == [1.0, 1.0, 1.0]  # (x0 + x1) + x2
    assert x[0] + (x[1] + x[2]) == 0.0  # another order, another sum


@pytest.mark.parametrize(
    "bad, error, says",
    [
        (lambda: np.zeros(4, np.float16), TypeError, "expected a float32, float64 or int64"),
        (lambda: np.zeros(4, np.int32), TypeError, r"got <i4 \(int32\)"),
        (lambda: np.zeros(4, bool), TypeError, "expected a float32"),
        (lambda: np.zeros(4, ">f4"), TypeError, "got >f4"),
        (lambda: np.zeros(4, object), TypeError, "Python objects"),
        (lambda: [1.0, 2.0], TypeError, "expected a numpy array, got list"),
        (lambda: np.zeros(8, np.float32)[::2], ValueError, "must be C-contiguous"),
        (lambda: np.zeros((3, 4), np.float64, order="F"), ValueError, "must be C-contiguous"),
        (lambda: np.broadcast_to(np.float32(1), (4,)), ValueError, r"strides \(0,\)"),
    ],
    ids=["float16", "int32", "bool", "big-endian", "object", "list", "strided", "fortran",
         "broadcast-view"],
)  # fmt: skip
@pytest.mark.parametrize("backend", ["fake", "single"])
def test_buffers_that_cannot_be_summed_are_refused_before_communicating(bad, error, says, backend):
    def rank(comm):
        comm.allreduce_(bad())

    with pytest.raises(error, match=says):
        if backend == "fake":
            run_fake(2, rank)
        else:
            rank(SingleProcess())


def test_read_only_buffers_are_refused():
    buf = np.zeros(4, np.float64)
    buf.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        SingleProcess().allreduce_(buf)
    with pytest.raises(ValueError, match="read-only"):
        run_fake(2, lambda comm: comm.broadcast_(buf))


@pytest.mark.parametrize(
    "mine, says",
    [
        (lambda r: np.zeros(5 + r, np.float32),
         r"rank 0: float32 \(4 bytes\) × 5; rank 1: float32 \(4 bytes\) × 6"),
        (lambda r: np.zeros(5, [np.float32, np.float64][r]), r"rank 1: float64 \(8 bytes\) × 5"),
    ],
    ids=["sizes", "dtypes"],
)  # fmt: skip
def test_ranks_passing_different_buffers_all_get_an_error_naming_each(mine, says):
    def rank(comm):
        with pytest.raises(ValueError, match=says) as caught:
            comm.allreduce_(mine(comm.rank))
        return str(caught.value), comm.allreduce_sum([1.0]).tolist()  # and it still works

    for message, after in run_fake(2, rank):
        assert message.startswith("allreduce_: the ranks passed different buffers")
        assert after == [2.0]


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("dtype", ["float32", "uint8", "bool", "complex128", "int32"])
def test_broadcast_copies_the_roots_bytes_in_place(n, dtype):
    def rank(comm):
        out = []
        for root in range(n):
            buf = np.full((2, 3), comm.rank + 1).astype(dtype)
            address = buf.ctypes.data
            assert comm.broadcast_(buf, root=root) is buf and buf.ctypes.data == address
            out.append(buf.copy())
        return out

    for bufs in run_fake(n, rank):
        for root, buf in enumerate(bufs):
            assert buf.tobytes() == np.full((2, 3), root + 1).astype(dtype).tobytes()


def test_broadcast_checks_its_root():
    comm = SingleProcess()
    with pytest.raises(ValueError, match="root 1 is not a rank of 0..0"):
        comm.broadcast_(np.zeros(3), root=1)
    with pytest.raises(TypeError, match="root must be an int"):
        comm.broadcast_(np.zeros(3), root=True)

    def rank(comm):
        with pytest.raises(ValueError, match=r"rank 0: float64 \(8 bytes\) × 3, root 0; rank 1"):
            comm.broadcast_(np.zeros(3), root=comm.rank)

    run_fake(2, rank)


def test_allreduce_sum_returns_float64_sums():
    def rank(comm):
        out = comm.allreduce_sum([1, comm.rank, 0.5])
        assert out.dtype == np.float64 and out.shape == (3,)
        return out.tolist()

    assert run_fake(3, rank) == [[3.0, 3.0, 1.5]] * 3
    with pytest.raises(ValueError, match=r"expected a flat sequence, got shape \(1, 2\)"):
        SingleProcess().allreduce_sum([[1.0, 2.0]])


def test_single_process_leaves_buffers_as_they_are():
    comm = SingleProcess()
    buf = np.arange(5.0)
    assert comm.allreduce_(buf) is buf and buf.tolist() == [0, 1, 2, 3, 4]
    assert comm.broadcast_(buf) is buf and buf.tolist() == [0, 1, 2, 3, 4]
    comm.barrier()
    assert comm.first_on_each_node(lambda a, b=0: a + b, 2, b=3) == 5
    assert (comm.rank, comm.size, comm.local_rank, comm.local_size, comm.is_root) == (
        0, 1, 0, 1, True,
    )  # fmt: skip
    assert repr(comm).startswith("SingleProcess(rank=0, size=1, local_rank=0, local_size=1")


def test_ranks_take_turns_one_at_a_time():
    running, most = [0], [0]

    def rank(comm):
        for _ in range(3):
            running[0] += 1
            most[0] = max(most[0], running[0])
            time.sleep(0.01)  # another thread would run now, if it could
            running[0] -= 1
            comm.barrier()
        return threading.current_thread().name

    names = run_fake(4, rank)
    assert most[0] == 1
    assert len(set(names)) == 4


def test_first_on_each_node_runs_local_rank_0_before_the_others_of_its_node():
    events: list[tuple[int, str]] = []

    def rank(comm):
        def warm():
            events.append((comm.rank, "runs"))
            return comm.local_rank

        events.append((comm.rank, "calls"))
        return comm.first_on_each_node(warm), comm.local_size

    assert run_fake(5, rank, ranks_per_node=2) == [(0, 2), (1, 2), (0, 2), (1, 2), (0, 1)]
    ran = [r for r, what in events if what == "runs"]
    for first, other in [(0, 1), (2, 3)]:
        assert ran.index(first) < ran.index(other)


def test_a_rank_that_raises_ends_the_run_and_the_others_are_told():
    told: dict[int, str] = {}

    def rank(comm):
        if comm.rank == 1:
            raise KeyError("boom")
        try:
            comm.allreduce_(np.ones(3))
        except DistributedError as e:
            told[comm.rank] = str(e)
            raise

    start = time.monotonic()
    with pytest.raises(KeyError, match="boom"):
        run_fake(3, rank, timeout=30)
    assert time.monotonic() - start < 5
    # rank 0 waited in allreduce_; rank 2, whose turn had not come, is stopped at its start
    assert told == {0: "rank 0, in allreduce_: rank 1 failed with KeyError: 'boom'"}


def test_ranks_that_can_never_meet_are_an_error_not_a_hang():
    def rank(comm):
        comm.allreduce_(np.ones(3))
        if comm.rank == 0:
            comm.barrier()

    with pytest.raises(DistributedError, match="can never meet: rank 0 waits in barrier, "
                                               "rank 1 has returned"):  # fmt: skip
        run_fake(2, rank, timeout=30)


def test_ranks_in_different_collectives_are_an_error():
    def rank(comm):
        if comm.rank == 0:
            comm.barrier()
        else:
            comm.broadcast_(np.ones(2))

    with pytest.raises(DistributedError, match="different collectives: rank 0 in barrier, "
                                               "rank 1 in broadcast_"):  # fmt: skip
        run_fake(2, rank, timeout=30)


def test_abort_ends_the_run_with_the_message():
    def rank(comm):
        if comm.rank == 1:
            comm.abort("the loss is NaN")
        comm.barrier()

    with pytest.raises(DistributedError, match="rank 1 of 2 stops: the loss is NaN; the whole"):
        run_fake(2, rank, timeout=30)


def test_single_process_abort_writes_the_message_and_exits(capsys):
    with pytest.raises(SystemExit) as stopped:
        SingleProcess().abort("out of time")
    assert stopped.value.code == 1
    assert capsys.readouterr().err.startswith(
        "fastdl.distributed: rank 0 of 1 stops: out of time; the whole job ends"
    )


def test_run_fake_checks_its_arguments_and_times_out():
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        run_fake(0, lambda comm: None)
    with pytest.raises(ValueError, match="ranks_per_node must be an int >= 1"):
        run_fake(2, lambda comm: None, ranks_per_node=0)
    with pytest.raises(TimeoutError, match="still runs after 0.2 s"):
        run_fake(2, lambda comm: time.sleep(1.0), timeout=0.2)
    assert run_fake(2, lambda comm, a, b: (comm.backend, a + b), 1, 2) == [("fake", 3)] * 2
