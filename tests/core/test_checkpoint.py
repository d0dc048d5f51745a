"""Checkpoints of fit: resumed runs end bit for bit where uninterrupted ones do, after an
exception, a Ctrl-C, or SIGKILL at random moments (also during a checkpoint write)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from interruptions import Stop, fail_at_batch
from scripted_losses import NaNOnCall

import fastdl as fd
import fastdl.checkpoint

HERE = Path(__file__).resolve().parent


def cnn():
    return fd.NeuralNetwork(
        [fd.Conv2D(3, 3, activation=fd.ReLU()), fd.MaxPool2D(2, dropout=0.75), fd.Flatten(),
         fd.Dense(6, fd.Tanh(), dropout=0.5), fd.Dense(3)],
        fd.SoftmaxCrossEntropy(), seed=2,
    )  # fmt: skip


def cnn_data(n=90):
    rng = np.random.default_rng(5)
    return rng.standard_normal((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, n)


FIT = dict(epochs=3, eval_every=1, batch_size=16, verbose=0, seed=4, patience=3)


def optimizer():
    return fd.SGDMomentum(0.05, final_lr=0.01, decay_type="exponential", use_ema=True,
                          ema_momentum=0.5)  # fmt: skip


def uninterrupted():
    x, y = cnn_data()
    net = cnn()
    history = fd.Trainer(net, optimizer()).fit(x, y, x[:30], y[:30], **FIT)
    return net.get_weights(), history


def same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize("fail_at", [1, 3, 6, 7, 12, 17, 18])
def test_resuming_after_a_failure_at_any_batch_is_bitwise_the_same(fail_at, tmp_path):
    want, want_history = uninterrupted()
    x, y = cnn_data()
    path = tmp_path / "run.ckpt"
    net = cnn()
    fail_at_batch(net, fail_at)
    with pytest.raises(Stop):
        fd.Trainer(net, optimizer()).fit(x, y, x[:30], y[:30], checkpoint=path,
                                         checkpoint_every=2, **FIT)  # fmt: skip
    fresh = cnn()  # as a new process would build it
    if not path.exists():  # failed before the first checkpoint: start again
        history = fd.Trainer(fresh, optimizer()).fit(x, y, x[:30], y[:30], **FIT)
    else:
        history = fd.Trainer(fresh, optimizer()).fit(x, y, x[:30], y[:30], resume=path, **FIT)
    assert same(fresh.get_weights(), want)
    assert history.val_loss == want_history.val_loss
    assert history.train_loss == want_history.train_loss
    assert history.best_epoch == want_history.best_epoch


def bn_cnn():
    return fd.NeuralNetwork(
        [fd.Conv2D(3, 3), fd.BatchNorm2D(activation=fd.ReLU()), fd.MaxPool2D(2, dropout=0.75),
         fd.BatchNorm2D(momentum=None), fd.Flatten(), fd.Dense(6), fd.BatchNorm1D(activation=fd.Tanh()),
         fd.Dense(3)],
        fd.SoftmaxCrossEntropy(), seed=2,
    )  # fmt: skip


@pytest.mark.parametrize("fail_at", [3, 7, 12])
def test_a_resumed_run_with_batch_norm_ends_bit_for_bit_with_its_running_statistics(
    fail_at, tmp_path
):
    """The checkpoint keeps the running statistics (and the best evaluation's, with the
    weights: early stopping restores both), so the resumed run normalises, evaluates and
    ends as the uninterrupted one."""
    x, y = cnn_data()
    want_net = bn_cnn()
    want_history = fd.Trainer(want_net, optimizer()).fit(x, y, x[:30], y[:30], **FIT)
    want = want_net.get_weights()
    assert len(want) == len(want_net.params()) + 9  # the buffers are in get_weights
    path = tmp_path / "run.ckpt"
    net = bn_cnn()
    fail_at_batch(net, fail_at)
    with pytest.raises(Stop):
        fd.Trainer(net, optimizer()).fit(x, y, x[:30], y[:30], checkpoint=path,
                                         checkpoint_every=2, **FIT)  # fmt: skip
    fresh = bn_cnn()
    history = fd.Trainer(fresh, optimizer()).fit(x, y, x[:30], y[:30], resume=path, **FIT)
    assert same(fresh.get_weights(), want)
    assert fresh.layers[1].num_batches_tracked == want_net.layers[1].num_batches_tracked
    assert history.val_loss == want_history.val_loss
    assert history.train_loss == want_history.train_loss


def test_ctrl_c_checkpoints_ends_on_the_best_weights_and_re_raises(tmp_path, monkeypatch):
    want, _ = uninterrupted()
    x, y = cnn_data()
    path = tmp_path / "run.ckpt"
    net = cnn()
    trainer = fd.Trainer(net, optimizer())
    seen = {"n": 0, "best": None}
    real_train, real_eval = net.train_batch, trainer._evaluate

    def train(xb, yb):
        seen["n"] += 1
        if seen["n"] == 10:  # in epoch 2, after one evaluation
            signal.raise_signal(signal.SIGINT)
        return real_train(xb, yb)

    def evaluate(*args):
        out = real_eval(*args)
        seen["best"] = net.get_weights()  # epoch 1's (averaged) weights, the best so far
        return out

    monkeypatch.setattr(net, "train_batch", train)
    monkeypatch.setattr(trainer, "_evaluate", evaluate)
    with pytest.raises(KeyboardInterrupt, match="the best weights were restored"):
        trainer.fit(x, y, x[:30], y[:30], checkpoint=path, **FIT)
    assert same(net.get_weights(), seen["best"])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    fresh = cnn()
    fd.Trainer(fresh, optimizer()).fit(x, y, x[:30], y[:30], resume=path, **FIT)
    assert same(fresh.get_weights(), want)


def test_a_resume_with_other_settings_network_or_optimizer_is_refused(tmp_path):
    x, y = cnn_data()
    path = tmp_path / "run.ckpt"
    fd.Trainer(cnn(), optimizer()).fit(x, y, checkpoint=path, **FIT)
    with pytest.raises(ValueError, match=r"other settings .* batch_size=8 \(checkpoint: 16\)"):
        fd.Trainer(cnn(), optimizer()).fit(x, y, resume=path, **{**FIT, "batch_size": 8})
    other = fd.NeuralNetwork([fd.Flatten(), fd.Dense(3)], fd.SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match="written for another network"):
        fd.Trainer(other, optimizer()).fit(x, y, resume=path, **FIT)
    with pytest.raises(ValueError, match="the checkpoint's optimizer is SGDMomentum"):
        fd.Trainer(cnn(), fd.SGDMomentum(0.1)).fit(x, y, resume=path, **FIT)
    with pytest.raises(fd.ModelFileError, match="cannot be read"):
        fd.Trainer(cnn(), optimizer()).fit(x, y, resume=tmp_path / "none.ckpt", **FIT)
    with pytest.raises(ValueError, match="checkpoint_every needs checkpoint="):
        fd.Trainer(cnn(), optimizer()).fit(x, y, checkpoint_every=3, **FIT)


def test_a_bad_label_in_a_second_fit_keeps_the_trained_weights():
    x, y = cnn_data()
    net = cnn()
    trainer = fd.Trainer(net, optimizer())
    trainer.fit(x, y, **FIT)
    trained = net.get_weights()
    bad = y.copy()
    bad[-1] = 9
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        trainer.fit(x, bad, **FIT)  # restart=True would have re-initialised first
    assert same(net.get_weights(), trained)


def test_a_divergence_before_any_evaluation_names_the_initial_weights():
    x, y = cnn_data()
    net = fd.NeuralNetwork([fd.Flatten(), fd.Dense(3)], NaNOnCall(4), seed=0)
    with pytest.raises(fd.TrainingDivergedError, match=r"the initial weights \(no evaluation"):
        fd.Trainer(net, fd.SGD(0.1)).fit(x, y, **FIT)


# -- SIGKILL at random moments ------------------------------------------------------------------

WORKER = HERE / "checkpoint_worker.py"


def run_worker(model, folder, resume):
    return subprocess.Popen(
        [sys.executable, str(WORKER), model, str(folder), "resume" if resume else "fresh"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_ready(proc):
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read())


@pytest.mark.parametrize(("model", "kills", "during_write"), [("cnn", 12, 4), ("lstm", 10, 3)])
def test_sigkill_at_random_moments_then_resume_gives_the_same_bits(model, kills, during_write,
                                                                    tmp_path):  # fmt: skip
    reference = tmp_path / "reference"
    reference.mkdir()
    proc = run_worker(model, reference, resume=False)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    want = np.load(reference / "final.npz")

    rnd = random.Random(7)
    report = {"kills": 0, "during_write": 0, "resumed_from": [], "runs_completed": 0}
    chain = 0
    while report["kills"] < kills:  # a run that completes first is checked, and another begun
        chain += 1
        folder = tmp_path / f"killed-{chain}"
        folder.mkdir()
        while not (folder / "final.npz").exists():
            resume = (folder / "run.ckpt").exists()
            if resume:  # every checkpoint a kill left behind must load
                fit = fd.checkpoint.read(folder / "run.ckpt")[0]["fit"]
                report["resumed_from"].append(f"{fit['epoch']}.{fit['batch']}")
            proc = run_worker(model, folder, resume)
            wait_ready(proc)
            if report["kills"] >= kills:  # enough kills: let this run finish
                _, err = proc.communicate(timeout=300)
                assert proc.returncode == 0, err
                break
            # Let the run write a checkpoint of its own first, so every kill lands after some
            # progress even on a loaded machine (where starting up can take seconds).
            stamp = (folder / "run.ckpt").stat().st_mtime_ns if resume else None
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                ckpt = folder / "run.ckpt"
                if ckpt.exists() and ckpt.stat().st_mtime_ns != stamp:
                    break
                time.sleep(0.005)
            time.sleep(rnd.uniform(0.0, 0.6))
            if report["during_write"] < during_write:  # then kill as a checkpoint is written
                deadline = time.monotonic() + 20
                while not any(p.suffix == ".tmp" for p in folder.iterdir()):
                    if time.monotonic() > deadline or proc.poll() is not None:
                        break
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                report["kills"] += 1
                if report["during_write"] < during_write:
                    report["during_write"] += 1
            _, err = proc.communicate(timeout=300)
            assert proc.returncode in (0, -signal.SIGKILL), err
        got = np.load(folder / "final.npz")
        report["runs_completed"] += 1
        assert sorted(got.files) == sorted(want.files)
        for key in want.files:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"run {chain}: {key}")
    print(json.dumps({model: report}))
    assert len(report["resumed_from"]) >= kills // 2  # the kills left checkpoints to resume
