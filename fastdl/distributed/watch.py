"""How an MPI rank notices that another rank ended, and ends the job with a message.

MPI gives up on a job whose rank died only when its launcher does; a rank waiting in a
collective otherwise waits forever. What the launchers do, and what fastdl adds:

- **A rank is killed** (SIGKILL, out of memory, a segfault). MPICH's ``mpiexec`` (hydra)
  kills the others with SIGKILL as soon as it reaps the dead one (measured here: within
  1-10 ms) and prints the dead pid and signal; no survivor can say anything. With
  ``-disable-auto-cleanup`` (what :mod:`fastdl.distributed.launch` passes) it first sends
  them SIGUSR1 — about a millisecond before the SIGKILL, which it sends anyway — and
  fastdl's handler, compiled code (:mod:`fastdl.distributed.stop_signal`), writes the
  message at once, even from inside a kernel. That needs the rank to get a CPU within the
  millisecond: with more ranks than cores it may not, and the job still ends, silently.
  Open MPI's ``mpirun`` and Slurm send SIGTERM: the same handler writes its message.
  ``srun`` may leave the others running: a waiting rank checks every 0.2 s that the ranks
  on its node are alive, and aborts the job with a message if one is not.
- **A rank raises** (an uncaught exception, Ctrl-C). It would hang in ``MPI_Finalize``
  while the others wait for it: fastdl's ``sys.excepthook`` prints the traceback, writes
  the message and calls ``MPI_Abort``, which ends every rank.
- **A rank's script ends** (returns, ``sys.exit``) while others still need it. It would
  hang in ``MPI_Finalize`` too. At exit each rank tells the others it is leaving, then
  waits for all of them to leave as well; a rank that is told while it waits in a
  collective that can then never complete (after 2 s of grace, in which its last
  collective may still finish) aborts the job.

Signal handlers are installed only where the script has not set its own (Python's default
is in place), and only from the main thread. Exit notices cost each rank ``size - 1`` tiny
messages, once, at exit.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
import time

import numpy as np

from fastdl import config
from fastdl.distributed.base import stop_message

__all__ = ["Watch", "pid_ended"]

#: After hearing that a rank left, a rank waiting in a collective gives it this long.
GRACE_S = 2.0
_TAG = 7001
_REASONS = {
    signal.SIGUSR1: "another rank ended (killed or crashed); MPICH's mpiexec said so (SIGUSR1)",
    signal.SIGTERM: "the launcher sent SIGTERM (another rank failed, or the job was cancelled "
    "or ran out of time)",
}


def pid_ended(pid: int) -> bool:
    """True when process ``pid`` no longer runs (gone, or a zombie waiting to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


class Watch:
    """The watchdog of one :class:`~fastdl.distributed.mpi.MPICommunicator`.

    Parameters
    ----------
    comm : MPICommunicator
        Its ``_peers`` list (world rank, pid, CPUs) of the node's ranks is read.
    """

    def __init__(self, comm) -> None:
        MPI = comm._MPI
        self.comm = comm
        self._MPI = MPI
        self._pid = os.getpid()
        self._peers = [(rank, pid) for rank, pid, _ in comm._peers if rank != comm.rank]
        self._leaving = False  # at exit, waiting for the others to leave too
        self._left: tuple[int, float] | None = None  # (rank, when heard)
        self._dead: dict[int, float] = {}  # rank: when its pid was first seen ended
        self._signals: list[int] = []  # the signals fastdl handles here
        self._notices = comm._comm.Dup()  # exit notices travel apart from everything else
        self._heard = np.zeros(1, np.int64)
        self._listen = self._notices.Irecv([self._heard, MPI.INT64_T], MPI.ANY_SOURCE, _TAG)
        self._install()

    # -- while waiting -------------------------------------------------------------------

    def before(self, what: str) -> None:
        """Called as a collective starts: abort if a rank has already left the job."""
        self._hear()
        if self._left is not None and not self._leaving:
            rank, _ = self._left
            self.comm.abort(
                f"rank {rank} ended (its script returned or called sys.exit) before {what}, "
                "which needs every rank"
            )

    def check(self, what: str) -> None:
        """Called every 0.2 s by a waiting rank: abort if a rank on this node died, or left
        while this collective still needs it."""
        now = time.monotonic()
        for rank, pid in self._peers:
            if not pid_ended(pid):
                continue
            # at exit a rank may end as soon as the exit barrier is complete on its side
            seen = self._dead.setdefault(rank, now)
            if not self._leaving or now - seen > GRACE_S:
                self.comm.abort(
                    f"rank {rank} (pid {pid}) on this node ended — killed or crashed — while "
                    f"this rank waited in {what}"
                )
        self._hear()
        if self._left is not None and not self._leaving:
            rank, heard = self._left
            if now - heard > GRACE_S:
                self.comm.abort(
                    f"rank {rank} ended (its script returned or called sys.exit) while this "
                    f"rank waits in {what}, which can never complete"
                )

    def _hear(self) -> None:
        if self._left is None and self._listen.Test():
            self._left = (int(self._heard[0]), time.monotonic())

    # -- the hooks -----------------------------------------------------------------------

    def _install(self) -> None:
        previous = sys.excepthook

        def excepthook(kind, value, tb):
            previous(kind, value, tb)
            what = "was interrupted" if issubclass(kind, KeyboardInterrupt) else "raised"
            self.comm.abort(f"it {what} {kind.__name__}: {value}" if str(value) else
                            f"it {what} {kind.__name__}")  # fmt: skip

        sys.excepthook = excepthook
        atexit.register(self._leave)
        if threading.current_thread() is not threading.main_thread():
            return
        signals = [s for s in (signal.SIGUSR1, signal.SIGTERM)
                   if signal.getsignal(s) is signal.SIG_DFL]  # fmt: skip
        messages = {s: stop_message(self.comm.rank, self.comm.size, _REASONS[s]) for s in signals}
        compiled = False
        if signals and not config.PURE_AT_IMPORT:
            from fastdl.distributed import stop_signal

            compiled = stop_signal.install(messages)
        if not compiled:  # a Python handler, which runs between two bytecodes of the main thread
            for signum in signals:
                signal.signal(signum, self._on_signal)
        self._signals = signals

    def _on_signal(self, signum: int, frame) -> None:
        """Write why this rank stops, then exit with 128 + the signal's number (as a shell
        reports a death by that signal)."""
        os.write(2, stop_message(self.comm.rank, self.comm.size, _REASONS[signum]).encode())
        os._exit(128 + signum)

    def _leave(self) -> None:
        """At exit: tell the other ranks, wait until they all leave, then collect their
        notices, so that ``MPI_Finalize`` finds nothing in flight."""
        if os.getpid() != self._pid or self._MPI.Is_finalized():
            return
        self._leaving = True
        comm, MPI = self.comm, self._MPI
        me = np.array([comm.rank], np.int64)
        sends = [
            self._notices.Isend([me, MPI.INT64_T], other, _TAG)
            for other in range(comm.size)
            if other != comm.rank
        ]
        comm._wait(self._notices.Ibarrier(), "the ranks' exit")
        self._peers = []  # every rank is leaving: they may end from now on
        if comm.size == 1:
            self._listen.Cancel()
            self._listen.Wait()
        else:
            comm._wait(self._listen, "the ranks' exit")
            for _ in range(comm.size - 2):
                comm._wait(self._notices.Irecv([self._heard, MPI.INT64_T], MPI.ANY_SOURCE,
                                               _TAG), "the ranks' exit")  # fmt: skip
        for request in sends:
            comm._wait(request, "the ranks' exit")
        # every rank is done: hydra's SIGUSR1 from now on (sent when a rank's exit overtakes
        # its goodbye to hydra) no longer means that anything went wrong
        if threading.current_thread() is threading.main_thread():
            for signum in self._signals:
                signal.signal(
                    signum, signal.SIG_IGN if signum == signal.SIGUSR1 else signal.SIG_DFL
                )
