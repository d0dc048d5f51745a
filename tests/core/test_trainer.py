"""Trainer.fit: batches, shuffling, evaluation, early stopping, divergence, bad arguments."""

import numpy as np
import pytest
from scripted_losses import NaNOnCall
from toy_nets import same_weights, toy_data, toy_initial_weights, toy_net

import fastdl as fd


def classification_data(rng, n=120):
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return x, y


def make_net(seed=0):
    return fd.NeuralNetwork(
        [fd.Dense(8, fd.Tanh()), fd.Dense(2)], fd.SoftmaxCrossEntropy(), seed=seed
    )


class CountingSGD(fd.SGD):
    """SGD that records the batch sizes it updated from."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batch_sizes = []

    def step(self):
        self.batch_sizes.append(len(self.net.layers[0].input_))
        super().step()


def test_last_partial_batch_is_used(rng):
    x, y = classification_data(rng, 50)
    opt = CountingSGD(0.1)
    fd.Trainer(make_net(), opt).fit(x, y, epochs=2, batch_size=16, verbose=0, early_stopping=False)
    assert opt.batch_sizes == [16, 16, 16, 2] * 2


def test_learns_and_reports_history(rng):
    x, y = classification_data(rng, 400)
    history = fd.Trainer(make_net(), fd.SGDMomentum(0.1)).fit(
        x[:300],
        y[:300],
        x[300:],
        y[300:],
        epochs=6,
        eval_every=2,
        batch_size=20,
        verbose=0,
        early_stopping=False,
    )
    assert history.epoch == [2, 4, 6]
    assert len(history.val_loss) == len(history.val_accuracy) == len(history.train_loss) == 3
    assert history.val_accuracy[-1] > 0.9
    assert history.val_loss[-1] < history.val_loss[0]
    assert history.best_epoch in history.epoch


def test_verbose_2_prints_one_line_per_epoch_and_0_nothing(rng, capsys):
    x, y = classification_data(rng)
    fd.Trainer(make_net(), fd.SGD(0.1)).fit(
        x, y, x, y, epochs=4, eval_every=2, verbose=2, early_stopping=False
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("  ")[0] for line in lines] == [f"epoch {e}/4" for e in (1, 2, 3, 4)]
    assert ["val acc" in line for line in lines] == [False, True, False, True]
    assert all("ex/s" in line and "train loss" in line for line in lines)
    fd.Trainer(make_net(), fd.SGD(0.1)).fit(x, y, x, y, epochs=2, eval_every=1, verbose=0)
    assert capsys.readouterr().out == ""


def test_early_stopping_restores_best_weights(rng):
    """A learning rate that makes the loss climb after the first epoch triggers the stop."""
    x, y = classification_data(rng, 200)

    class Recording(fd.Trainer):
        snapshots = []

        def _evaluate(self, *args):
            self.snapshots.append(self.net.get_weights())
            return super()._evaluate(*args)

    trainer = Recording(make_net(), fd.SGD(0.05))
    losses = iter([1.0, 0.5, 0.7])
    orig = trainer._evaluate

    def scripted(*args):
        orig(*args)
        return next(losses), 0.5

    trainer._evaluate = scripted
    history = trainer.fit(x, y, x, y, epochs=10, eval_every=1, verbose=0)
    assert history.stopped_early and history.best_epoch == 2 and history.epoch == [1, 2, 3]
    best = Recording.snapshots[1]
    assert all(np.array_equal(a, b) for a, b in zip(trainer.net.get_weights(), best, strict=True))


def test_patience_allows_more_bad_evaluations(rng):
    x, y = classification_data(rng)
    trainer = fd.Trainer(make_net(), fd.SGD(0.05))
    losses = iter([1.0, 1.1, 1.2, 0.9, 1.3, 1.4, 1.5])
    orig = trainer._evaluate

    def scripted(*args):
        orig(*args)
        return next(losses), 0.5

    trainer._evaluate = scripted
    history = trainer.fit(x, y, x, y, epochs=7, eval_every=1, verbose=0, patience=2)
    assert history.epoch == [1, 2, 3] and history.best_epoch == 1


def test_nan_loss_stops_with_epoch_and_batch_and_keeps_best_weights(rng):
    x, y = classification_data(rng, 64)
    net = make_net()
    trainer = fd.Trainer(net, fd.SGD(0.01))
    fit_calls = 2  # the checking passes on one train and one test example
    per_epoch = 8 + 1  # 8 batches, then one evaluation batch of all 64
    nan_at = fit_calls + per_epoch + 3  # the 3rd batch of epoch 2
    net.loss = NaNOnCall(nan_at)
    with pytest.raises(fd.TrainingDivergedError, match=r"loss is nan at epoch 2, batch 3 "):
        trainer.fit(x, y, x, y, epochs=3, eval_every=1, batch_size=8, verbose=0)
    best = net.get_weights()  # restored: the weights evaluated after epoch 1
    assert all(np.all(np.isfinite(p)) for p in best)
    net.loss = fd.SoftmaxCrossEntropy()
    epoch1 = make_net()
    fd.Trainer(epoch1, fd.SGD(0.01)).fit(x, y, x, y, epochs=1, batch_size=8, verbose=0)
    for p, q in zip(best, epoch1.params(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_divergence_from_a_huge_learning_rate(rng):
    x, y = classification_data(rng, 64)
    net = fd.NeuralNetwork([fd.Dense(8, fd.ReLU()), fd.Dense(2)], fd.MeanSquaredError(), seed=0)
    y2 = np.stack([y, 1 - y], axis=1).astype(np.float32)
    with pytest.raises(fd.TrainingDivergedError, match=r"at epoch \d+, batch \d+"):
        fd.Trainer(net, fd.SGD(1e6)).fit(
            x, y2, epochs=20, batch_size=8, verbose=0, early_stopping=False
        )
    assert all(np.all(np.isfinite(p)) for p in net.params())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size must be a positive int, got 0"),
        ({"batch_size": -3}, ValueError, "batch_size must be a positive int"),
        ({"epochs": 0}, ValueError, "epochs must be a positive int"),
        ({"eval_every": 0}, ValueError, "eval_every must be a positive int"),
    ],
)
def test_bad_arguments(kwargs, error, match, rng):
    x, y = classification_data(rng)
    with pytest.raises(error, match=match):
        fd.Trainer(make_net(), fd.SGD(0.1)).fit(x, y, verbose=0, **kwargs)


def test_bad_data_is_refused_before_training(rng):
    x, y = classification_data(rng)
    trainer = fd.Trainer(make_net(), fd.SGD(0.1))
    with pytest.raises(ValueError, match="x_train has 120 examples but y_train has 119"):
        trainer.fit(x, y[:-1], verbose=0)
    with pytest.raises(ValueError, match="x_train is empty"):
        trainer.fit(x[:0], y[:0], verbose=0)
    with pytest.raises(ValueError, match="give both x_test and y_test"):
        trainer.fit(x, y, x, verbose=0)
    with pytest.raises(ValueError, match="x_test has 120 examples but y_test has 10"):
        trainer.fit(x, y, x, y[:10], verbose=0)
    y_bad = y.copy()
    y_bad[-1] = 5  # not in the first example: found by the up-front check of every label
    with pytest.raises(ValueError, match=r"y_train labels must be in \[0, 2\).*\[0, 5\]"):
        trainer.fit(x, y_bad, verbose=0)
    assert trainer.optim.iterations == 0
    with pytest.raises(TypeError, match="net must be a NeuralNetwork"):
        fd.Trainer("net", fd.SGD(0.1))


@pytest.mark.parametrize("with_test_data", [True, False])
@pytest.mark.parametrize("early_stopping", [True, False])
def test_divergence_in_the_last_update_is_reported(with_test_data, early_stopping, rng):
    x, y = toy_data(rng)
    net = toy_net()
    extra = (x, y) if with_test_data else ()
    with pytest.raises(fd.TrainingDivergedError, match="epoch 1"):
        fd.Trainer(net, fd.SGD(1e300)).fit(
            x, y, *extra, epochs=1, batch_size=len(x), verbose=0, early_stopping=early_stopping
        )
    assert same_weights(net.get_weights(), toy_initial_weights())


def test_a_nan_loss_restores_the_initial_weights(rng):
    x, y = toy_data(rng)
    net = fd.NeuralNetwork([fd.Dense(8, fd.Tanh()), fd.Dense(2)], NaNOnCall(1 + 5), seed=0)
    # call 1 is fit's checking pass on one example; call 6 is the 5th training batch
    with pytest.raises(fd.TrainingDivergedError, match=r"loss is nan at epoch 1, batch 5 "):
        fd.Trainer(net, fd.SGD(0.01)).fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert same_weights(net.get_weights(), toy_initial_weights())


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("x_features", r"Dense: expected 4 input features"),
        ("y_shape", r"integer labels must have shape \(1,\)"),
        ("y_range", r"y_test labels must be in \[0, 2\)"),
    ],
)
def test_bad_test_data_is_refused_before_any_update(bad, match, rng):
    x, y = toy_data(rng)
    x_test, y_test = x.copy(), y.copy()
    if bad == "x_features":
        x_test = x_test[:, :3]
    elif bad == "y_shape":
        y_test = y_test.reshape(-1, 1)
    else:
        y_test[-1] = 2
    trainer = fd.Trainer(toy_net(), fd.SGD(0.1))
    with pytest.raises(ValueError, match=match):
        trainer.fit(x, y, x_test, y_test, epochs=1, verbose=0)
    assert trainer.optim.iterations == 0


def test_early_stopping_ends_on_the_best_weights_even_without_a_stop(rng):
    x, y = toy_data(rng)
    trainer = fd.Trainer(toy_net(), fd.SGD(0.05))
    snapshots = []
    losses = iter([1.0, 0.5, 0.7])
    orig = trainer._evaluate

    def scripted(*args):
        orig(*args)
        snapshots.append(trainer.net.get_weights())
        return next(losses), 0.5

    trainer._evaluate = scripted
    history = trainer.fit(x, y, x, y, epochs=3, eval_every=1, verbose=0, patience=5)
    assert not history.stopped_early and history.best_epoch == 2
    assert same_weights(trainer.net.get_weights(), snapshots[1])


def test_learning_rate_decays_between_epochs_only(rng):
    x, y = toy_data(rng)
    opt = fd.SGD(0.1, final_lr=0.001, decay_type="linear")
    fd.Trainer(toy_net(), opt).fit(x, y, epochs=2, verbose=0, early_stopping=False)
    assert opt.lr == pytest.approx(0.001)
