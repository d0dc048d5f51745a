"""An in-process fake backend: ``run_fake(n, fn)`` runs ``n`` ranks as threads of one process.

For testing distributed logic (sharding, gradient sums, stop decisions) in CI without MPI.
Every collective means what it means on MPI — the same argument checks, the same rank-order
sum to the bit (:func:`fastdl.distributed.base.sum_in_rank_order`) — but the ranks take
turns instead of running at the same time: exactly one rank's thread runs at any moment, and
it runs until it enters a collective that is still waiting for other ranks (or returns); then
the next rank that can run, in rank order, takes over. So the fake is deterministic, and safe
for code that is not thread-safe (fastdl's settings are process-wide).

The turn belongs to a rank, not to a thread: when a rank's helper thread (the trainer's
gradient sender, say) waits in a collective, the turn passes on while the rank's own thread
goes on computing, and two ranks then run at once. Code like that runs on the fake with the
NumPy twins (``fastdl.config.use_pure()``): fastdl's settings, such as the BLAS thread count
held during a pass, are process-wide, not per thread.

A rank that raises ends the run: every rank waiting in a collective (or for its turn) gets a
:class:`~fastdl.distributed.base.DistributedError` instead of waiting forever, and
``run_fake`` raises the first rank's exception. So do ranks that can never meet (one returns
while another waits in ``allreduce_``, or they enter different collectives).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NoReturn

import numpy as np

from fastdl.distributed.base import Communicator, DistributedError, stop_message, sum_in_rank_order

__all__ = ["run_fake", "FakeCommunicator"]

_READY, _RUNNING, _BLOCKED, _DONE = "ready", "running", "blocked", "done"


class _Pending:
    """A collective some ranks of ``group`` have entered."""

    def __init__(self, kind: str):
        self.kind = kind
        self.payloads: dict[int, object] = {}


class _World:
    """What the ranks of one :func:`run_fake` share: whose turn it is, the collectives in
    progress and the first failure."""

    def __init__(self, size: int):
        self.size = size
        self.cond = threading.Condition()
        self.state = [_RUNNING] + [_READY] * (size - 1)
        self.pending: dict[tuple[int, ...], _Pending] = {}
        self.results: dict[int, object] = {}
        self.failure: tuple[int, BaseException] | None = None

    # -- turns (called with self.cond held) -----------------------------------------------

    def _pass_turn(self, rank: int) -> None:
        """Give the turn to the next rank after ``rank`` that can run. After a failure every
        rank that has not ended can (it raises); when none can while some wait in a
        collective, that is a failure: they can never meet."""
        for _ in range(2):
            for step in range(1, self.size + 1):
                other = (rank + step) % self.size
                waiting = self.failure is not None and self.state[other] == _BLOCKED
                if self.state[other] == _READY or waiting:
                    self.state[other] = _RUNNING
                    self.cond.notify_all()
                    return
            if self.failure is not None or _BLOCKED not in self.state:
                break
            where = {r: p.kind for p in self.pending.values() for r in p.payloads}
            states = ", ".join(
                f"rank {r} waits in {where[r]}" if r in where else f"rank {r} has returned"
                for r in range(self.size)
            )
            self._fail(-1, DistributedError(f"the ranks can never meet: {states}"))
        self.cond.notify_all()

    def _await_turn(self, rank: int, what: str) -> None:
        while self.state[rank] != _RUNNING:
            self.cond.wait()
        if self.failure is not None:
            failed, exc = self.failure
            if failed < 0:
                raise DistributedError(f"rank {rank}, in {what}: {exc}")
            raise DistributedError(
                f"rank {rank}, in {what}: rank {failed} failed with {type(exc).__name__}: {exc}"
            )

    def _fail(self, rank: int, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = (rank, exc)

    # -- what rank threads call ------------------------------------------------------------

    def begin(self, rank: int) -> None:
        with self.cond:
            self._await_turn(rank, "its start")

    def end(self, rank: int, exc: BaseException | None) -> None:
        with self.cond:
            if exc is not None:
                self._fail(rank, exc)
            self.state[rank] = _DONE
            self._pass_turn(rank)

    def collective(
        self,
        rank: int,
        group: tuple[int, ...],
        kind: str,
        payload: object,
        combine: Callable[[dict[int, object]], dict[int, object]],
    ) -> object:
        """Enter collective ``kind`` over ``group``; the last to arrive runs ``combine`` on
        every member's payload (by rank) and each member returns its part of the result."""
        with self.cond:
            pending = self.pending.setdefault(group, _Pending(kind))
            if pending.kind != kind:
                others = ", ".join(f"rank {r}" for r in pending.payloads)
                self._fail(
                    -1,
                    DistributedError(
                        f"the ranks entered different collectives: {others} in "
                        f"{pending.kind}, rank {rank} in {kind}"
                    ),
                )
            self._await_turn(rank, kind)  # holds the turn: raises after a failure
            pending.payloads[rank] = payload
            if len(pending.payloads) == len(group):
                del self.pending[group]
                self.results.update(combine(dict(sorted(pending.payloads.items()))))
                for r in group:
                    if r != rank:
                        self.state[r] = _READY
                return self.results.pop(rank)
            self.state[rank] = _BLOCKED
            self._pass_turn(rank)
            self._await_turn(rank, kind)
            return self.results.pop(rank)


class FakeCommunicator(Communicator):
    """One rank of a :func:`run_fake` run (``backend == "fake"``)."""

    def __init__(self, world: _World, rank: int, ranks_per_node: int):
        node = rank // ranks_per_node
        members = range(node * ranks_per_node, min((node + 1) * ranks_per_node, world.size))
        super().__init__(rank, world.size, rank - members[0], len(members), backend="fake")
        self._world = world
        self._everyone = tuple(range(world.size))
        self._node = tuple(members)

    def _collective(self, kind, payload, combine, group=None):
        group = self._everyone if group is None else group
        return self._world.collective(self.rank, group, kind, payload, combine)

    def _allgather_ints(self, values: np.ndarray, what: str) -> np.ndarray:
        def combine(payloads):
            stacked = np.stack(list(payloads.values()))
            return {r: stacked.copy() for r in payloads}

        return self._collective(what, values.copy(), combine)

    def _sum_(self, flat: np.ndarray) -> None:
        def combine(payloads):
            total = sum_in_rank_order(list(payloads.values()), np.empty_like(flat))
            for buf in payloads.values():
                np.copyto(buf, total)
            return dict.fromkeys(payloads)

        self._collective("allreduce_", flat, combine)

    def _broadcast_(self, raw: np.ndarray, root: int) -> None:
        def combine(payloads):
            for buf in payloads.values():
                if buf is not payloads[root]:
                    np.copyto(buf, payloads[root])
            return dict.fromkeys(payloads)

        self._collective("broadcast_", raw, combine)

    def _barrier(self) -> None:
        self._collective("barrier", None, dict.fromkeys)

    def _node_barrier(self) -> None:
        self._collective("node barrier", None, dict.fromkeys, group=self._node)

    def _abort(self, message: str) -> NoReturn:
        """Raise a :class:`DistributedError` with the message; the run then ends as when a
        rank raises (stderr is left alone: the fake is for tests)."""
        raise DistributedError(stop_message(self.rank, self.size, message).strip())


def run_fake(
    n: int,
    fn: Callable[..., object],
    *args,
    ranks_per_node: int | None = None,
    timeout: float | None = None,
) -> list:
    """Run ``fn(comm, *args)`` as ``n`` fake ranks and return their results, by rank.

    Parameters
    ----------
    n : int
        Number of ranks (threads).
    fn : callable
        Called as ``fn(comm, *args)`` with each rank's :class:`FakeCommunicator`.
    ranks_per_node : int, optional
        Ranks on each simulated node (default: all ``n`` on one), for ``local_rank``,
        ``local_size`` and :meth:`~fastdl.distributed.base.Communicator.first_on_each_node`.
    timeout : float, optional
        Seconds to wait for all ranks; then ``TimeoutError`` (the threads are daemons).

    Returns
    -------
    list, length n
        ``fn``'s return value on each rank.

    Raises
    ------
    BaseException
        The exception of the first rank that raised (the others' ``DistributedError`` saying
        so are dropped), or a ``DistributedError`` when the ranks could never meet.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"run_fake: n must be an int >= 1, got {n!r}")
    per_node = n if ranks_per_node is None else ranks_per_node
    if isinstance(per_node, bool) or not isinstance(per_node, int) or per_node < 1:
        raise ValueError(f"run_fake: ranks_per_node must be an int >= 1, got {per_node!r}")
    world = _World(n)
    results: list = [None] * n

    def main(rank: int) -> None:
        comm = FakeCommunicator(world, rank, per_node)
        exc = None
        try:
            world.begin(rank)
            results[rank] = fn(comm, *args)
        except BaseException as e:  # noqa: BLE001 - handed to the caller by run_fake
            exc = e
        world.end(rank, exc)

    threads = [
        threading.Thread(target=main, args=(r,), name=f"fastdl-fake-rank-{r}", daemon=True)
        for r in range(n)
    ]
    for t in threads:
        t.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    for t in threads:
        t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            raise TimeoutError(f"run_fake: {t.name} still runs after {timeout} s")
    if world.failure is not None:
        raise world.failure[1]
    return results
