"""The MPI backend, for real: ``mpiexec -n 2/3/4`` (4 on a 2-core machine: MPICH needs no
flag to oversubscribe) on ``mpi_worker.py``, over loopback only
(:mod:`fastdl.distributed.launch`). Skipped without mpi4py or an ``mpiexec``."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mpi4py", reason="the MPI tests need mpi4py: pip install 'fastdl[mpi]'")

from fastdl.distributed.launch import (  # noqa: E402
    loopback_env,
    mpiexec_command,
    mpiexec_path,
    namespace_prefix,
)
from fastdl.distributed.watch import pid_ended  # noqa: E402

if mpiexec_path() is None:
    pytest.skip("no mpiexec (pip install 'fastdl[mpi]' installs MPICH's)", allow_module_level=True)

WORKER = Path(__file__).resolve().with_name("mpi_worker.py")


def environment(**extra: str) -> dict[str, str]:
    env = loopback_env()
    for name in ("FASTDL_NUM_THREADS", "FASTDL_DISTRIBUTED", "NUMBA_NUM_THREADS"):
        env.pop(name, None)
    env.update(extra)
    return env


def command(n: int, mode: str, out: Path, **kw) -> list[str]:
    return mpiexec_command(n, [sys.executable, str(WORKER), mode, str(out)], **kw)


def run(n: int, mode: str, out: Path, timeout: float = 240, **env: str):
    done = subprocess.run(
        command(n, mode, out), env=environment(**env), capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(n)]


@pytest.mark.parametrize("n", [2, 3, 4])
def test_sums_are_in_place_bitwise_rank_order_and_the_same_on_every_rank(tmp_path, n):
    reports = run(n, "semantics", tmp_path)
    assert [r["rank"] for r in reports] == list(range(n))
    assert all(r["backend"] == "mpi" and r["size"] == n for r in reports)
    for report in reports:
        for s in report["sums"]:
            assert s["in_place"] and s["bitwise"], s["case"]
        assert all(report["broadcast"])
        assert report["allreduce_sum"] == [n, sum(range(n))]
        assert re.search(
            r"passed different buffers — rank 0: float32 .* × 5; rank 1", report["mismatch"]
        )
        assert "float16" in report["float16"]
        assert report["after_errors"] == [2.0 * n]
    digests = {tuple(s["digest"] for s in r["sums"]) for r in reports}
    assert len(digests) == 1  # every rank holds the same bytes


def test_init_under_mpiexec_picks_mpi_and_shares_the_cpus(tmp_path):
    cores = len(os.sched_getaffinity(0))
    reports = run(2, "init", tmp_path)
    for rank, info in enumerate(reports):
        assert (info["backend"], info["rank"], info["size"]) == ("mpi", rank, 2)
        assert (info["local_rank"], info["local_size"]) == (rank, 2)
        assert info["threads"] == info["get_num_threads"] == max(1, cores // 2)
        assert info["threads_why"] == f"{cores} CPUs shared by 2 ranks on this node"


@pytest.mark.parametrize("pure", ["0", "1"])
def test_the_stop_handler_is_compiled_unless_numba_is_off(tmp_path, pure):
    for info in run(2, "init", tmp_path, FASTDL_PURE=pure):
        assert info["backend"] == "mpi"
        assert info["compiled_handler"] is info["numba"] is (pure == "0")


def test_fastdl_num_threads_wins_and_one_rank_needs_no_mpi(tmp_path):
    (info,) = run(1, "init", tmp_path, FASTDL_NUM_THREADS="1")
    assert info["backend"] == "single"
    assert (info["threads"], info["threads_why"]) == (1, "FASTDL_NUM_THREADS")


def test_first_on_each_node_runs_local_rank_0_first(tmp_path):
    reports = run(3, "first", tmp_path)
    first = reports[0]
    assert first["local_rank"] == 0 and first["end"] - first["start"] >= 1.0
    for other in reports[1:]:
        assert other["start"] >= first["end"]


def wait_for_pids(out: Path, n: int, proc: subprocess.Popen) -> list[int]:
    deadline = time.monotonic() + 120
    while not all((out / f"pid.{r}").exists() for r in range(n)):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the ranks did not start"
        time.sleep(0.05)
    return [int((out / f"pid.{r}").read_text()) for r in range(n)]


def start(n: int, mode: str, out: Path, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        command(n, mode, out, **kw), env=environment(**(env or {})), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def ends_within(proc: subprocess.Popen, pids: list[int], seconds: float, since: float) -> str:
    """The job's output, once ``mpiexec`` and every rank's process have ended, which must
    take less than ``seconds`` from ``since``."""
    deadline = since + seconds
    try:
        output, _ = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"mpiexec still ran {seconds} s later:\n{output}")
    while not all(pid_ended(pid) for pid in pids):  # ranks may end just after mpiexec
        assert time.monotonic() < deadline, f"ranks still ran {seconds} s later:\n{output}"
        time.sleep(0.05)
    assert time.monotonic() < deadline
    assert proc.returncode != 0
    return output


STOPS = "fastdl.distributed: rank {} of 3 stops: "


def test_a_killed_rank_ends_the_job_with_a_message_from_the_survivors(tmp_path):
    """Every time, the job ends within 10 s. The message: hydra SIGKILLs the survivors about
    a millisecond after its SIGUSR1, and a survivor writes only if it gets a CPU within that
    millisecond — on this shared 2-core machine, about 1 run in 10-20 it does not (the rank
    to be killed already runs niced, to leave the CPUs to the survivors). So up to 3 runs,
    each of which must end in time, and one of which must show a survivor's message."""
    outputs = []
    for attempt in range(3):
        out = tmp_path / str(attempt)
        out.mkdir()
        proc = start(3, "loop", out)
        pids = wait_for_pids(out, 3, proc)
        time.sleep(1.0)  # all three in their loop of sums
        os.kill(pids[1], signal.SIGKILL)
        outputs.append(ends_within(proc, pids, 10, since=time.monotonic()))
        if any(STOPS.format(r) + "another rank ended" in outputs[-1] for r in (0, 2)):
            return
    pytest.fail("no survivor wrote its message in 3 runs:\n" + "\n".join(outputs))


def test_without_disable_auto_cleanup_hydra_kills_every_rank_at_once(tmp_path):
    proc = start(3, "loop", tmp_path, report_deaths=False)
    pids = wait_for_pids(tmp_path, 3, proc)
    time.sleep(1.0)
    os.kill(pids[1], signal.SIGKILL)
    output = ends_within(proc, pids, 10, since=time.monotonic())
    # the banner names the first rank it finds killed by a signal: not always the culprit
    named = re.search(
        r"BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES\n=   PID (\d+)", output
    )
    assert named and int(named[1]) in pids, output


TOLD = "another rank ended (killed or crashed); MPICH's mpiexec said so (SIGUSR1)"


@pytest.mark.parametrize(
    "mode, pure, who, says",
    [
        ("raise", "0", [1], "it raised RuntimeError: rank 1 fails on purpose"),
        ("exit", "0", [0, 2], "rank 1 ended (its script returned or called sys.exit)"),
        ("os-exit", "0", [0, 2], TOLD),  # no SIGKILL after the SIGUSR1: not a death by signal
        ("os-exit", "1", [0, 2], TOLD),  # the same from the Python handler (no numba)
        ("os-exit-unheard", "0", [0, 2], "on this node ended — killed or crashed — while"),
    ],
    ids=["exception", "sys.exit", "os._exit", "os._exit-pure", "os._exit-unheard"],
)
def test_a_rank_that_stops_early_ends_the_job_with_a_message(tmp_path, mode, pure, who, says):
    proc = start(3, mode, tmp_path, env={"FASTDL_PURE": pure})
    pids = wait_for_pids(tmp_path, 3, proc)
    output = ends_within(proc, pids, 20, since=time.monotonic())
    said = [line for line in output.splitlines() for r in who if line.startswith(STOPS.format(r))]
    assert any(says in line for line in said), output


needs_namespace = pytest.mark.skipif(
    not namespace_prefix(), reason="cannot make a network namespace here (unshare -n / -rn)"
)


@needs_namespace
def test_the_ranks_namespace_has_only_loopback():
    done = subprocess.run([*namespace_prefix(), "ip", "-o", "link"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    names = [line.split(":")[1].strip() for line in done.stdout.splitlines()]
    assert names == ["lo"]
    assert "state UNKNOWN" in done.stdout or "UP" in done.stdout


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
@pytest.mark.parametrize("isolate", [True, False], ids=["namespace", "env-only"])
def test_no_address_but_loopback_is_ever_bound_or_contacted(tmp_path, isolate):
    if isolate and not namespace_prefix():
        pytest.skip("cannot make a network namespace here")
    trace = tmp_path / "trace.txt"
    cmd = mpiexec_command(2, [sys.executable, str(WORKER), "init", str(tmp_path)], isolate=False)
    strace = ["strace", "-f", "-qq", "-e", "trace=bind,connect,sendto,sendmsg", "-o", str(trace)]
    prefix = list(namespace_prefix()) if isolate else []
    done = subprocess.run([*prefix, *strace, *cmd], env=environment(), capture_output=True,
                          text=True, errors="replace", timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # the socket addresses these calls name (netlink messages listing interfaces aside)
    calls = [line for line in trace.read_text().splitlines() if "sa_family=AF_INET" in line]
    assert calls, "strace saw no socket address at all"
    v4 = {a for line in calls for a in re.findall(r'sin_addr=inet_addr\("([^"]+)"\)', line)}
    v6 = {a for line in calls for a in re.findall(r'inet_pton\(AF_INET6, "([^"]+)"', line)}
    assert v4 <= {"127.0.0.1", "0.0.0.0"} and v6 <= {"::1", "::"}, calls
    contacted = [line for line in calls if re.search(r"\b(connect|sendto|sendmsg)\(", line)]
    assert all('inet_addr("127.0.0.1")' in line for line in contacted), contacted
