"""What the MPI tests run on every rank: ``python mpi_worker.py MODE OUT_DIR``.

Modes:

- ``semantics``: sums, broadcasts and checks of every kind; writes ``OUT_DIR/rank<r>.json``.
- ``init``: what ``fastdl.distributed.init()`` chose (backend, ranks, threads).
- ``first``: ``first_on_each_node`` with a slow first run; writes start/end times.
- ``loop``: writes ``OUT_DIR/pid.<r>``, then sums a 1,199,882-float buffer forever.
- ``raise``, ``exit``, ``os-exit``, ``os-exit-unheard``: as ``loop``, but rank 1 raises,
  calls ``sys.exit(3)`` or ``os._exit(5)`` after 20 sums (``os-exit-unheard`` with SIGUSR1
  ignored, so that only the check of the node's pids can notice).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

MODE, OUT = sys.argv[1], Path(sys.argv[2])
if MODE == "os-exit-unheard":
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # before init: fastdl leaves it alone

import fastdl.distributed as dist  # noqa: E402
from fastdl.distributed.base import sum_in_rank_order  # noqa: E402

comm = dist.init()


def write(name: str, data: dict) -> None:
    tmp = OUT / f"{name}.tmp"
    tmp.write_text(json.dumps(data))
    os.replace(tmp, OUT / name)


def inputs(case: int, rank: int, dtype: str, shape: tuple) -> np.ndarray:
    """Rank ``rank``'s buffer in case ``case``: any rank can make any rank's."""
    rng = np.random.default_rng([case, rank])
    if dtype == "int64":
        return rng.integers(-(2**40), 2**40, shape, dtype=np.int64)
    wide = rng.standard_normal(shape) * 10.0 ** rng.uniform(-6, 6, shape)
    return wide.astype(dtype)


CASES = [
    (dtype, shape)
    for dtype in ("float32", "float64", "int64")
    for shape in [(1,), (7,), (1000,), (3, 5, 7), (4096,), (4097,), (100_003,)]
] + [("float32", (1_199_882,)), ("float64", (0,))]


def semantics() -> dict:
    report: dict = {"rank": comm.rank, "size": comm.size, "backend": comm.backend, "sums": []}
    for case, (dtype, shape) in enumerate(CASES):
        buf = inputs(case, comm.rank, dtype, shape)
        address = buf.ctypes.data
        out = comm.allreduce_(buf)
        rows = [inputs(case, r, dtype, shape).reshape(-1) for r in range(comm.size)]
        expected = sum_in_rank_order(rows, np.empty(buf.size, dtype)).reshape(shape)
        report["sums"].append(
            {
                "case": f"{dtype} {shape}",
                "in_place": out is buf and buf.ctypes.data == address,
                "bitwise": bool(np.array_equal(buf.view(np.uint8), expected.view(np.uint8))),
                "digest": hashlib.sha256(buf.tobytes()).hexdigest(),
            }
        )
    for root in (0, comm.size - 1):
        for dtype in ("float32", "int32", "bool", "complex128"):
            buf = np.full((3, 4), comm.rank + 1).astype(dtype)
            comm.broadcast_(buf, root=root)
            report.setdefault("broadcast", []).append(
                bool((buf == np.full((3, 4), root + 1).astype(dtype)).all())
            )
    report["allreduce_sum"] = comm.allreduce_sum([1.0, comm.rank]).tolist()
    try:  # different sizes on different ranks: an error on every rank, not a hang
        comm.allreduce_(np.zeros(5 + comm.rank, np.float32))
    except ValueError as e:
        report["mismatch"] = str(e)
    try:
        comm.allreduce_(np.zeros(5, np.float16))
    except TypeError as e:
        report["float16"] = str(e)
    report["after_errors"] = comm.allreduce_sum([2.0]).tolist()
    comm.barrier()
    return report


def first() -> dict:
    def warm():
        start = time.time()
        if comm.local_rank == 0:
            time.sleep(1.0)
        return start, time.time()

    start, end = comm.first_on_each_node(warm)
    return {"local_rank": comm.local_rank, "start": start, "end": end}


def loop(stop_rank_at: int | None) -> None:
    if MODE == "loop" and comm.rank == 1:
        # the rank the test kills yields the CPUs to the others: hydra SIGKILLs the survivors
        # about a millisecond after its SIGUSR1, and a survivor writes its message only if it
        # gets a CPU within that millisecond (with 3 ranks on 2 cores it sometimes would not)
        os.nice(19)
    (OUT / f"pid.{comm.rank}.tmp").write_text(str(os.getpid()))
    os.replace(OUT / f"pid.{comm.rank}.tmp", OUT / f"pid.{comm.rank}")
    buf = np.ones(1_199_882, np.float32)
    i = 0
    while True:
        if comm.rank == 1 and i == stop_rank_at:
            if MODE == "raise":
                raise RuntimeError("rank 1 fails on purpose")
            if MODE == "exit":
                sys.exit(3)
            os._exit(5)
        buf[:] = 1
        comm.allreduce_(buf)
        i += 1


if MODE == "semantics":
    write(f"rank{comm.rank}.json", semantics())
elif MODE == "init":
    names = ("backend", "rank", "size", "local_rank", "local_size", "threads", "threads_why")
    info = {name: getattr(comm, name) for name in names}
    from fastdl import config

    info["get_num_threads"] = config.get_num_threads()
    info["compiled_handler"] = "fastdl.distributed.stop_signal" in sys.modules
    info["numba"] = "numba" in sys.modules
    write(f"rank{comm.rank}.json", info)
elif MODE == "first":
    write(f"rank{comm.rank}.json", first())
elif MODE == "loop":
    loop(None)
else:
    loop(20)
