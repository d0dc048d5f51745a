"""The communicator interface every backend implements, and the checks and sums they share.

A communicator connects the ``size`` processes ("ranks") of one data-parallel job. fastdl
needs four things from it, all in place on numpy arrays: the sum of a buffer over all ranks
(``allreduce_``), a copy of one rank's buffer on every rank (``broadcast_``), a barrier, and
a way to end the whole job with a message (``abort``).

The sum is the same on every backend, to the bit: rank 0's buffer plus rank 1's, plus rank
2's, and so on, elementwise, in rank order (``((x0 + x1) + x2) + ...``). IEEE addition of
two numbers is exactly rounded, so this is one well-defined result, the same on every rank,
in every run and on every machine, and the same as :func:`sum_in_rank_order` computes in one
process. The MPI standard promises no such thing for ``MPI_Allreduce`` (it only recommends
that a reduction give the same result for the same inputs in the same order, and says nothing
about every rank holding the same bits); data-parallel training needs it, or the replicas'
weights drift apart one rounding at a time.

A backend implements the protected hooks (``_allgather_ints``, ``_sum_``, ``_broadcast_``,
``_barrier``, ``_node_barrier``, ``_abort``); this class checks the arguments at the door —
locally, then that every rank passed the same dtype and size, so a mismatch is a clear
error on every rank instead of a hang or a wrong sum — and handles ``size == 1``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

import numpy as np

__all__ = [
    "Communicator",
    "DistributedError",
    "REDUCIBLE_DTYPES",
    "sum_in_rank_order",
    "stop_message",
]

T = TypeVar("T")

#: The dtypes :meth:`Communicator.allreduce_` sums.
REDUCIBLE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64))


class DistributedError(RuntimeError):
    """A collective operation cannot complete: another rank failed, returned early, or the
    ranks called different collectives."""


def stop_message(rank: int, size: int, reason: str) -> str:
    """The line a rank writes to stderr when it ends the job: who stops, why, what next."""
    return (
        f"fastdl.distributed: rank {rank} of {size} stops: {reason}; the whole job ends — "
        "relaunch it from its last checkpoint (--resume) to continue\n"
    )


def sum_in_rank_order(rows: np.ndarray | Sequence[np.ndarray], out: np.ndarray) -> np.ndarray:
    """``out[...] = ((rows[0] + rows[1]) + rows[2]) + ...``, elementwise.

    Parameters
    ----------
    rows : ndarray, shape (size, n), or sequence of ``size`` arrays of shape (n,)
        One row per rank, in rank order.
    out : ndarray, shape (n,)
        Where the sum goes; may not overlap ``rows``.

    Returns
    -------
    ndarray, shape (n,)
        ``out``. Overflow to inf and nan propagate as numpy's arithmetic makes them, without
        a warning (the trainer checks its losses for non-finite values).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        np.copyto(out, rows[0])
        for row in rows[1:]:
            np.add(out, row, out=out)
    return out


def _check_array(buf: object, what: str) -> np.ndarray:
    if not isinstance(buf, np.ndarray):
        raise TypeError(f"{what}: expected a numpy array, got {type(buf).__name__}")
    if buf.dtype.hasobject:
        raise TypeError(f"{what}: an array of Python objects cannot be communicated")
    if not buf.flags.c_contiguous:
        raise ValueError(
            f"{what}: the array (shape {buf.shape}, strides {buf.strides}) must be "
            "C-contiguous to be communicated in place; use np.ascontiguousarray and copy back"
        )
    if not buf.flags.writeable:
        raise ValueError(f"{what}: the array (shape {buf.shape}) is read-only")
    return buf


class Communicator:
    """The ranks of one data-parallel job, as seen from one of them.

    Attributes
    ----------
    rank : int
        This process's index, ``0 <= rank < size``.
    size : int
        Number of processes in the job.
    local_rank : int
        This process's index among the ranks on its node (the machine it runs on).
    local_size : int
        Number of ranks on this node.
    backend : str
        ``"single"``, ``"mpi"`` or ``"fake"``.
    threads : int or None
        Threads :func:`fastdl.distributed.init` gave fastdl's kernels on this rank.
    threads_why : str
        How that number was found.

    Notes
    -----
    Every method that communicates must be called by every rank, in the same order, with
    arrays of the same dtype and size (for the node-level ones: by every rank of the node).
    """

    def __init__(self, rank: int, size: int, local_rank: int, local_size: int, backend: str):
        self.rank = rank
        self.size = size
        self.local_rank = local_rank
        self.local_size = local_size
        self.backend = backend
        self.threads: int | None = None
        self.threads_why = "not set by fastdl.distributed.init"

    @property
    def is_root(self) -> bool:
        """True on rank 0, the rank that writes checkpoints, logs and progress."""
        return self.rank == 0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(rank={self.rank}, size={self.size}, "
            f"local_rank={self.local_rank}, local_size={self.local_size}, "
            f"backend={self.backend!r}, threads={self.threads})"
        )

    # -- the public operations: checks at the door, then the backend's hooks ---------------

    def allreduce_(self, buf: np.ndarray) -> np.ndarray:
        """Replace ``buf`` by its sum over all ranks, in place: the same bits on every rank.

        Parameters
        ----------
        buf : ndarray, any shape, float32, float64 or int64, C-contiguous and writeable
            This rank's values; every rank passes the same dtype and size.

        Returns
        -------
        ndarray
            ``buf``, now holding ``((buf_0 + buf_1) + buf_2) + ...`` elementwise (``buf_r``:
            rank ``r``'s buffer). int64 sums wrap around on overflow, as numpy's do.

        Raises
        ------
        TypeError, ValueError
            On every rank, before any data moves: a dtype other than the three (or a
            non-native byte order), an array that is not C-contiguous or is read-only (on
            this rank), or ranks whose buffers differ in dtype or size.
        """
        _check_array(buf, "allreduce_")
        if buf.dtype not in REDUCIBLE_DTYPES:
            raise TypeError(
                f"allreduce_: expected a float32, float64 or int64 array, got {buf.dtype.str} "
                f"({buf.dtype}); convert it (and back) with astype"
            )
        if self.size > 1:
            self._agree("allreduce_", buf)
            self._sum_(buf.reshape(-1))
        return buf

    def broadcast_(self, buf: np.ndarray, root: int = 0) -> np.ndarray:
        """Copy rank ``root``'s ``buf`` into ``buf`` on every rank, in place.

        Parameters
        ----------
        buf : ndarray, any shape and fixed-size dtype, C-contiguous and writeable
            On ``root``: the values to send; elsewhere: overwritten. Every rank passes the
            same dtype and size.
        root : int, default 0

        Returns
        -------
        ndarray
            ``buf``, byte for byte rank ``root``'s.
        """
        _check_array(buf, "broadcast_")
        if isinstance(root, bool) or not isinstance(root, (int, np.integer)):
            raise TypeError(f"broadcast_: root must be an int, got {type(root).__name__}")
        if not 0 <= root < self.size:
            raise ValueError(f"broadcast_: root {root} is not a rank of 0..{self.size - 1}")
        if self.size > 1:
            self._agree("broadcast_", buf, extra=int(root))
            self._broadcast_(buf.reshape(-1).view(np.uint8), int(root))
        return buf

    def allreduce_sum(self, values: Sequence[float]) -> np.ndarray:
        """The sum over all ranks of a few numbers (losses, counts, stop votes).

        Parameters
        ----------
        values : sequence of float, length k (the same k on every rank)

        Returns
        -------
        ndarray, shape (k,), float64
            The same on every rank (see :meth:`allreduce_`).
        """
        out = np.array(values, dtype=np.float64)
        if out.ndim != 1:
            raise ValueError(f"allreduce_sum: expected a flat sequence, got shape {out.shape}")
        return self.allreduce_(out)

    def barrier(self) -> None:
        """Return once every rank has called ``barrier``."""
        if self.size > 1:
            self._barrier()

    def first_on_each_node(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on local rank 0 of each node first, then on the others.

        For work that fills a cache the node's ranks share, such as numba compiling fastdl's
        kernels into its on-disk cache: local rank 0 compiles while the other ranks of its
        node wait (on MPI: napping, after the first half second), then they run ``fn`` and
        load the kernels from the cache instead of all compiling them at the same moment.
        Every rank of the node must call it; only the node's ranks wait for each other.

        Returns
        -------
        object
            What ``fn`` returned on this rank.
        """
        if self.local_size == 1:
            return fn(*args, **kwargs)
        if self.local_rank == 0:
            result = fn(*args, **kwargs)
            self._node_barrier()
            return result
        self._node_barrier()
        return fn(*args, **kwargs)

    def abort(self, message: str) -> NoReturn:
        """End the whole job now: write ``message`` to stderr (naming this rank), then stop
        every rank. Never returns."""
        self._abort(message)

    def node_cpus(self) -> list[frozenset[int]]:
        """The CPUs each rank of this node may run on (its affinity mask), by local rank."""
        return [frozenset(_cpus())] * self.local_size

    # -- checks every rank makes the same way ----------------------------------------------

    def _agree(self, what: str, buf: np.ndarray, extra: int = 0) -> None:
        """Raise on every rank unless every rank passed the same dtype, size (and root)."""
        code = ord(buf.dtype.char)
        mine = np.array([code, buf.dtype.itemsize, buf.size, extra], dtype=np.int64)
        headers = self._allgather_ints(mine, what)
        if (headers == headers[0]).all():
            return
        parts = []
        for r, (char, itemsize, size, root) in enumerate(headers.tolist()):
            name = np.dtype(chr(char)).name if chr(char) != "V" else "void"
            parts.append(
                f"rank {r}: {name} ({itemsize} bytes) × {size}"
                + (f", root {root}" if what == "broadcast_" else "")
            )
        raise ValueError(f"{what}: the ranks passed different buffers — {'; '.join(parts)}")

    # -- the backend's hooks ---------------------------------------------------------------

    def _allgather_ints(self, values: np.ndarray, what: str) -> np.ndarray:
        """Every rank's ``values`` (int64, shape (k,)), as an array of shape (size, k), for
        the checks of operation ``what``."""
        raise NotImplementedError

    def _sum_(self, flat: np.ndarray) -> None:
        """Replace ``flat`` (shape (n,), a reducible dtype) by the rank-order sum."""
        raise NotImplementedError

    def _broadcast_(self, raw: np.ndarray, root: int) -> None:
        """Copy ``root``'s ``raw`` (uint8, shape (nbytes,)) into every rank's."""
        raise NotImplementedError

    def _barrier(self) -> None:
        raise NotImplementedError

    def _node_barrier(self) -> None:
        raise NotImplementedError

    def _abort(self, message: str) -> NoReturn:
        raise NotImplementedError


def _cpus() -> set[int]:
    """The CPUs this process may run on (its affinity mask; all of them where there is none)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))
