"""Regression tests for defects found in review: divergence at the end of fit, checks before
arithmetic, restoring best weights, decay count, float32 norm clipping, soft labels, gradcheck
leaving objects as given."""

import numpy as np
import pytest
from scripted_losses import NaNOnCall

import fastdl as fd
from fastdl.testing import gradcheck


def data(rng, n=64):
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def make_net(seed=0, dropout=1.0):
    return fd.NeuralNetwork(
        [fd.Dense(8, fd.Tanh(), dropout=dropout), fd.Dense(2)], fd.SoftmaxCrossEntropy(), seed=seed
    )


def initial_weights(seed=0):
    net = make_net(seed)
    net.forward(np.zeros((1, 4), dtype=np.float32))
    return net.get_weights()


def same(a, b):
    return all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


@pytest.mark.parametrize("with_test_data", [True, False])
@pytest.mark.parametrize("early_stopping", [True, False])
def test_divergence_in_the_last_update_is_reported(with_test_data, early_stopping, rng):
    x, y = data(rng)
    net = make_net()
    extra = (x, y) if with_test_data else ()
    with pytest.raises(fd.TrainingDivergedError, match="epoch 1"):
        fd.Trainer(net, fd.SGD(1e300)).fit(
            x, y, *extra, epochs=1, batch_size=len(x), verbose=0, early_stopping=early_stopping
        )
    assert same(net.get_weights(), initial_weights())


def test_a_nan_loss_restores_the_initial_weights(rng):
    x, y = data(rng)
    net = fd.NeuralNetwork([fd.Dense(8, fd.Tanh()), fd.Dense(2)], NaNOnCall(1 + 5), seed=0)
    # call 1 is fit's checking pass on one example; call 6 is the 5th training batch
    with pytest.raises(fd.TrainingDivergedError, match=r"loss is nan at epoch 1, batch 5 "):
        fd.Trainer(net, fd.SGD(0.01)).fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert same(net.get_weights(), initial_weights())


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("x_features", r"Dense: expected 4 input features"),
        ("y_shape", r"integer labels must have shape \(1,\)"),
        ("y_range", r"y_test labels must be in \[0, 2\)"),
    ],
)
def test_bad_test_data_is_refused_before_any_update(bad, match, rng):
    x, y = data(rng)
    x_test, y_test = x.copy(), y.copy()
    if bad == "x_features":
        x_test = x_test[:, :3]
    elif bad == "y_shape":
        y_test = y_test.reshape(-1, 1)
    else:
        y_test[-1] = 2
    trainer = fd.Trainer(make_net(), fd.SGD(0.1))
    with pytest.raises(ValueError, match=match):
        trainer.fit(x, y, x_test, y_test, epochs=1, verbose=0)
    assert trainer.optim.iterations == 0


def test_rejected_batch_leaves_the_random_stream_untouched(rng):
    x, y = data(rng, 16)
    bad = y.copy()
    bad[0] = 7
    a, b = make_net(dropout=0.5), make_net(dropout=0.5)
    with pytest.raises(ValueError, match="labels must be in"):
        a.train_batch(x, bad)
    assert a.train_batch(x, y) == b.train_batch(x, y)


def test_ops_check_their_input_on_the_forward_pass():
    with pytest.raises(
        ValueError, match=r"BiasAdd: expected input \(\.\.\., 3\) for B \(3,\), got \(4, 1\)"
    ):
        fd.BiasAdd(np.zeros(3)).forward(np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"WeightMultiply: expected input \(\.\.\., 5\)"):
        fd.WeightMultiply(np.zeros((5, 2))).forward(np.ones((4, 3)))


def test_early_stopping_ends_on_the_best_weights_even_without_a_stop(rng):
    x, y = data(rng)
    trainer = fd.Trainer(make_net(), fd.SGD(0.05))
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
    assert same(trainer.net.get_weights(), snapshots[1])


def test_learning_rate_decays_between_epochs_only(rng):
    x, y = data(rng)
    opt = fd.SGD(0.1, final_lr=0.001, decay_type="linear")
    fd.Trainer(make_net(), opt).fit(x, y, epochs=2, verbose=0, early_stopping=False)
    assert opt.lr == pytest.approx(0.001)


def test_norm_clipping_survives_float32_overflow():
    class Net:
        def __init__(self):
            self.p = [np.ones(4, dtype=np.float32)]
            self.g = [np.full(4, 2e20, dtype=np.float32)]

        def params(self):
            return self.p

        def param_grads(self):
            return self.g

    net = Net()
    opt = fd.SGD(0.05, clip_norm=1.0)
    opt.bind(net)
    opt.step()
    np.testing.assert_allclose(net.p[0], 1.0 - 0.05 * 0.5, rtol=1e-5)  # unit-norm step


def test_soft_labels_not_summing_exactly_to_one(rng):
    target = np.full((3, 4), 0.2498)  # rows sum to 0.9992, inside the accepted tolerance
    gradcheck(fd.SoftmaxCrossEntropy(), rng.standard_normal((3, 4)), target)


def test_gradcheck_leaves_the_skip_flag_as_it_was(rng):
    net = make_net()
    net.forward(np.zeros((2, 4), dtype=np.float32))
    layer = fd.Dense(3)
    layer.set_skip_input_grad(True)
    gradcheck(layer, rng.standard_normal((2, 4)))
    assert layer.skip_input_grad and layer.operations[0].skip_input_grad


def test_gradcheck_of_a_standalone_integer_input_layer(rng):
    gradcheck(fd.Embedding(7, 3), rng.integers(0, 7, size=(2, 5)))
