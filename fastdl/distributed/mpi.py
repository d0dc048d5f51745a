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

Every operation is non-blocking underneath and waited for in Python (spinning for 2 ms at
first where the node has a CPU per rank, then napping in steps of 5 % of the time waited so
far, at most 2 ms), so that while a rank
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
#: A wait spins (calling ``Test``) this long before it naps between tests — when the node
#: has a CPU for each of its ranks; with more ranks than CPUs a spinning rank only keeps
#: the one it waits for off the CPU, so it naps from the start.
SPIN_S = 0.002
#: Each nap is this fraction of the time waited so far, at least ``MIN_NAP_S`` ...
NAP_FRACTION = 0.05
MIN_NAP_S = 0.00005
#: ... and at most this long, so a late rank costs the others at most this much extra.
MAX_NAP_S = 0.002
#: How often a waiting rank checks that the others are alive.
CHECK_S = 0.2


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
        cpus = set().union(*self.node_cpus())
        self._spin_s = SPIN_S if len(cpus) >= self.local_size else 0.0
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
            waited = now - start
            if waited > self._spin_s:
                time.sleep(min(MAX_NAP_S, max(MIN_NAP_S, NAP_FRACTION * waited)))

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

    def _allgather_ints(self, values: np.ndarray) -> np.ndarray:
        out = np.empty((self.size, values.size), np.int64)
        self._run("a check of the buffers", lambda: self._comm.Iallgather(values, out))
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
        """Write the message to stderr, then ``MPI_Abort``: the launcher ends every rank."""
        os.write(2, stop_message(self.rank, self.size, message).encode())
        self._MPI.COMM_WORLD.Abort(1)
        os._exit(1)  # not reached: MPI_Abort does not return
