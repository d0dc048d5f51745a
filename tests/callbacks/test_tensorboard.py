"""The TensorBoard callback: what a fit writes, read back by TensorBoard's own reader, served
by the ``tensorboard`` server and drawn by headless Chromium."""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import fastdl as fd
from fastdl.callbacks.tensorboard import TensorBoard, param_tags

pytest.importorskip("tensorboardX", reason="the TensorBoard callback needs fastdl[tensorboard]")
event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="reading the event files back needs the tensorboard package (fastdl[tensorboard])",
)

N_TRAIN, BATCH, EPOCHS = 100, 16, 3
BATCHES = -(-N_TRAIN // BATCH)  # 7: the last batch holds 4 examples


def classification_data(rng, n=N_TRAIN + 40):
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, (x[:, 0] + x[:, 1] > 0).astype(np.int64)


def make_net():
    return fd.NeuralNetwork([fd.Dense(8, fd.Tanh()), fd.Dense(2)], fd.SoftmaxCrossEntropy(), seed=0)


class Recorder(fd.Callback):
    """Keeps every batch's logs, and the weights and gradients each epoch ends on (placed
    after the TensorBoard callback, it sees what that one wrote)."""

    def __init__(self):
        self.batches, self.params, self.grads = [], {}, {}

    def on_batch_end(self, trainer, logs):
        self.batches.append(dict(logs))

    def on_epoch_end(self, trainer, logs):
        self.params[logs["epoch"]] = trainer.net.get_weights()
        self.grads[logs["epoch"]] = [g.copy() for g in trainer.net.param_grads()]


def fit(log_dir, rng, **tb_kwargs):
    """A short fit on synthetic data with a TensorBoard callback writing to ``log_dir``."""
    x, y = classification_data(rng)
    tb, recorder = TensorBoard(log_dir, **tb_kwargs), Recorder()
    net = make_net()
    history = fd.Trainer(net, fd.SGD(0.1)).fit(
        x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:], epochs=EPOCHS, eval_every=1,
        batch_size=BATCH, verbose=0, early_stopping=False, callbacks=[tb, recorder],
    )  # fmt: skip
    return net, tb, recorder, history


def read_events(log_dir):
    """Everything in ``log_dir``'s event files, as TensorBoard reads them (nothing sampled)."""
    acc = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0}
    )
    acc.Reload()
    return acc


def steps_values(acc, tag):
    events = acc.Scalars(tag)
    return [e.step for e in events], [e.value for e in events]


def f32(values):
    """The values as an event file stores scalars (float32), back as Python floats."""
    return [float(np.float32(v)) for v in values]


# -- what a fit writes --------------------------------------------------------------------------


def test_fit_writes_every_scalar_at_its_global_step(tmp_path, rng):
    _, tb, rec, history = fit(tmp_path, rng)
    acc = read_events(tmp_path)
    assert set(acc.Tags()["scalars"]) == {
        "loss/train", "lr", "images_per_s", "loss/train_epoch", "loss/val", "accuracy/val",
    }  # fmt: skip
    assert len(rec.batches) == EPOCHS * BATCHES
    steps = list(range(1, EPOCHS * BATCHES + 1))
    assert steps_values(acc, "loss/train") == (steps, f32(b["loss"] for b in rec.batches))
    assert steps_values(acc, "lr") == (steps, f32([0.1] * len(steps)))
    assert steps_values(acc, "images_per_s") == (steps, f32(b["images_per_s"] for b in rec.batches))
    eval_steps = [BATCHES * e for e in history.epoch]
    assert history.epoch == [1, 2, 3]
    assert steps_values(acc, "loss/train_epoch") == (eval_steps, f32(history.train_loss))
    assert steps_values(acc, "loss/val") == (eval_steps, f32(history.val_loss))
    assert steps_values(acc, "accuracy/val") == (eval_steps, f32(history.val_accuracy))
    assert tb.writer is None  # closed when fit ended
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 1


def test_fit_writes_weight_and_gradient_histograms_per_epoch(tmp_path, rng):
    net, _, rec, _ = fit(tmp_path, rng)
    tags = param_tags(net)
    assert tags == ["0_Dense/weights", "0_Dense/bias", "1_Dense/weights", "1_Dense/bias"]
    acc = read_events(tmp_path)
    assert set(acc.Tags()["histograms"]) == set(tags) | {t + "_grad" for t in tags}
    for what, arrays in (("", rec.params), ("_grad", rec.grads)):
        for i, tag in enumerate(tags):
            events = acc.Histograms(tag + what)
            assert [e.step for e in events] == [BATCHES * e for e in range(1, EPOCHS + 1)]
            for epoch, event in enumerate(events, start=1):
                h, a = event.histogram_value, arrays[epoch][i]
                assert h.num == a.size == sum(h.bucket), tag + what
                assert (h.min, h.max) == (float(a.min()), float(a.max())), tag + what
                assert h.sum == pytest.approx(float(a.sum(dtype=np.float64)), rel=1e-5, abs=1e-6)


def test_batch_every_and_histogram_every(tmp_path, rng):
    fit(tmp_path, rng, batch_every=5, histogram_every=0)
    acc = read_events(tmp_path)
    assert acc.Tags()["histograms"] == []
    assert steps_values(acc, "loss/train")[0] == [5, 10, 15, 20]
    assert steps_values(acc, "loss/val")[0] == [7, 14, 21]  # evaluations are always written


def test_second_fit_continues_the_steps_in_a_new_file(tmp_path, rng):
    x, y = classification_data(rng)
    tb, recorder = TensorBoard(tmp_path, histogram_every=0), Recorder()
    trainer = fd.Trainer(make_net(), fd.SGD(0.1))
    for restart in (True, False):  # twice within a second: the files must not collide
        trainer.fit(x, y, epochs=2, eval_every=1, batch_size=BATCH * 10, verbose=0,
                    restart=restart, callbacks=[tb, recorder])  # fmt: skip
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    steps, values = steps_values(read_events(tmp_path), "loss/train")
    assert steps == list(range(1, 2 * 2 * 1 + 1))  # 140 examples, batches of 160: one an epoch
    assert values == f32(b["loss"] for b in recorder.batches)


def test_resumed_run_replaces_what_the_interrupted_run_wrote_after_the_checkpoint(tmp_path):
    """Driven through the hooks: the first run writes epochs 1-2 and two batches of epoch 3,
    then dies; the checkpoint was written after epoch 3's first batch, so the resumed run
    writes batches 2.. of epoch 3 again, and TensorBoard must keep only its values."""

    def batch(tb, epoch, b, loss):
        tb.on_batch_end(None, {"epoch": epoch, "batch": b, "batches": 4, "size": 8,
                               "loss": loss, "lr": 0.1, "images_per_s": 1.0,
                               "seconds": 1.0})  # fmt: skip

    first = TensorBoard(tmp_path, histogram_every=0)
    first.on_train_begin(None, {"epochs": 3, "epoch": 1, "batches": 4, "n_train": 32,
                                "batch_size": 8, "resumed": False})  # fmt: skip
    for epoch in (1, 2):
        for b in range(1, 5):
            batch(first, epoch, b, loss=float(b))
        first.on_epoch_end(None, {"epoch": epoch})
    batch(first, 3, 1, loss=1.0)
    batch(first, 3, 2, loss=-1.0)  # after the checkpoint: to be dropped
    batch(first, 3, 3, loss=-1.0)
    first.close()  # what the interpreter's exit does for a fit that raised

    resumed = TensorBoard(tmp_path, histogram_every=0)
    resumed.on_train_begin(None, {"epochs": 3, "epoch": 3, "batches": 4, "n_train": 32,
                                  "batch_size": 8, "resumed": True})  # fmt: skip
    for b in range(2, 5):
        batch(resumed, 3, b, loss=float(b))
    resumed.on_evaluate(None, {"epoch": 3, "train_loss": 2.5, "val_loss": 3.0,
                               "val_accuracy": None})  # fmt: skip
    resumed.on_train_end(None, {})
    acc = read_events(tmp_path)
    assert steps_values(acc, "loss/train") == (list(range(1, 13)), [1.0, 2.0, 3.0, 4.0] * 3)
    assert steps_values(acc, "loss/val") == ([12], [3.0])
    assert "accuracy/val" not in acc.Tags()["scalars"]


class Crash(fd.Callback):
    """Raises after batch ``batch`` of epoch ``epoch``, as a killed run stops."""

    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_batch_end(self, trainer, logs):
        if (logs["epoch"], logs["batch"]) == self.at:
            raise RuntimeError("crash")


def test_a_crashed_and_resumed_fit_logs_the_uninterrupted_run(tmp_path, rng):
    """fit checkpoints every 3 batches and dies after batch 5 of epoch 2; the resumed fit
    writes batches 4.. of epoch 2 again. TensorBoard then reads exactly the values of the
    same run uninterrupted (resuming is bit for bit)."""
    x, y = classification_data(rng)
    kwargs = dict(x_test=x[N_TRAIN:], y_test=y[N_TRAIN:], epochs=EPOCHS, eval_every=1,
                  batch_size=BATCH, verbose=0, early_stopping=False)  # fmt: skip
    whole = tmp_path / "whole"
    fd.Trainer(make_net(), fd.SGD(0.1)).fit(
        x[:N_TRAIN], y[:N_TRAIN], callbacks=[TensorBoard(whole, histogram_every=0)], **kwargs
    )
    cut, ckpt = tmp_path / "cut", tmp_path / "run.ckpt"
    first = TensorBoard(cut, histogram_every=0)
    with pytest.raises(RuntimeError, match="crash"):
        fd.Trainer(make_net(), fd.SGD(0.1)).fit(
            x[:N_TRAIN], y[:N_TRAIN], checkpoint=ckpt, checkpoint_every=3,
            callbacks=[first, Crash(2, 5)], **kwargs,
        )  # fmt: skip
    first.close()  # what the interpreter's exit does
    fd.Trainer(make_net(), fd.SGD(0.1)).fit(
        x[:N_TRAIN], y[:N_TRAIN], resume=ckpt, callbacks=[TensorBoard(cut, histogram_every=0)],
        **kwargs,
    )  # fmt: skip
    expected, got = read_events(whole), read_events(cut)
    for tag in ("loss/train", "lr", "loss/train_epoch", "loss/val", "accuracy/val"):
        assert steps_values(got, tag) == steps_values(expected, tag), tag
    assert steps_values(got, "loss/train")[0] == list(range(1, EPOCHS * BATCHES + 1))


def test_without_tensorboardX_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'fastdl\[tensorboard\]'"):
        TensorBoard(tmp_path)
    assert not any(tmp_path.iterdir())


def test_import_fastdl_needs_neither_tensorboardX_nor_tensorboard():
    code = (
        "import sys; sys.modules['tensorboardX'] = sys.modules['tensorboard'] = None\n"
        "import fastdl, fastdl.callbacks.tensorboard\n"
        "try:\n    fastdl.callbacks.tensorboard.TensorBoard('unused')\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'fastdl[tensorboard]'" in out.stdout


def test_bad_arguments():
    for kwargs in ({"batch_every": -1}, {"histogram_every": 1.5}, {"flush_secs": True}):
        with pytest.raises(ValueError, match="TensorBoard: "):
            TensorBoard("unused", **kwargs)


# -- served by tensorboard, drawn by Chromium ----------------------------------------------------

# Only 127.0.0.1 is ever contacted: urllib without proxies, and Chromium with every host name
# but 127.0.0.1 unresolvable, other traffic sent to a closed local port, and its background
# services (updates, sync, metrics) off.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--hide-scrollbars", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-domain-reliability",
    "--metrics-recording-only", "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1400,1000",
]  # fmt: skip


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url):
    with _OPENER.open(url, timeout=10) as response:
        return json.load(response)


@contextlib.contextmanager
def tensorboard_server(log_dir, out):
    """``tensorboard --logdir log_dir --host 127.0.0.1`` on a free port; yields its URL."""
    port = _free_port()
    cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(log_dir),
           "--host", "127.0.0.1", "--port", str(port), "--load_fast=false",
           "--reload_interval", "1"]  # fmt: skip
    with open(out, "w") as log:
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_for_scalars(url, tag, n, log, timeout=90.0):
    """Poll the scalars plugin's data endpoint until ``tag`` has ``n`` points."""
    query = urllib.parse.urlencode({"run": ".", "tag": tag})
    deadline = time.monotonic() + timeout
    while True:
        try:
            points = _get_json(f"{url}/data/plugin/scalars/scalars?{query}")
            if len(points) >= n:
                return points
        except OSError:  # not up yet, or the run not loaded yet (HTTP 400)
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"tensorboard did not serve {n} points of {tag!r}: {log.read_text()}")
        time.sleep(0.5)


def _chromium(chromium, tmp_path, done, *args):
    """Run headless Chromium on a page until ``done(result)``: the dashboards draw after
    their data requests come back, so a busy machine gets more (virtual) time on each of
    three tries, each in a fresh profile. Returns the last ``CompletedProcess``."""
    for budget in (15_000, 30_000, 60_000):
        profile = tmp_path / f"chromium-profile-{time.monotonic_ns()}"
        cmd = [chromium, *CHROMIUM_FLAGS, f"--virtual-time-budget={budget}",
               f"--user-data-dir={profile}", *args]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if done(result):
            break
    return result


def screenshot_dir(tmp_path):
    where = os.environ.get("FASTDL_SCREENSHOT_DIR")
    path = Path(where) if where else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_tensorboard_serves_the_log_and_chromium_draws_the_loss_curve(tmp_path, rng):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium)")
    mpimg = pytest.importorskip("matplotlib.image", reason="decoding the screenshot needs it")
    log_dir = tmp_path / "run"
    _, _, rec, history = fit(log_dir, rng)
    n = len(rec.batches)
    server_log = tmp_path / "tensorboard.log"
    with tensorboard_server(log_dir, server_log) as url:
        # The data endpoint the scalars dashboard draws from: [wall_time, step, value] rows.
        points = _wait_for_scalars(url, "loss/train", n, server_log)
        assert [p[1] for p in points] == list(range(1, n + 1))
        assert [p[2] for p in points] == f32(b["loss"] for b in rec.batches)
        assert _get_json(f"{url}/data/runs") == ["."]
        tags = _get_json(f"{url}/data/plugin/scalars/tags")["."]
        assert {"loss/train", "loss/val", "accuracy/val", "lr", "images_per_s"} <= set(tags)
        val = _wait_for_scalars(url, "loss/val", len(history.epoch), server_log)
        assert [p[2] for p in val] == f32(history.val_loss)

        # The scalars dashboard, filtered to the loss tags so their charts are open.
        png = screenshot_dir(tmp_path) / "tensorboard_scalars.png"
        png.unlink(missing_ok=True)
        page = f"{url}/#scalars&tagFilter=loss"
        shot = _chromium(chromium, tmp_path, lambda r: curve_pixels(png) > 200,
                         f"--screenshot={png}", page)  # fmt: skip
        assert png.is_file(), shot.stderr[-3000:]
        # The Time Series dashboard renders without shadow DOM, so the page Chromium dumps
        # holds its cards: one line chart per loss tag, each named.
        page = f"{url}/?tagFilter=loss#timeseries"
        dom = _chromium(chromium, tmp_path, lambda r: "loss/val" in r.stdout, "--dump-dom", page)
        assert dom.returncode == 0, dom.stderr[-3000:]
    assert "loss/train" in dom.stdout and "loss/val" in dom.stdout
    assert dom.stdout.count("<line-chart ") >= 3
    image = mpimg.imread(png)[..., :3]
    assert image.shape[:2] == (1000, 1400)
    assert image.std() > 0.05, f"{png} is blank"
    assert curve_pixels(png) > 200, f"no loss curve in {png} ({curve_pixels(png)} pixels)"


def curve_pixels(png):
    """Pixels of the loss curve in a 1400×1000 screenshot of the scalars dashboard filtered
    to ``loss``: its first chart is loss/train, drawn in the run's colour (TensorBoard's
    first, #ff7043), which nothing else in that card uses. 0 when there is no image."""
    import matplotlib.image

    if not png.is_file():
        return 0
    image = matplotlib.image.imread(png)[..., :3]
    h, w = image.shape[:2]
    card = image[int(0.15 * h) : int(0.45 * h), int(0.25 * w) : int(0.5 * w)] * 255
    r, g, b = card[..., 0], card[..., 1], card[..., 2]
    return int(((r > 200) & (g > 60) & (g < 160) & (b < 120)).sum())
