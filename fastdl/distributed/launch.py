"""Run ``n`` ranks on this machine only, over loopback: ``python -m fastdl.distributed.launch``.

::

    python -m fastdl.distributed.launch -n 2 train.py --epochs 3

runs MPICH's ``mpiexec`` (the one beside this Python first, from ``pip install
'fastdl[mpi]'``) as::

    mpiexec -launcher fork -hosts 127.0.0.1 -disable-auto-cleanup -n 2 python train.py ...

- ``-launcher fork -hosts 127.0.0.1``: hydra starts the ranks itself, as child processes,
  instead of through ``ssh``; it talks to them over socket pairs, the ranks to each other
  over shared memory.
- ``-disable-auto-cleanup``: when a rank dies, hydra signals the others (SIGUSR1) instead
  of killing them outright, so they say why they stop (:mod:`fastdl.distributed.watch`).
- ``UCX_NET_DEVICES=lo``: MPICH's network module (UCX) would otherwise open listening
  sockets on every network interface at start-up, though a one-machine job never uses them.
- in a network namespace that has only loopback, where this process may make one
  (``unshare -n``, or ``unshare -rn`` without root; then ``ip link set lo up``): nothing the
  job does can reach another address. Measured with ``strace -f -e trace=network``: inside
  it, the only addresses bound are 127.0.0.1 and hydra's ``0.0.0.0`` listener; no
  connection is ever made.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["mpiexec_path", "namespace_prefix", "mpiexec_command", "loopback_env", "main"]


def mpiexec_path() -> str | None:
    """MPICH's ``mpiexec`` beside this Python (a venv with ``fastdl[mpi]``), else on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("mpiexec")


@functools.cache
def namespace_prefix() -> tuple[str, ...]:
    """The command prefix that runs a command in a new network namespace with only
    loopback up, or ``()`` where this process may not make one."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip") or "/usr/sbin/ip"
    if unshare is None or not os.path.exists(ip):
        return ()
    for flags in ("-n", "-rn"):
        prefix = (unshare, flags, "sh", "-c", f'{ip} link set lo up && exec "$@"', "sh")
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return ()


def loopback_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with what keeps MPICH's network module on
    loopback (``UCX_NET_DEVICES=lo``)."""
    out = dict(os.environ if env is None else env)
    out["UCX_NET_DEVICES"] = "lo"
    return out


def mpiexec_command(
    n: int,
    argv: Sequence[str],
    *,
    mpiexec: str | None = None,
    isolate: bool = True,
    report_deaths: bool = True,
) -> list[str]:
    """The command that runs ``argv`` as ``n`` ranks on this machine (run it with
    :func:`loopback_env`).

    Parameters
    ----------
    n : int
        Number of ranks (more than the cores is fine: MPICH needs no flag to oversubscribe).
    argv : sequence of str
        The program, e.g. ``[sys.executable, "train.py"]``.
    mpiexec : str, optional
        Default: :func:`mpiexec_path`.
    isolate : bool, default True
        Prefix :func:`namespace_prefix` where it works.
    report_deaths : bool, default True
        Pass ``-disable-auto-cleanup`` (see the module's notes).

    Raises
    ------
    FileNotFoundError
        When there is no ``mpiexec``.
    """
    mpiexec = mpiexec or mpiexec_path()
    if mpiexec is None:
        raise FileNotFoundError("no mpiexec: pip install 'fastdl[mpi]' installs MPICH's")
    cmd = [mpiexec, "-launcher", "fork", "-hosts", "127.0.0.1"]
    if report_deaths:
        cmd.append("-disable-auto-cleanup")
    cmd += ["-n", str(int(n)), *argv]
    return [*(namespace_prefix() if isolate else ()), *cmd]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m fastdl.distributed.launch -n N script.py [args ...]``; returns the exit
    status of ``mpiexec``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m fastdl.distributed.launch",
        description="Run a Python script as N MPI ranks on this machine, over loopback only.",
    )
    parser.add_argument("-n", type=int, required=True, help="number of ranks")
    parser.add_argument("script", help="the Python script")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"-n: expected at least 1, got {args.n}")
    cmd = mpiexec_command(args.n, [sys.executable, args.script, *args.args])
    return subprocess.call(cmd, env=loopback_env())


if __name__ == "__main__":
    sys.exit(main())
