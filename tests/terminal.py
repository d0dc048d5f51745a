"""Run a command with a pseudo-terminal as its stdout, as a user's terminal would be."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time


def run_on_terminal(cmd, env, timeout=600, columns=120, stderr_too=True) -> str:
    """Run ``cmd`` with stdout (and, with ``stderr_too``, stderr) on a pseudo-terminal of
    ``columns`` columns; return what it wrote (decoded, bad bytes replaced). Asserts that
    the command succeeded, with its output (or its stderr) as the message."""
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    proc = subprocess.Popen(cmd, stdout=side, stderr=side if stderr_too else subprocess.PIPE,
                            env={**env, "COLUMNS": str(columns)})  # fmt: skip
    os.close(side)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 1.0)
            if ready:
                try:
                    data = os.read(main, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
    finally:
        os.close(main)
        proc.wait(timeout=30)
    out = b"".join(chunks).decode("utf-8", "replace")
    err = "" if stderr_too else proc.stderr.read().decode("utf-8", "replace")
    if not stderr_too:
        proc.stderr.close()
    assert proc.returncode == 0, out + err
    return out
