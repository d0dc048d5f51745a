"""Summing a gradient over 2 MPI ranks on this machine (``fastdl.distributed``).

- ``Allreduce.track_allreduce_ms``: ``comm.allreduce_`` of 1,199,882 values — the reference
  MNIST CNN's parameter count, 4.8 MB in float32 — between 2 ranks that ``mpiexec -n 2``
  starts on this machine (shared memory; loopback only, see
  :mod:`fastdl.distributed.launch`): the median of 200 calls after 20 warm-up calls, each
  call started together by a barrier.
- ``Allreduce.track_mpi_allreduce_ms``: ``MPI_Allreduce`` on the same buffer, for reference
  (faster, but no promise that every rank holds the same bits; see
  :mod:`fastdl.distributed.base`).

- ``DataParallelStep.track_step_ms``: one training step of the reference CNN (no dropout,
  Adadelta) on a global batch of 64 split over 1, 2 or 4 ranks (``Trainer(...,
  distributed=comm)``'s step: each rank's rows, the per-layer gradient sums, the optimizer):
  the median of 30 steps after 5. On this 2-core machine 4 ranks are oversubscribed: the
  numbers show the cost of the sums and of smaller per-rank batches, not scaling.

Skipped without mpi4py or an ``mpiexec`` (``pip install 'fastdl[mpi]'``), and for commits
before ``fastdl.distributed``. This file is also the ranks' program:
``python bench_distributed.py float32`` under ``mpiexec`` prints the two medians as JSON,
``python bench_distributed.py step`` the step time.
"""

import importlib.util
import json
import subprocess
import sys
import time

import numpy as np

N_VALUES = 1_199_882
WARMUP, CALLS = 20, 200


def _launch(dtype, ranks=2):
    """What ``ranks`` ranks running this file with ``dtype`` (or ``"step"``) print, as JSON."""
    if importlib.util.find_spec("mpi4py") is None:
        raise NotImplementedError("mpi4py is not installed")
    try:
        from fastdl.distributed.launch import loopback_env, mpiexec_command, mpiexec_path
    except ImportError:
        raise NotImplementedError("no fastdl.distributed in this commit") from None
    if mpiexec_path() is None:
        raise NotImplementedError("no mpiexec")
    argv = [sys.executable, __file__, dtype]
    done = subprocess.run(
        argv if ranks == 1 else mpiexec_command(ranks, argv),
        env=loopback_env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


class Allreduce:
    params = ["float32", "float64"]
    param_names = ["dtype"]
    timeout = 300

    def setup(self, dtype):
        self.ms = _launch(dtype)

    def track_allreduce_ms(self, dtype):
        return self.ms["fastdl"]

    def track_mpi_allreduce_ms(self, dtype):
        return self.ms["mpi"]

    track_allreduce_ms.unit = "ms"
    track_mpi_allreduce_ms.unit = "ms"


class DataParallelStep:
    params = [1, 2, 4]
    param_names = ["ranks"]
    timeout = 600

    def setup(self, ranks):
        self.ms = _launch("step", ranks)["step_ms"]

    def track_step_ms(self, ranks):
        return self.ms

    track_step_ms.unit = "ms"


def _step(comm):
    """Median ms of the reference CNN's data-parallel training step, global batch 64."""
    import fastdl as fd
    from fastdl import _data_parallel as dp
    from fastdl.recipes.mnist_cnn import build

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    net = build(1, dropout=False).build((1, 28, 28))
    optim = fd.Adadelta(lr=1.0)
    fd.Trainer(net, optim, distributed=comm)

    def step():
        if comm.size > 1:
            dp.train_batch(net, comm, x, y)
        else:
            net.train_batch(x, y)
        optim.step()

    for _ in range(5):
        step()
    times = []
    for _ in range(30):
        comm.barrier()
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(comm.allreduce_sum([np.median(times)])[0]) / comm.size


def _median_ms(comm, call, buf, start):
    for _ in range(WARMUP):
        buf[...] = start
        call(buf)
    times = []
    for _ in range(CALLS):
        buf[...] = start  # the same sum every call (repeated sums would overflow)
        comm.barrier()
        t0 = time.perf_counter()
        call(buf)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def _rank(dtype):
    import fastdl.distributed as dist

    comm = dist.init()
    if dtype == "step":
        ms = _step(comm)
        if comm.is_root:
            print(json.dumps({"step_ms": ms}), flush=True)
        return
    from mpi4py import MPI

    start = np.random.default_rng(comm.rank).standard_normal(N_VALUES).astype(dtype)
    buf = np.empty_like(start)
    ms = {
        "fastdl": _median_ms(comm, comm.allreduce_, buf, start),
        "mpi": _median_ms(comm, lambda b: MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, b), buf, start),
    }
    if comm.is_root:
        print(json.dumps(ms), flush=True)


if __name__ == "__main__":
    _rank(sys.argv[1])
