"""Moving average of the weights (``use_ema``): the rule, its checks, and how ``fit`` uses it."""

import numpy as np
import pytest

import fastdl as fd


class FakeNet:
    """Parameters and a fixed sequence of gradients, enough for an optimizer."""

    def __init__(self, params):
        self._params, self.grads = params, None

    def params(self):
        return self._params

    def param_grads(self):
        return self.grads


def steps(optim, dtype=np.float64, n=5, seed=0):
    """Run ``n`` steps; return the raw weights after each one."""
    rng = np.random.default_rng(seed)
    net = FakeNet([rng.standard_normal((3, 2)).astype(dtype), rng.standard_normal(2).astype(dtype)])
    optim.bind(net)
    history = []
    for _ in range(n):
        net.grads = [rng.standard_normal(p.shape).astype(dtype) for p in net.params()]
        optim.step()
        history.append([p.copy() for p in net.params()])
    return history


@pytest.mark.parametrize(
    "make",
    [
        lambda **kw: fd.SGD(0.1, **kw),
        lambda **kw: fd.SGDMomentum(0.1, **kw),
        lambda **kw: fd.AdaGrad(0.1, **kw),
        lambda **kw: fd.RMSprop(0.01, **kw),
        lambda **kw: fd.Adam(0.01, **kw),
        lambda **kw: fd.AdamW(0.01, **kw),
        lambda **kw: fd.Adadelta(**kw),
    ],
    ids=["SGD", "SGDMomentum", "AdaGrad", "RMSprop", "Adam", "AdamW", "Adadelta"],
)
@pytest.mark.parametrize("m", [0.0, 0.5, 0.99])
def test_average_follows_the_rule_and_leaves_training_alone(make, m):
    with_ema = make(use_ema=True, ema_momentum=m)
    raw = steps(with_ema)
    plain = steps(make())
    for a, b in zip(raw, plain, strict=True):  # the raw trajectory is exactly the same
        for p, q in zip(a, b, strict=True):
            np.testing.assert_array_equal(p, q)
    expected = [p.copy() for p in raw[0]]  # the first step's weights start the average
    for weights in raw[1:]:
        expected = [m * e + (1 - m) * w for e, w in zip(expected, weights, strict=True)]
    for got, want in zip(with_ema.ema_weights(), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_average_stays_in_the_parameters_dtype():
    optim = fd.SGDMomentum(0.1, use_ema=True)
    steps(optim, dtype=np.float32)
    assert all(a.dtype == np.float32 for a in optim.ema_weights())


def test_ema_weights_are_copies():
    optim = fd.SGD(0.1, use_ema=True)
    steps(optim)
    first = optim.ema_weights()
    first[0][...] = 123.0
    assert not np.any(optim.ema_weights()[0] == 123.0)


def test_reset_forgets_the_average():
    optim = fd.SGD(0.1, use_ema=True)
    steps(optim)
    optim.reset()
    with pytest.raises(RuntimeError, match=r"no step taken since the average \(re\)started"):
        optim.ema_weights()


def test_errors():
    with pytest.raises(RuntimeError, match=r"SGD\.ema_weights: .*use_ema=False"):
        fd.SGD(0.1).ema_weights()
    with pytest.raises(RuntimeError, match=r"no step taken since the average \(re\)started"):
        fd.Adam(use_ema=True).ema_weights()
    for bad in (1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"Adam: ema_momentum must be in \[0, 1\)"):
            fd.Adam(use_ema=True, ema_momentum=bad)
    with pytest.raises(TypeError, match="SGD: use_ema must be True or False, got 'yes'"):
        fd.SGD(0.1, use_ema="yes")
    with pytest.raises(RuntimeError, match=r"SGD\.apply_ema: bind a network first"):
        fd.SGD(0.1, use_ema=True).apply_ema()


def test_restart_ema_starts_a_new_average_from_the_next_step():
    optim = fd.SGD(0.1, use_ema=True, ema_momentum=0.5)
    raw = steps(optim, n=3)
    optim.restart_ema()
    with pytest.raises(RuntimeError, match="since the average"):
        optim.ema_weights()
    rng = np.random.default_rng(9)
    optim.net.grads = [rng.standard_normal(p.shape) for p in optim.net.params()]
    optim.step()
    for got, now in zip(optim.ema_weights(), optim.net.params(), strict=True):
        np.testing.assert_array_equal(got, now)  # the new average is the weights after one step
    assert not np.array_equal(optim.net.params()[0], raw[-1][0])


def classification_data(n=240, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 2] > 0).astype(np.int64)
    return x[: n // 2], y[: n // 2], x[n // 2 :], y[n // 2 :]


def make_net():
    return fd.NeuralNetwork([fd.Dense(8, fd.Tanh()), fd.Dense(2)], fd.SoftmaxCrossEntropy(), seed=3)


class KeepLastAverage(fd.SGDMomentum):
    """Keeps a copy of the average that ``fit`` applies before it starts a new one."""

    def restart_ema(self):
        self.last_average = self.ema_weights() if self._ema is not None else None
        super().restart_ema()


def test_fit_trains_on_raw_weights_and_ends_on_the_average():
    x, y, xt, yt = classification_data()
    plain_net, ema_net = make_net(), make_net()
    plain = fd.Trainer(plain_net, fd.SGDMomentum(0.1)).fit(
        x, y, xt, yt, epochs=4, eval_every=1, batch_size=16, verbose=0, early_stopping=False
    )
    optim = KeepLastAverage(0.1, use_ema=True, ema_momentum=0.9)
    trainer = fd.Trainer(ema_net, optim)
    averaged = trainer.fit(
        x, y, xt, yt, epochs=4, eval_every=1, batch_size=16, verbose=0, early_stopping=False
    )
    # Same raw trajectory: the training losses agree exactly; the evaluations do not.
    assert averaged.train_loss == plain.train_loss
    assert averaged.val_loss != plain.val_loss
    for p, a in zip(ema_net.params(), optim.last_average, strict=True):
        np.testing.assert_array_equal(p, a)
    assert not np.array_equal(ema_net.params()[0], plain_net.params()[0])
    # The net ends on the weights whose loss the last evaluation reported.
    loss = ema_net.loss.forward(ema_net.forward(xt, inference=True), yt)
    assert loss == pytest.approx(averaged.val_loss[-1], rel=1e-5)


class ScriptedTrainer(fd.Trainer):
    """Evaluations return scripted losses and record the weights they were given."""

    def __init__(self, net, optim, losses):
        super().__init__(net, optim)
        self.losses, self.seen = list(losses), []

    def _evaluate(self, x, y, batch_size):
        self.seen.append((self.net.get_weights(), self.optim.ema_weights()))
        return self.losses.pop(0), 0.5


def test_early_stopping_keeps_the_best_averaged_weights():
    x, y, xt, yt = classification_data()
    optim = fd.SGD(0.1, use_ema=True, ema_momentum=0.5)
    trainer = ScriptedTrainer(make_net(), optim, [1.0, 0.5, 0.7, 0.8])
    history = trainer.fit(x, y, xt, yt, epochs=4, eval_every=1, batch_size=16, verbose=0)
    assert history.best_epoch == 2 and history.stopped_early and history.epoch == [1, 2, 3]
    for evaluated, average in trainer.seen:  # every evaluation saw the average
        for p, a in zip(evaluated, average, strict=True):
            np.testing.assert_array_equal(p, a)
    for p, best in zip(trainer.net.params(), trainer.seen[1][0], strict=True):
        np.testing.assert_array_equal(p, best)


def test_without_test_data_the_average_is_evaluated_on_the_training_data():
    """The reported loss belongs to the weights kept, not to the raw weights of the epoch."""
    x, y, _, _ = classification_data()
    net = make_net()
    history = fd.Trainer(net, fd.SGDMomentum(0.1, use_ema=True, ema_momentum=0.99)).fit(
        x, y, epochs=5, eval_every=1, batch_size=16, verbose=0
    )
    kept = net.loss.forward(net.forward(x, inference=True), y)
    best = history.val_loss[history.epoch.index(history.best_epoch)]
    assert kept == pytest.approx(best, rel=1e-5)
    assert history.val_loss != history.train_loss


def regression_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, (x @ np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32) * 100)[:, None]


def test_after_a_divergence_a_resumed_fit_starts_a_fresh_average():
    """Two linear layers with lr 0.05 on targets in the hundreds blow up; resuming with a tiny
    rate must not blend in the average of the weights that blew up."""
    x, y = regression_data()
    net = fd.NeuralNetwork([fd.Dense(8), fd.Dense(1)], fd.MeanSquaredError(), seed=3)
    optim = fd.SGD(0.05, use_ema=True, ema_momentum=0.9)
    trainer = fd.Trainer(net, optim)
    with pytest.raises(fd.TrainingDivergedError):
        trainer.fit(x, y, x, y, epochs=20, eval_every=1, batch_size=16, verbose=0)
    assert all(np.isfinite(p).all() for p in net.params())
    optim.initial_lr = 1e-6
    history = trainer.fit(
        x, y, x, y, epochs=2, eval_every=1, batch_size=16, verbose=0, restart=False
    )
    assert all(np.isfinite(v) for v in history.val_loss)


def test_a_resumed_fit_continues_from_the_weights_fit_ended_on():
    x, y, xt, yt = classification_data()
    net = make_net()
    optim = fd.SGD(0.05, use_ema=True, ema_momentum=0.9)  # no velocity to carry over
    trainer = fd.Trainer(net, optim)
    trainer.fit(
        x, y, xt, yt, epochs=2, eval_every=1, batch_size=16, verbose=0, early_stopping=False
    )
    ended_on = net.get_weights()
    optim.initial_lr = optim.lr = 1e-12  # so small that one more epoch barely moves anything
    trainer.fit(x, y, xt, yt, epochs=1, batch_size=16, verbose=0, restart=False)
    for p, e in zip(net.params(), ended_on, strict=True):
        np.testing.assert_allclose(p, e, atol=1e-6)
