"""What fit prints: bars on a terminal (tqdm or fastdl's own), plain lines otherwise, the
first-run compile notice, FASTDL_PROGRESS=0."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from terminal import run_on_terminal

import fastdl as fd

SCRIPT = textwrap.dedent(
    """
    import sys
    if "--no-tqdm" in sys.argv:
        sys.modules["tqdm"] = None  # as if it were not installed
    import time
    import numpy as np
    import fastdl as fd

    class Slow(fd.Callback):  # batches slow enough for a bar to be redrawn between them
        def on_batch_end(self, trainer, logs):
            time.sleep(0.006)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    net = fd.NeuralNetwork([fd.Dense(8, fd.Tanh()), fd.Dense(2)], fd.SoftmaxCrossEntropy(),
                           seed=0)
    fd.Trainer(net, fd.SGD(0.1)).fit(x, y, x, y, epochs=2, eval_every=1, batch_size=8,
                                     verbose=1, callbacks=[Slow()])
    print("done")
    """
)


def run(args=(), terminal=True, env=None):
    """Run SCRIPT with stdout on a pseudo-terminal (or a pipe); returns what it wrote."""
    env = {**os.environ, **(env or {})}
    cmd = [sys.executable, "-c", SCRIPT, *args]
    if not terminal:
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600).stdout
    return run_on_terminal(cmd, env)


def test_a_terminal_gets_a_redrawn_tqdm_bar():
    pytest.importorskip("tqdm")
    out = run()
    assert "\r" in out and "%|" in out  # tqdm redraws its bar in place
    assert "loss" in out and "ex/s" in out and "<00:" in out  # tqdm's time left
    lines = [line for line in out.replace("\r", "\n").splitlines() if line.startswith("epoch ")]
    assert any(line.startswith("epoch 2/2  train loss") and "val acc" in line for line in lines)
    assert out.rstrip().endswith("done")


def test_without_tqdm_a_terminal_gets_fastdls_own_bar():
    out = run(["--no-tqdm"])
    assert "\r" in out and "epoch 1/2 [" in out and "#" in out and "/50  loss" in out
    assert "\n" + "epoch 2/2  train loss" in out.replace("\r\x1b[K", "\n").replace("\r\n", "\n")


def test_no_terminal_gets_plain_lines_a_tenth_of_an_epoch_apart():
    out = run(terminal=False)
    assert "\r" not in out
    lines = out.splitlines()
    batches = [line for line in lines if line.startswith("  epoch 1/2 [")]
    assert [line.split("]")[0].split("[")[1] for line in batches] == [
        f"{b:>2}/50" for b in (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)
    ]
    assert sum(line.startswith("epoch ") for line in lines) == 2


def test_fastdl_progress_0_turns_bars_off_even_on_a_terminal():
    out = run(env={"FASTDL_PROGRESS": "0"})
    assert "%|" not in out and "#" not in out and "[" not in out
    assert [line.split("  ")[0] for line in out.splitlines() if line.startswith("epoch")] == [
        "epoch 1/2",
        "epoch 2/2",
    ]


@pytest.mark.skipif(fd.config.PURE_AT_IMPORT, reason="nothing compiles under FASTDL_PURE=1")
def test_a_cold_numba_cache_says_it_is_compiling_once(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    first = run(terminal=False, env=env)
    assert "compiling kernels (first run only" in first
    assert "compiling kernels" not in run(terminal=False, env=env)


def test_restart_says_when_it_discards_trained_weights(capsys):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    net = fd.NeuralNetwork([fd.Dense(2)], fd.SoftmaxCrossEntropy(), seed=0)
    trainer = fd.Trainer(net, fd.SGD(0.1))
    trainer.fit(x, y, epochs=1, verbose=2)
    assert "re-initialises" not in capsys.readouterr().out
    trainer.fit(x, y, epochs=1, verbose=2)
    assert "fit: restart=True re-initialises the trained weights" in capsys.readouterr().out
    trainer.fit(x, y, epochs=1, verbose=2, restart=False)
    assert "re-initialises" not in capsys.readouterr().out
