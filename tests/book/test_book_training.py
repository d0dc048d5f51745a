"""fastdl.book's Trainer, optimizers, utilities and data helpers: the book's loop, prints,
shuffling and decay; clear errors; nothing trained lost."""

import math

import numpy as np
import pytest

import fastdl as fd
from fastdl.book import datasets
from fastdl.book.activations import Linear, Sigmoid, Tanh
from fastdl.book.layers import Dense
from fastdl.book.losses import MeanSquaredError, SoftmaxCrossEntropy
from fastdl.book.network import NeuralNetwork
from fastdl.book.optimizers import SGD, AdaGrad, RegularizedSGD, SGDMomentum
from fastdl.book.train import Trainer
from fastdl.book.utils import np_utils


def regression(n=50, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    return x, x @ rng.normal(size=(d, 1))


def classification(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    return x, np.eye(3)[labels]


def test_fit_prints_the_books_lines_and_returns_a_history(capsys):
    x, y = regression()
    net = NeuralNetwork([Dense(5, Sigmoid()), Dense(1, Linear())], MeanSquaredError(), seed=3)
    history = Trainer(net, SGD(lr=0.01)).fit(x, y, x, y, epochs=6, eval_every=2, seed=4)
    out = capsys.readouterr().out.splitlines()
    assert out == [f"Validation loss after {e} epochs is {v:.3f}"
                   for e, v in zip(history.epoch, history.val_loss, strict=True)]  # fmt: skip
    assert history.epoch == [2, 4, 6] and history.best_epoch == 6
    assert history.val_loss[-1] == pytest.approx(net.loss.forward(net.forward(x), y))


def test_fit_shuffles_with_the_global_generator_as_the_book():
    """np.random.seed(seed), then one np.random.permutation per epoch: the batches the
    network sees are those rows, in that order. The first batch sets the Dense layer up,
    which reseeds the generator with the network's seed and draws its weights, as the
    book's does, so the second epoch's permutation comes after those draws."""
    x, y = regression(n=10)
    net = NeuralNetwork([Dense(1)], MeanSquaredError(), seed=1)
    seen = []
    original = net.train_batch
    net.train_batch = lambda xb, yb, **kw: (seen.append(xb.copy()), original(xb, yb))[1]
    Trainer(net, SGD(lr=1e-3)).fit(x, y, x, y, epochs=2, eval_every=2, seed=9, batch_size=4)
    np.random.seed(9)
    order1 = np.random.permutation(10)
    x1 = x[order1]
    np.random.seed(1)  # Dense._setup_layer on the first batch
    np.random.normal(size=(4, 1)), np.random.normal(size=(1, 1))
    x2 = x1[np.random.permutation(10)]  # the book permutes the already permuted data
    expected = [x1[0:4], x1[4:8], x1[8:10], x2[0:4], x2[4:8], x2[8:10]]
    assert len(seen) == 6
    for a, b in zip(seen, expected, strict=True):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_restores_the_best_weights_into_the_network(capsys):
    x, y = classification()
    net = NeuralNetwork([Dense(8, Tanh(), weight_init="glorot"), Dense(3)], SoftmaxCrossEntropy(),
                        seed=0)  # fmt: skip
    # a rate far too high: the loss soon goes up, and the run stops there
    trainer = Trainer(net, SGDMomentum(lr=3.0, momentum=0.9))
    history = trainer.fit(x, y, x, y, epochs=40, eval_every=1, seed=0, batch_size=10)
    assert history.stopped_early and trainer.net is net
    out = capsys.readouterr().out
    best = history.best_epoch
    assert f"\nLoss increased after epoch {best + 1}, final loss was " in out
    assert f"using the model from epoch {best}\n" in out
    assert net.loss.forward(net.forward(x, inference=True), y) == pytest.approx(
        min(history.val_loss), rel=1e-12
    )  # the network holds the best evaluation's weights


def test_restart_draws_the_same_initial_weights_and_resets_the_optimizer():
    x, y = regression()
    net = NeuralNetwork([Dense(4, Tanh()), Dense(1)], MeanSquaredError(), seed=8)
    optim = SGDMomentum(0.01, momentum=0.9, final_lr=0.001, decay_type="exponential")
    trainer = Trainer(net, optim)
    trainer.fit(x, y, x, y, epochs=3, eval_every=3, seed=2)
    first = [p.copy() for p in net.params()]
    lr_after = optim.lr
    trainer.fit(x, y, x, y, epochs=3, eval_every=3, seed=2)  # restart=True: the same run again
    for a, b in zip(first, net.params(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert optim.lr == lr_after
    trainer.fit(x, y, x, y, epochs=1, eval_every=1, seed=2, restart=False)  # continues
    assert any(not np.array_equal(a, b) for a, b in zip(first, net.params(), strict=True))


def test_learning_rate_decay_is_the_books():
    x, y = regression()
    schedules = [("linear", [0.2, 0.15, 0.1, 0.05]),
                 ("exponential", [0.2, 0.2 * 0.25 ** (1 / 3), 0.2 * 0.25 ** (2 / 3), 0.05])]  # fmt: skip
    for decay, expected in schedules:
        net = NeuralNetwork([Dense(1)], MeanSquaredError(), seed=1)
        optim = SGDMomentum(0.2, momentum=0.0, final_lr=0.05, decay_type=decay)
        rates = []

        def record(xb, yb, original=net.train_batch, optim=optim, rates=rates, **kw):
            rates.append(optim.lr)
            return original(xb, yb)

        net.train_batch = record
        Trainer(net, optim).fit(x, y, x, y, epochs=4, eval_every=4, seed=0, batch_size=50)
        np.testing.assert_allclose(rates, expected, rtol=1e-12)


def test_conv_testing_prints_batch_losses_and_accuracies(capsys):
    x, y = classification(n=1300)
    net = NeuralNetwork([Dense(6, Tanh(), weight_init="glorot"), Dense(3)], SoftmaxCrossEntropy())
    Trainer(net, SGD(0.1)).fit(x, y, x[:50], y[:50], epochs=1, eval_every=1, batch_size=10,
                               conv_testing=True)  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    batch_lines = [line for line in lines if line.startswith("batch ")]
    acc_lines = [line for line in lines if line.startswith("Validation accuracy after")]
    assert [int(line.split()[1]) for line in batch_lines] == list(range(0, 130, 10))
    assert [line.split()[3] for line in acc_lines] == ["100"]
    assert acc_lines[0].endswith("%") and 0 <= float(acc_lines[0].split()[-1][:-1]) <= 100


def test_bad_input_is_refused_before_training():
    """Refused before any training arithmetic, naming the data; the network stays unset and
    NumPy's global generator where it was."""
    x, y = regression()
    net = NeuralNetwork([Dense(3), Dense(1)], MeanSquaredError(), seed=0)
    trainer = Trainer(net, SGD())
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    with pytest.raises(ValueError, match="X_train has 50 rows and y_train 49"):
        trainer.fit(x, y[:-1], x, y)
    with pytest.raises(ValueError, match="Trainer.fit: epochs"):
        trainer.fit(x, y, x, y, epochs=0)
    with pytest.raises(TypeError, match="X_test and y_test must be numpy arrays"):
        trainer.fit(x, y, x.tolist(), y)
    with pytest.raises(ValueError, match=r"Trainer.fit: X_test \(50, 4\), y_test \(50, 2\): "
                                         r"MeanSquaredError: target"):  # fmt: skip
        trainer.fit(x, y, x, np.zeros((50, 2)))
    assert net.params() == [] and all(layer.first for layer in net.layers)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    with pytest.raises(ValueError, match="features and target must have the same number of rows"):
        next(trainer.generate_batches(x, y[:3]))


def test_conv_testing_takes_integer_labels(capsys):
    x, y = classification(n=1010)
    net = NeuralNetwork([Dense(6, Tanh(), weight_init="glorot"), Dense(3)], SoftmaxCrossEntropy())
    Trainer(net, SGD(0.1)).fit(x, y.argmax(axis=1), x[:40], y[:40].argmax(axis=1), epochs=1,
                               eval_every=1, batch_size=10, conv_testing=True)  # fmt: skip
    assert "Validation accuracy after 100 batches is" in capsys.readouterr().out


def test_book_style_optimizers():
    """Chapter 3's SGD (its own step()) and lincoln's _update_rule(**kwargs) subclasses."""
    from fastdl.book.optimizers import Optimizer

    class Chapter3SGD(Optimizer):
        def __init__(self, lr=0.01):
            super().__init__(lr)

        def step(self):
            for param, param_grad in zip(self.net.params(), self.net.param_grads(), strict=True):
                param -= self.lr * param_grad

    class LincolnSGD(Optimizer):
        def _update_rule(self, **kwargs):
            kwargs["param"] -= self.lr * kwargs["grad"]

    x, y = regression()
    nets = []
    for optim in (Chapter3SGD(0.01), LincolnSGD(0.01), SGD(0.01)):
        net = NeuralNetwork([Dense(3, Tanh()), Dense(1)], MeanSquaredError(), seed=2)
        Trainer(net, optim).fit(x, y, x, y, epochs=2, eval_every=2, seed=0)
        nets.append(net)
    for other in nets[1:]:
        for a, b in zip(nets[0].params(), other.params(), strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(NotImplementedError, match="must implement _update_rule or step"):
        net = NeuralNetwork([Dense(1)], MeanSquaredError())
        Trainer(net, Optimizer(0.1)).fit(x, y, x, y, epochs=1, eval_every=1)


def test_divergence_without_early_stopping_restores_the_best_weights():
    x, y = regression()
    y = y * 1e6
    net = NeuralNetwork([Dense(8, Linear()), Dense(1)], MeanSquaredError(), seed=0)
    with pytest.raises(fd.TrainingDivergedError, match="validation loss is (nan|inf)"):
        Trainer(net, SGD(lr=0.5)).fit(x, y, x, y, epochs=30, eval_every=1, early_stopping=False)
    assert all(np.isfinite(p).all() for p in net.params())


def test_optimizer_signatures_and_updates():
    p, g = np.array([1.0, -2.0, 0.5]), np.array([3.0, -0.5, 10.0])

    def one_step(optim, steps=1):
        net = NeuralNetwork([Dense(1)], seed=0)
        net.forward(np.zeros((1, 3)))
        net.params()[0][...] = p.reshape(3, 1)
        net.layers[0].operations[0]._param_grads = [g.reshape(3, 1)]
        net.layers[0].operations[1]._param_grads = [np.zeros(1)]
        optim.bind(net)
        for _ in range(steps):
            optim.step()
        return net.params()[0].ravel()

    np.testing.assert_allclose(one_step(SGD(0.1)), p - 0.1 * g)
    np.testing.assert_allclose(
        one_step(SGD(0.1, gradient_clipping=True)), p - 0.1 * np.clip(g, -2, 2)
    )
    v = 0.1 * g
    np.testing.assert_allclose(one_step(SGDMomentum(0.1, momentum=0.5), 2), p - v - (0.5 * v + v))
    s = g * g
    np.testing.assert_allclose(one_step(AdaGrad(0.1)), p - 0.1 * g / (np.sqrt(s) + 1e-7))
    np.testing.assert_allclose(one_step(RegularizedSGD(0.1, alpha=0.2)), p - (0.1 * g + 0.2 * p))
    assert SGD(0.1).final_lr is None  # the book's final_lr=0: no decay
    with pytest.raises(ValueError, match="decay needs final_lr > 0 and decay_type"):
        SGDMomentum(0.1, final_lr=0.05)
    with pytest.raises(TypeError, match="gradient_clipping must be True or False"):
        AdaGrad(gradient_clipping=1)
    with pytest.raises(ValueError, match=r"RegularizedSGD: alpha must be a number in \[0, 1\)"):
        RegularizedSGD(alpha=1.5)


def test_np_utils():
    a = np.arange(3.0)
    assert np_utils.to_2d(a).shape == (3, 1) and np_utils.to_2d_np(a, "row").shape == (1, 3)
    with pytest.raises(ValueError, match="to_2d: expected a 1-D array"):
        np_utils.to_2d(np.zeros((2, 2)))
    np.testing.assert_array_equal(np_utils.normalize(np.array([[0.25]])), [[0.25, 0.75]])
    x, y = np.arange(10).reshape(5, 2), np.arange(5)
    np.random.seed(3)
    px, py = np_utils.permute_data(x, y)
    np.random.seed(3)
    perm = np.random.permutation(5)
    np.testing.assert_array_equal(px, x[perm])
    np.testing.assert_array_equal(py, y[perm])
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, 0.0]])
    sm = np_utils.softmax(z, axis=1)
    np.testing.assert_allclose(sm.sum(axis=1), 1.0)
    np.testing.assert_allclose(sm[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
    assert math.isclose(np_utils.mae(np.array([1.0, 3.0]), np.array([2.0, 1.0])), 1.5)
    assert math.isclose(np_utils.rmse(np.array([1.0, 3.0]), np.array([2.0, 1.0])), math.sqrt(2.5))
    bx, by = np_utils.generate_batch(np.zeros((5, 2)), np.zeros((5, 1)), start=3, batch_size=4)
    assert bx.shape == (2, 2) and by.shape == (2, 1)
    with pytest.raises(AssertionError, match="should have the same shape"):
        np_utils.assert_same_shape(np.zeros(2), np.zeros(3))
    with pytest.raises(AssertionError, match="expected to have dimension 2"):
        np_utils.assert_dim(np.zeros(2), 2)


def test_standard_scaler_and_split():
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, size=(20, 3))
    x[:, 2] = 5.0  # a constant column is divided by 1
    scaled = datasets.StandardScaler().fit_transform(x)
    np.testing.assert_allclose(scaled[:, :2].mean(axis=0), 0, atol=1e-14)
    np.testing.assert_allclose(scaled[:, :2].std(axis=0), 1)
    np.testing.assert_array_equal(scaled[:, 2], 0)
    y = np.arange(20)
    x_tr, x_te, y_tr, y_te = datasets.train_test_split(x, y, test_size=0.3, random_state=5)
    perm = np.random.RandomState(5).permutation(20)
    np.testing.assert_array_equal(y_te, perm[:6])
    np.testing.assert_array_equal(y_tr, perm[6:])
    np.testing.assert_array_equal(x_te, x[perm[:6]])
    with pytest.raises(ValueError, match="array 1 has 19 rows"):
        datasets.train_test_split(x, y[:-1], test_size=0.3)
    with pytest.raises(ValueError, match="test_size must be a float in"):
        datasets.train_test_split(x, test_size=3)
    with pytest.raises(ValueError, match="StandardScaler.fit: expected a 2-D numeric array"):
        datasets.StandardScaler().fit(np.zeros(3))


def test_chapter1_functions_and_the_chain_rule():
    from fastdl.book import foundations as f

    x = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(f.deriv(f.square, x), 2 * x, atol=1e-9)
    np.testing.assert_allclose(f.chain_length_2([f.square, f.sigmoid], x), f.sigmoid(x * x))
    np.testing.assert_allclose(f.chain_length_3([f.leaky_relu, f.square, f.sigmoid], x),
                               f.sigmoid(np.maximum(0.2 * x, x) ** 2))  # fmt: skip
    s = f.sigmoid(x * x)  # d/dx sigmoid(x²) = sigmoid'(x²)·2x, analytically
    np.testing.assert_allclose(f.chain_deriv_2([f.square, f.sigmoid], x), s * (1 - s) * 2 * x,
                               atol=1e-6)  # fmt: skip
    lr = np.maximum(0.2 * x, x)
    s3 = f.sigmoid(lr**2)
    slope = np.where(x > 0, 1.0, 0.2)
    keep = np.abs(x) > 0.01  # the central difference straddles the kink at 0
    np.testing.assert_allclose(f.chain_deriv_3([f.leaky_relu, f.square, f.sigmoid], x)[keep],
                               (s3 * (1 - s3) * 2 * lr * slope)[keep], atol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="chain_deriv_2: expected a chain of 2 functions"):
        f.chain_deriv_2([f.square], x)
    with pytest.raises(ValueError, match="chain_deriv_3: expected a 1-D array"):
        f.chain_deriv_3([f.square] * 3, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="deriv: diff must be positive"):
        f.deriv(f.square, x, diff=0)
