"""``init()``: which backend it picks, and what it refuses (no MPI needed)."""

from __future__ import annotations

import sys

import pytest

import fastdl.distributed as dist
from fastdl import config
from fastdl.distributed import SingleProcess, init, launched_size

LAUNCHER_VARIABLES = (
    "PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS",
    "SLURM_PROCID", "PMIX_RANK", "FASTDL_DISTRIBUTED", "FASTDL_NUM_THREADS",
)  # fmt: skip


@pytest.fixture
def no_launcher(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(dist, "_current", {})
    previous = config.get_num_threads()
    yield monkeypatch
    config.set_num_threads(previous)


@pytest.mark.parametrize(
    "env, size, backend",
    [
        ({}, None, "single"),
        ({"PMI_RANK": "0", "PMI_SIZE": "2"}, 2, "mpi"),  # MPICH's hydra
        ({"PMI_SIZE": "1"}, 1, "single"),  # one process needs no MPI
        ({"OMPI_COMM_WORLD_SIZE": "4"}, 4, "mpi"),  # Open MPI
        ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "3"}, 8, "mpi"),  # srun
        ({"SLURM_NTASKS": "8", "SLURM_PROCID": "0"}, None, "single"),  # a batch script
        ({"PMIX_RANK": "0"}, 2, "mpi"),  # PMIx, no size given
    ],
    ids=["none", "hydra", "hydra-1", "openmpi", "srun", "sbatch", "pmix"],
)
def test_the_backend_follows_the_launcher(no_launcher, env, size, backend):
    for name, value in env.items():
        no_launcher.setenv(name, value)
    assert launched_size() == size
    assert dist._choose(None) == backend


def test_fastdl_distributed_forces_a_backend(no_launcher):
    no_launcher.setenv("PMI_SIZE", "4")
    no_launcher.setenv("FASTDL_DISTRIBUTED", "single")
    assert dist._choose(None) == "single"
    no_launcher.setenv("FASTDL_DISTRIBUTED", "gloo")
    with pytest.raises(ValueError, match="FASTDL_DISTRIBUTED: expected one of single, mpi"):
        dist._choose(None)
    with pytest.raises(ValueError, match=r"init\(backend=\): expected one of single, mpi"):
        init("nccl")


def test_without_a_launcher_init_gives_one_process_with_every_cpu(no_launcher):
    comm = init()
    assert isinstance(comm, SingleProcess) and comm.backend == "single"
    assert init() is comm
    limit = config._thread_limit()[0]
    assert comm.threads == config.get_num_threads() == limit
    assert comm.threads_why.startswith(f"the {limit} CPUs this rank may run on")
    with pytest.raises(RuntimeError, match="the 'single' backend already runs here"):
        init("mpi")


def test_mpi_without_mpi4py_names_the_extra(no_launcher):
    no_launcher.setitem(sys.modules, "mpi4py", None)  # import mpi4py now fails
    with pytest.raises(ImportError, match=r"pip install 'fastdl\[mpi\]'"):
        init("mpi")
