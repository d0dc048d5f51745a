"""``SingleProcess``: the communicator of a job of one process, where every collective is a
no-op (after the same argument checks as on the other backends)."""

from __future__ import annotations

import sys
from typing import NoReturn

import numpy as np

from fastdl.distributed.base import Communicator, stop_message

__all__ = ["SingleProcess"]


class SingleProcess(Communicator):
    """Rank 0 of 1: ``allreduce_`` and ``broadcast_`` leave the buffer as it is.

    What :func:`fastdl.distributed.init` returns when no launcher started the script, so the
    same training script runs on a laptop and under ``mpiexec``.
    """

    def __init__(self) -> None:
        super().__init__(rank=0, size=1, local_rank=0, local_size=1, backend="single")

    def _allgather_ints(self, values: np.ndarray, what: str) -> np.ndarray:
        return values.reshape(1, -1).copy()

    def _sum_(self, flat: np.ndarray) -> None:
        pass

    def _broadcast_(self, raw: np.ndarray, root: int) -> None:
        pass

    def _barrier(self) -> None:
        pass

    def _node_barrier(self) -> None:
        pass

    def _abort(self, message: str) -> NoReturn:
        """Write the message and raise ``SystemExit(1)`` (in one process ``finally`` blocks
        may still run; with MPI nothing else does)."""
        sys.stderr.write(stop_message(0, 1, message))
        sys.stderr.flush()
        raise SystemExit(1)
