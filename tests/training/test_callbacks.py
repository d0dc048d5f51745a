"""fit's callbacks: the order of the hooks, what their logs hold, stopping, and state kept
in checkpoints."""

import numpy as np
import pytest

import fastdl as fd


def data(n=50, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def net(seed=0):
    return fd.NeuralNetwork(
        [fd.Dense(8, fd.Tanh(), dropout=0.9), fd.Dense(2)], fd.SoftmaxCrossEntropy(), seed=seed
    )


class Recorder(fd.Callback):
    """Records every hook call with a copy of its logs."""

    def __init__(self):
        self.calls = []

    def _record(name):  # noqa: N805 (a helper that makes methods)
        def hook(self, trainer, logs):
            self.calls.append((name, dict(logs)))

        return hook

    on_train_begin = _record("on_train_begin")
    on_epoch_begin = _record("on_epoch_begin")
    on_batch_begin = _record("on_batch_begin")
    on_batch_end = _record("on_batch_end")
    on_evaluate = _record("on_evaluate")
    on_epoch_end = _record("on_epoch_end")
    on_train_end = _record("on_train_end")

    def named(self, name):
        return [logs for hook, logs in self.calls if hook == name]


def test_hooks_come_in_order_with_what_happened():
    x, y = data()
    rec = Recorder()
    trainer = fd.Trainer(net(), fd.SGD(0.1))
    losses = []
    real = trainer.net.train_batch
    trainer.net.train_batch = lambda xb, yb: losses.append(real(xb, yb)) or losses[-1]
    history = trainer.fit(x, y, x[:20], y[:20], epochs=3, eval_every=2, batch_size=16,
                          verbose=0, early_stopping=False, callbacks=[rec])  # fmt: skip
    batch = ["on_batch_begin", "on_batch_end"] * 4
    want = (["on_train_begin"] + ["on_epoch_begin", *batch, "on_epoch_end"]
            + ["on_epoch_begin", *batch, "on_evaluate", "on_epoch_end"]
            + ["on_epoch_begin", *batch, "on_evaluate", "on_epoch_end"] + ["on_train_end"])  # fmt: skip
    assert [hook for hook, _ in rec.calls] == want

    begin = rec.named("on_train_begin")[0]
    assert begin == {"epochs": 3, "epoch": 1, "batches": 4, "n_train": 50, "batch_size": 16,
                     "resumed": False, "unit": "ex"}  # fmt: skip
    ends = rec.named("on_batch_end")
    assert [e["size"] for e in ends] == [16, 16, 16, 2] * 3
    assert [(e["epoch"], e["batch"]) for e in ends] == [(ep, b) for ep in (1, 2, 3)
                                                        for b in (1, 2, 3, 4)]  # fmt: skip
    assert [e["loss"] for e in ends] == losses  # the very numbers train_batch returned
    assert all(e["lr"] == 0.1 and e["images_per_s"] > 0 and e["seconds"] >= 0 for e in ends)

    epoch_ends = rec.named("on_epoch_end")
    assert [e["evaluated"] for e in epoch_ends] == [False, True, True]
    for e, ep in zip(epoch_ends, (1, 2, 3), strict=True):
        mean = np.dot(losses[4 * (ep - 1) : 4 * ep], [16, 16, 16, 2]) / 50
        assert e["epoch"] == ep and e["train_loss"] == pytest.approx(mean, rel=1e-12)
    evals = rec.named("on_evaluate")
    assert [e["val_loss"] for e in evals] == history.val_loss
    assert [e["val_accuracy"] for e in evals] == history.val_accuracy
    assert [e["train_loss"] for e in evals] == history.train_loss
    assert evals[0]["improved"] and evals[0]["best_epoch"] == 2
    assert evals[1]["best_loss"] == min(history.val_loss)
    end = rec.named("on_train_end")[0]
    assert end["history"] is history and end["epoch"] == 3 and not end["stopped_early"]


def test_a_callback_that_is_not_one_is_refused_before_training():
    x, y = data()
    trainer = fd.Trainer(net(), fd.SGD(0.1))
    with pytest.raises(TypeError, match=r"callbacks\[1\] is .*not a fastdl Callback"):
        trainer.fit(x, y, epochs=1, verbose=0, callbacks=[Recorder(), print])
    assert trainer.optim.iterations == 0


class StopAt(fd.Callback):
    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_batch_end(self, trainer, logs):
        if (logs["epoch"], logs["batch"]) == self.at:
            trainer.stop_training = True


def test_stop_training_ends_after_the_batch_and_evaluates_the_partial_epoch():
    x, y = data()
    rec = Recorder()
    trainer = fd.Trainer(net(), fd.SGD(0.1))
    history = trainer.fit(x, y, x, y, epochs=5, eval_every=3, batch_size=16, verbose=0,
                          callbacks=[StopAt(2, 2), rec])  # fmt: skip
    assert history.epoch == [2] and history.stopped_by == "StopAt" and not history.stopped_early
    assert trainer.optim.iterations == 6  # epoch 1's four batches, then two
    losses = [e["loss"] for e in rec.named("on_batch_end")][4:]
    assert history.train_loss == [pytest.approx(np.mean(losses), rel=1e-12)]
    assert [h for h, _ in rec.calls][-3:] == ["on_evaluate", "on_epoch_end", "on_train_end"]


def test_early_stopping_is_a_callback_and_history_says_it_stopped():
    x, y = data()
    trainer = fd.Trainer(net(), fd.SGD(0.1))
    scores = iter([1.0, 0.5, 0.7, 0.8, 0.9])
    real = trainer._evaluate
    trainer._evaluate = lambda *a, **k: (real(*a, **k), (next(scores), 0.5))[1]
    history = trainer.fit(x, y, x, y, epochs=5, eval_every=1, batch_size=16, verbose=0,
                          patience=2)  # fmt: skip
    assert history.epoch == [1, 2, 3, 4] and history.best_epoch == 2
    assert history.stopped_early and history.stopped_by == "EarlyStopping"


def test_time_limit_stops_when_its_budget_is_spent():
    x, y = data()
    limit = fd.callbacks.TimeLimit(1e-9)
    history = fd.Trainer(net(), fd.SGD(0.1)).fit(x, y, epochs=50, batch_size=16, verbose=0,
                                                 callbacks=[limit])  # fmt: skip
    assert history.epoch == [1] and history.stopped_by == "TimeLimit"
    assert limit.used > 0 and limit.fraction == 1.0
    for bad in (0, -1.0, float("nan"), float("inf"), True, "5"):
        with pytest.raises(ValueError, match="TimeLimit: seconds must be a positive number"):
            fd.callbacks.TimeLimit(bad)


class Counter(fd.Callback):
    """A callback with state: batches seen over the whole run (kept by checkpoints)."""

    def __init__(self):
        self.batches = 0

    def on_batch_end(self, trainer, logs):
        self.batches += 1

    def state_dict(self):
        return {"batches": self.batches}

    def load_state_dict(self, state):
        self.batches = state["batches"]


class Crash(fd.Callback):
    def __init__(self, after):
        self.after, self.n = after, 0

    def on_batch_end(self, trainer, logs):
        self.n += 1
        if self.n == self.after:
            raise RuntimeError("the machine went away")


FIT = dict(epochs=3, eval_every=1, batch_size=16, verbose=0, seed=2, patience=3)


def test_a_callbacks_state_is_kept_by_checkpoints_and_resumed(tmp_path):
    x, y = data()
    want_net, want_count = net(), Counter()
    fd.Trainer(want_net, fd.Adam(0.01)).fit(x, y, x, y, callbacks=[want_count], **FIT)
    path = tmp_path / "run.ckpt"
    count = Counter()
    with pytest.raises(RuntimeError, match="went away"):
        fd.Trainer(net(), fd.Adam(0.01)).fit(x, y, x, y, checkpoint=path, checkpoint_every=1,
                                             callbacks=[count, Crash(7)], **FIT)  # fmt: skip
    resumed, again = net(), Counter()
    fd.Trainer(resumed, fd.Adam(0.01)).fit(x, y, x, y, checkpoint=path, resume=path,
                                           callbacks=[again], **FIT)  # fmt: skip
    assert again.batches == want_count.batches == 12
    assert all(np.array_equal(a, b) for a, b in
               zip(resumed.params(), want_net.params(), strict=True))  # fmt: skip
    with pytest.raises(
        ValueError,
        match=r"callbacks \['Counter', 'EarlyStopping'\], this fit has \['EarlyStopping'\]",
    ):
        fd.Trainer(net(), fd.Adam(0.01)).fit(x, y, x, y, resume=path, **FIT)


def test_a_finished_run_resumes_to_its_end_without_training(tmp_path):
    x, y = data()
    path = tmp_path / "run.ckpt"
    first = fd.Trainer(net(), fd.SGD(0.1))
    h1 = first.fit(x, y, epochs=4, batch_size=16, verbose=0, checkpoint=path,
                   callbacks=[StopAt(2, 1)])  # fmt: skip
    again = fd.Trainer(net(), fd.SGD(0.1))
    h2 = again.fit(x, y, epochs=4, batch_size=16, verbose=0, resume=path,
                   callbacks=[StopAt(2, 1)])  # fmt: skip
    assert h2.epoch == h1.epoch == [2] and h2.stopped_by == "StopAt"
    assert again.optim.iterations == first.optim.iterations == 5


class StopAfterEpoch(fd.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, logs):
        if logs["epoch"] == self.epoch:
            trainer.stop_training = True


def test_stop_training_in_on_epoch_end_ends_before_the_next_epoch(tmp_path):
    x, y = data()
    trainer = fd.Trainer(net(), fd.SGD(0.1))
    path = tmp_path / "run.ckpt"
    history = trainer.fit(x, y, epochs=5, eval_every=1, batch_size=16, verbose=0,
                          checkpoint=path, callbacks=[StopAfterEpoch(2)])  # fmt: skip
    assert history.epoch == [1, 2] and history.stopped_by == "StopAfterEpoch"
    assert trainer.optim.iterations == 8
    saved = fd.checkpoint.read(path)[0]["fit"]
    assert saved["stopped"] and saved["history"]["stopped_by"] == "StopAfterEpoch"
