"""``MPICommunicator``: the ranks of an ``mpiexec``/``srun`` job, over mpi4py.

Only mpi4py's buffer methods are used (``Ialltoallv``, ``Iallgatherv``, ``Ibcast`` on numpy
memory, never a pickled array), on a duplicate of ``COMM_WORLD`` so fastdl's messages never
meet a user's.

The sum (:meth:`~fastdl.distributed.base.Communicator.allreduce_`) is fastdl's, not
``MPI_Allreduce``: each rank gathers every rank's copy of one ``1/size`` slice of the buffer
(``Ialltoallv``), adds the copies in rank order, and the summed slices are gathered back onto
every rank (``Iallgatherv``) — the reduce-scatter + allgather of large MPI allreduces, with
the additions done where their order is known. Every rank then holds the same bits, the ones
:func:`~fastdl.distributed.base.sum_in_rank_order` gives, whatever MPI library, algorithm or
tuning runs underneath. Small buffers (the whole exchange under 64 KiB: loss sums, stop votes)
are gathered whole and every rank adds the same rows in the same order: one round trip.

Every operation is non-blocking underneath and waited for in Python (``Test`` in a loop that
yields the CPU between calls, then, after half a second, naps of 2 ms), so that while a rank
waits it still handles signals and checks every 0.2 s that the other ranks are alive (see
:mod:`fastdl.distributed.watch`): a job whose rank died ends in seconds with a message
instead of waiting forever in a collective.

Threads: mpi4py is asked for ``MPI_THREAD_SERIALIZED`` — fastdl's kernels run threads, but
only one thread at a time (the one training) ever calls MPI; the default, ``MULTIPLE``, would
make MPICH lock around every call for nothing. A script that imported ``mpi4py.MPI`` itself
before :func:`fastdl.distributed.init` keeps the level it chose.
"""

from __future__ import annotations

import os
import sys
import time
from typing import NoReturn

import numpy as np

from fastdl.distributed.base import Communicator, _cpus, stop_message, sum_in_rank_order

__all__ = ["MPICommunicator", "import_mpi"]

#: Below this many bytes (this rank's buffer × ranks) a sum gathers whole buffers.
SMALL_BYTES = 64 * 1024
#: A wait calls ``Test`` in a loop, yielding the CPU between calls, this long; then it naps
#: between calls (a rank that is this late is compiling, evaluating or writing a checkpoint).
#: MPICH moves data only inside MPI calls, so a nap during a transfer stalls it: measured
#: here, summing 4.8 MB over 2 ranks took 2 ms spinning and 13-130 ms with naps after 2 ms.
SPIN_S = 0.5
NAP_S = 0.002
#: How often a waiting rank checks that the others are alive.
CHECK_S = 0.2
#: How long an aborting rank waits for the launcher to pass its output on.
ABORT_PAUSE_S = 0.25


_yield = getattr(os, "sched_yield", lambda: time.sleep(0))


def import_mpi():
    """``mpi4py.MPI``, initialised with ``MPI_THREAD_SERIALIZED``.

    Raises
    ------
    ImportError
        Naming ``pip install 'fastdl[mpi]'`` when mpi4py is missing.
    """
    try:
        import mpi4py
    except ImportError as e:
        raise ImportError(
            "fastdl.distributed: the MPI backend needs mpi4py; install it with "
            "pip install 'fastdl[mpi]' (mpi4py and MPICH), or run without a launcher "
            "(FASTDL_DISTRIBUTED=single)"
        ) from e
    if "mpi4py.MPI" not in sys.modules:
        mpi4py.rc.threads = True
        mpi4py.rc.thread_level = "serialized"
    from mpi4py import MPI

    return MPI


class MPICommunicator(Communicator):
    """This process's view of the MPI job it was launched in (``backend == "mpi"``).

    ``local_rank`` and ``local_size`` come from ``Split_type(COMM_TYPE_SHARED)``: the ranks
    that share this node's memory.
    """

    def __init__(self) -> None:
        MPI = import_mpi()
        self._MPI = MPI
        self._types = {
            np.dtype(np.float32): MPI.FLOAT,
            np.dtype(np.float64): MPI.DOUBLE,
            np.dtype(np.int64): MPI.INT64_T,
        }
        comm = MPI.COMM_WORLD.Dup()
        node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
        super().__init__(
            comm.Get_rank(), comm.Get_size(), node.Get_rank(), node.Get_size(), backend="mpi"
        )
        self._comm, self._node = comm, node
        # (world rank, pid, CPUs) of every rank on this node: gathered once, pickled
        self._peers = node.allgather((self.rank, os.getpid(), sorted(_cpus())))
        self._scratch: dict[tuple, np.ndarray] = {}
        from fastdl.distributed.watch import Watch

        self._watch = Watch(self)

    def node_cpus(self) -> list[frozenset[int]]:
        return [frozenset(cpus) for _, _, cpus in self._peers]

    # -- waiting -------------------------------------------------------------------------

    def _wait(self, request, what: str) -> None:
        """Wait for ``request``, handling signals and checking the other ranks meanwhile."""
        start = time.perf_counter()
        next_check = start + CHECK_S
        while True:
            try:
                if request.Test():
                    return
            except self._MPI.Exception as e:
                self.abort(f"MPI failed in {what}: {e}")
            now = time.perf_counter()
            if now >= next_check:
                self._watch.check(what)
                next_check = now + CHECK_S
            if now - start < SPIN_S:
                _yield()  # lets a rank that shares this CPU run: it may be the one we wait for
            else:
                time.sleep(NAP_S)

    def _run(self, what: str, start) -> None:
        """Start a non-blocking operation (``start()`` returns its request) and wait for it."""
        self._watch.before(what)
        try:
            request = start()
        except self._MPI.Exception as e:
            self.abort(f"MPI failed in {what}: {e}")
        self._wait(request, what)

    def _buffer(self, key: tuple, shape: tuple, dtype: np.dtype) -> np.ndarray:
        """Scratch memory kept between calls (the trainer sums one gradient size each step)."""
        buf = self._scratch.get(key)
        if buf is None:
            if len(self._scratch) > 8:
                self._scratch.clear()
            buf = self._scratch[key] = np.empty(shape, dtype)
        return buf

    # -- the hooks -----------------------------------------------------------------------

    def _allgather_ints(self, values: np.ndarray, what: str) -> np.ndarray:
        out = np.empty((self.size, values.size), np.int64)
        self._run(what, lambda: self._comm.Iallgather(values, out))
        return out

    def _sum_(self, flat: np.ndarray) -> None:
        MPI, s, n = self._MPI, self.size, flat.size
        mpi_type = self._types[flat.dtype]
        if flat.nbytes * s <= SMALL_BYTES:
            rows = self._buffer(("rows", flat.dtype, n), (s, n), flat.dtype)
            self._run("allreduce_", lambda: self._comm.Iallgather(flat, rows))
            sum_in_rank_order(rows, out=flat)
            return
        q, extra = divmod(n, s)
        counts = [q + (r < extra) for r in range(s)]
        starts = [q * r + min(r, extra) for r in range(s)]
        mine = counts[self.rank]
        rows = self._buffer(("slices", flat.dtype, n), (s, mine), flat.dtype)
        send = [flat, counts, starts, mpi_type]
        recv = [rows, [mine] * s, [mine * r for r in range(s)], mpi_type]
        self._run("allreduce_", lambda: self._comm.Ialltoallv(send, recv))
        lo = starts[self.rank]
        sum_in_rank_order(rows, out=flat[lo : lo + mine])
        gather = [flat, counts, starts, mpi_type]
        self._run("allreduce_", lambda: self._comm.Iallgatherv(MPI.IN_PLACE, gather))

    def _broadcast_(self, raw: np.ndarray, root: int) -> None:
        self._run("broadcast_", lambda: self._comm.Ibcast([raw, self._MPI.BYTE], root=root))

    def _barrier(self) -> None:
        self._run("barrier", self._comm.Ibarrier)

    def _node_barrier(self) -> None:
        self._run("first_on_each_node", self._node.Ibarrier)

    def _abort(self, message: str) -> NoReturn:
        """Write the message to stderr, then ``MPI_Abort``: the launcher ends every rank.

        What Python still buffers is flushed first, and the launcher gets a quarter of a
        second to pass the output on: hydra tears the job down at once and drops what it has
        not forwarded yet (a traceback came out cut in two, now and then, without the pause).
        """
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, OSError, ValueError):
                pass
        os.write(2, stop_message(self.rank, self.size, message).encode())
        time.sleep(ABORT_PAUSE_S)
        self._MPI.COMM_WORLD.Abort(1)
        os._exit(1)  # not reached: MPI_Abort does not return
