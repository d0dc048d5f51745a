"""``fastdl train mnist-cnn --checkpoint/--resume``: a run killed with SIGKILL and resumed
ends on the same weights as the run that was not."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastdl as fd

pytestmark = pytest.mark.skipif(
    not os.environ.get("FASTDL_DATA"), reason="FASTDL_DATA is not set (CI sets ../shared/data)"
)
TRAIN = [sys.executable, "-m", "fastdl", "train", "mnist-cnn", "--smoke", "--threads", "1"]


def position(checkpoint) -> tuple[int, int]:
    """(epoch in progress, its batches done) of a checkpoint file."""
    with np.load(checkpoint, allow_pickle=False) as z:
        header = json.loads(z["__header__"].tobytes().decode("utf-8"))
    return header["fit"]["epoch"], header["fit"]["batch"]


def test_a_killed_run_resumes_to_the_same_weights(tmp_path):
    whole = tmp_path / "whole.npz"
    subprocess.run([*TRAIN, "--save", str(whole)], check=True, capture_output=True, timeout=600)

    ckpt = tmp_path / "run.ckpt"
    proc = subprocess.Popen([*TRAIN, "--checkpoint", str(ckpt), "--checkpoint-every", "3"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 600
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    epoch, batch = position(ckpt)
    assert (epoch, batch) < (2, 0) and batch % 3 == 0, "the checkpoint is not from mid-run"

    resumed = tmp_path / "resumed.npz"
    out = subprocess.run([*TRAIN, "--resume", str(ckpt), "--save", str(resumed)], check=True,
                         capture_output=True, text=True, timeout=600).stdout  # fmt: skip
    assert "test accuracy" in out
    a, b = fd.load(whole), fd.load(resumed)
    assert all(np.array_equal(p, q) for p, q in zip(a.params(), b.params(), strict=True))
    # a resume with other flags is refused, naming the difference
    bad = subprocess.run([*TRAIN, "--resume", str(ckpt), "--batch-size", "32"],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert bad.returncode != 0 and "batch_size=32 (checkpoint: 64)" in bad.stderr
