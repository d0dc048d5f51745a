"""Data-parallel training over several processes: ``init()`` returns the job's communicator.

::

    import fastdl.distributed as dist

    comm = dist.init()          # MPI under mpiexec/srun, one process otherwise
    comm.rank, comm.size        # this process, and how many there are
    comm.allreduce_(grads)      # in place: the sum over all ranks, the same bits on each
    comm.broadcast_(weights)    # in place: rank 0's values everywhere

The same script runs anywhere: started by ``mpiexec -n 4 python train.py`` (MPICH, Open
MPI) or ``srun``, ``init()`` returns an :class:`~fastdl.distributed.mpi.MPICommunicator`
(``pip install 'fastdl[mpi]'`` installs mpi4py and MPICH); started as ``python train.py``,
a :class:`~fastdl.distributed.single.SingleProcess`, whose collectives do nothing. Tests run
distributed code without MPI on :func:`~fastdl.distributed.fake.run_fake`'s in-process ranks.
Every backend implements :class:`~fastdl.distributed.base.Communicator`'s few hooks (a
torch.distributed backend, for jobs started by ``torchrun``, would be one more).

Which backend
-------------
``FASTDL_DISTRIBUTED=single|mpi`` forces one (or ``init(backend=...)``). Otherwise: ``mpi``
when the environment says a launcher started more than one process — ``PMI_SIZE`` (MPICH's
hydra, Intel MPI, ``srun --mpi=pmi2``), ``OMPI_COMM_WORLD_SIZE`` (Open MPI),
``SLURM_STEP_NUM_TASKS`` (``srun``; a batch script itself, which has ``SLURM_NTASKS`` but is
no step, is not a launch), or ``PMIX_RANK`` (PMIx launchers, size unknown) — else ``single``.
A launch of one process needs no MPI and gets ``single``.

Threads
-------
Unless ``FASTDL_NUM_THREADS`` is set, ``init()`` gives fastdl's kernels this rank's share of
the CPUs of its node (:mod:`fastdl.distributed.threads`): with ``cores`` CPUs — the affinity
mask, or ``NUMBA_NUM_THREADS`` where smaller, as :mod:`fastdl.config` counts them — and
``local_size`` ranks on the node free to run anywhere, ``max(1, cores // local_size)``; ranks
the launcher bound to CPUs of their own keep those. ``comm.threads`` and
``comm.threads_why`` say what was chosen and why.

The numba cache
---------------
numba compiles a kernel at its first call and keeps it on disk. So that the ranks of a node
do not all compile the same kernels at the same moment, run the first training step through
``comm.first_on_each_node(step)``: local rank 0 compiles, the others then load.
"""

from __future__ import annotations

import os

from fastdl.distributed.base import REDUCIBLE_DTYPES, Communicator, DistributedError
from fastdl.distributed.single import SingleProcess

__all__ = [
    "init",
    "launched_size",
    "Communicator",
    "SingleProcess",
    "DistributedError",
    "REDUCIBLE_DTYPES",
    "BACKENDS",
]

#: The backends ``init`` can start.
BACKENDS = ("single", "mpi")

_current: dict[str, Communicator] = {}


def launched_size() -> int | None:
    """How many processes the launcher that started this one says the job has.

    Returns
    -------
    int or None
        From ``PMI_SIZE``, ``OMPI_COMM_WORLD_SIZE`` or ``SLURM_STEP_NUM_TASKS``; 2 or more
        under a PMIx launcher that gives no size (``PMIX_RANK`` only; counted as a launch);
        None when no launcher started this process.
    """
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        raw = os.environ.get(name, "").strip()
        if raw.isdigit():
            return int(raw)
    if os.environ.get("PMIX_RANK", "").strip():
        return 2
    return None


def _choose(backend: str | None) -> str:
    if backend is None:
        backend = os.environ.get("FASTDL_DISTRIBUTED", "").strip().lower() or None
        where = "FASTDL_DISTRIBUTED"
    else:
        where = "init(backend=)"
    if backend is None:
        size = launched_size()
        return "mpi" if size is not None and size > 1 else "single"
    if backend not in BACKENDS:
        raise ValueError(f"{where}: expected one of {', '.join(BACKENDS)}, got {backend!r}")
    return backend


def init(backend: str | None = None) -> Communicator:
    """The communicator of the job this process belongs to (made once, then returned again).

    Parameters
    ----------
    backend : {"single", "mpi"}, optional
        Default: ``FASTDL_DISTRIBUTED``, else ``"mpi"`` when an MPI launcher (or ``srun``)
        started more than one process, else ``"single"``.

    Returns
    -------
    Communicator
        With ``threads`` set: fastdl's kernels now use this rank's share of the node's CPUs
        (unless ``FASTDL_NUM_THREADS`` is set).

    Raises
    ------
    ImportError
        For ``"mpi"`` without mpi4py, naming ``pip install 'fastdl[mpi]'``.
    ValueError
        For an unknown backend.

    Notes
    -----
    On the MPI backend ``init`` also makes an uncaught exception on any rank end the whole
    job (``MPI_Abort``, after the traceback), and installs handlers that write a message
    when the launcher ends the job because another rank died (SIGUSR1, SIGTERM; where the
    script has none of its own): see :mod:`fastdl.distributed.watch`.
    """
    name = _choose(backend)
    if name in _current:
        return _current[name]
    if _current:
        (other,) = _current
        raise RuntimeError(f"fastdl.distributed.init: the {other!r} backend already runs here")
    if name == "mpi":
        from fastdl.distributed.mpi import MPICommunicator

        comm: Communicator = MPICommunicator()
    else:
        comm = SingleProcess()
    from fastdl.distributed.threads import apply_default

    apply_default(comm)
    _current[name] = comm
    return comm
