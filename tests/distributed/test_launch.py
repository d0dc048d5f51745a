"""The one-machine launch recipe (``fastdl.distributed.launch``), the signal handler in
compiled code, and the check that a process ended — without MPI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from fastdl import config
from fastdl.distributed import launch
from fastdl.distributed.watch import pid_ended


def test_the_command_runs_every_rank_on_this_machine():
    cmd = launch.mpiexec_command(3, ["python", "x.py"], mpiexec="/bin/mpiexec", isolate=False)
    assert cmd == ["/bin/mpiexec", "-launcher", "fork", "-hosts", "127.0.0.1",
                   "-disable-auto-cleanup", "-n", "3", "python", "x.py"]  # fmt: skip
    plain = launch.mpiexec_command(2, ["a"], mpiexec="m", isolate=False, report_deaths=False)
    assert "-disable-auto-cleanup" not in plain
    isolated = launch.mpiexec_command(2, ["a"], mpiexec="m")
    assert isolated[: len(launch.namespace_prefix())] == list(launch.namespace_prefix())


def test_no_mpiexec_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(launch, "mpiexec_path", lambda: None)
    with pytest.raises(FileNotFoundError, match=r"pip install 'fastdl\[mpi\]'"):
        launch.mpiexec_command(2, ["a"])


def test_mpiexec_is_looked_for_beside_this_python_first(tmp_path, monkeypatch):
    mpiexec = tmp_path / "mpiexec"
    mpiexec.write_text("#!/bin/sh\n")
    mpiexec.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert launch.mpiexec_path() == str(mpiexec)


def test_loopback_env_keeps_ucx_on_lo():
    env = launch.loopback_env({"PATH": "/bin"})
    assert env == {"PATH": "/bin", "UCX_NET_DEVICES": "lo"}


def test_main_refuses_no_ranks(capsys):
    with pytest.raises(SystemExit):
        launch.main(["-n", "0", "x.py"])
    assert "expected at least 1" in capsys.readouterr().err


def test_pid_ended():
    assert not pid_ended(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while not pid_ended(child.pid):  # a zombie until reaped: ended already
        time.sleep(0.01)
    child.wait()
    assert pid_ended(child.pid)


SIGNALLED = textwrap.dedent(
    """
    import os, signal, sys, threading
    import numpy as np
    from fastdl.distributed import stop_signal
    signum = getattr(signal, sys.argv[1])
    stop_signal.install({signal.SIGUSR1: "usr1: rank 3 stops\\n",
                         signal.SIGTERM: "term: rank 3 stops\\n"})
    a = np.random.default_rng(0).standard_normal((400, 400))
    threading.Timer(0.3, os.kill, (os.getpid(), signum)).start()
    while True:  # the main thread mostly inside BLAS when the signal lands
        a = np.tanh(a @ a * 1e-3)
    """
)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="the compiled handler needs numba")
@pytest.mark.parametrize("name", ["SIGUSR1", "SIGTERM"])
def test_the_compiled_handler_writes_at_once_and_exits(name):
    done = subprocess.run([sys.executable, "-c", SIGNALLED, name], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 128 + getattr(signal, name)
    assert done.stderr.endswith(f"{name[3:].lower()}: rank 3 stops\n")
