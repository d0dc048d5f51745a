"""float64 central-difference gradient checks of every core operation, layer and loss."""

import numpy as np
import pytest
from toy_nets import toy_net

import fastdl as fd
from fastdl.testing import GradcheckError, gradcheck

ACTIVATIONS = {
    "linear": fd.Linear,
    "sigmoid": fd.Sigmoid,
    "tanh": fd.Tanh,
    "relu": fd.ReLU,
    "leaky_relu": lambda: fd.LeakyReLU(0.1),
}
# (N, D) input shapes: batch of 1, a single feature, and an ordinary case.
SHAPES = {"batch1": (1, 4), "feature1": (5, 1), "ordinary": (6, 3)}


def away_from_kinks(x: np.ndarray) -> np.ndarray:
    """Move inputs away from 0, where ReLU-like derivatives jump (central differences fail)."""
    return np.where(np.abs(x) < 1e-2, 0.5, x)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("act", ACTIVATIONS.values(), ids=ACTIVATIONS.keys())
def test_activation_ops(act, shape, rng):
    gradcheck(act(), away_from_kinks(rng.standard_normal(shape)))


@pytest.mark.parametrize("shape", [(1, 4), (5, 1), (4, 3, 2)], ids=["batch1", "feature1", "3d"])
def test_weight_multiply(shape, rng):
    op = fd.WeightMultiply(rng.standard_normal((shape[-1], 3)))
    report = gradcheck(op, rng.standard_normal(shape))
    assert set(report) == {"input", "param[0]"}


@pytest.mark.parametrize("shape", [(1, 4), (5, 1), (4, 3, 2)], ids=["batch1", "feature1", "3d"])
def test_bias_add(shape, rng):
    gradcheck(fd.BiasAdd(rng.standard_normal(shape[-1])), rng.standard_normal(shape))


@pytest.mark.parametrize("keep", [1.0, 0.7, 0.2])
def test_dropout_op(keep, rng):
    op = fd.Dropout(keep, rng=np.random.default_rng(3))
    gradcheck(op, rng.standard_normal((4, 5)))


def test_flatten_op(rng):
    gradcheck(fd.ops.Flatten(), rng.standard_normal((2, 3, 4, 5)))


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("act", ACTIVATIONS.values(), ids=ACTIVATIONS.keys())
@pytest.mark.parametrize("init", ["glorot", "he", "standard"])
def test_dense_layer(act, shape, init, rng):
    layer = fd.Dense(neurons=3, activation=act(), weight_init=init)
    layer.forward(rng.standard_normal(shape))  # set up, then keep pre-activations off the kinks
    w, b = layer.params()
    b[...] = 0.3
    report = gradcheck(layer, rng.standard_normal(shape) * 0.5)
    assert set(report) == {"input", "param[0]", "param[1]"}


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_dense_layer_with_dropout(keep, rng):
    gradcheck(fd.Dense(4, fd.Tanh(), dropout=keep), rng.standard_normal((5, 3)))


def test_dense_layer_on_sequences(rng):
    gradcheck(fd.Dense(4, fd.Tanh()), rng.standard_normal((2, 3, 5)))


def test_flatten_layer(rng):
    gradcheck(fd.Flatten(), rng.standard_normal((2, 3, 2, 2)))


@pytest.mark.parametrize("shape", [(1, 1), (5, 1), (4, 3)], ids=["batch1", "feature1", "ordinary"])
def test_mean_squared_error(shape, rng):
    gradcheck(fd.MeanSquaredError(), rng.standard_normal(shape), rng.standard_normal(shape))


@pytest.mark.parametrize(
    "shape", [(1, 3), (6, 4), (2, 5, 3)], ids=["batch1", "ordinary", "sequence"]
)
@pytest.mark.parametrize("labels", ["integer", "one_hot"])
def test_softmax_cross_entropy(shape, labels, rng):
    k = shape[-1]
    ids = rng.integers(0, k, size=shape[:-1])
    target = ids if labels == "integer" else np.eye(k)[ids]
    gradcheck(fd.SoftmaxCrossEntropy(), rng.standard_normal(shape) * 3, target)


def test_softmax_cross_entropy_value_matches_definition(rng):
    """The reported number is the mean of -log softmax[label] (the book's is not)."""
    z = rng.standard_normal((7, 4))
    y = rng.integers(0, 4, size=7)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(p[np.arange(7), y]))
    assert fd.SoftmaxCrossEntropy().forward(z, y) == pytest.approx(expected, rel=1e-12)


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    z = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    loss = fd.SoftmaxCrossEntropy()
    assert loss.forward(z, np.array([0])) == pytest.approx(0.0, abs=1e-6)
    assert loss.forward(z, np.array([2])) == pytest.approx(2000.0, rel=1e-6)
    assert np.all(np.isfinite(loss.backward()))


@pytest.mark.parametrize("act", ACTIVATIONS.values(), ids=ACTIVATIONS.keys())
def test_whole_network(act, rng):
    net = fd.NeuralNetwork(
        [fd.Dense(5, act(), dropout=0.8), fd.Dense(3, fd.Linear())],
        fd.SoftmaxCrossEntropy(),
        seed=0,
        dtype=np.float64,
    )
    x = rng.standard_normal((4, 3))
    net.forward(x)
    for layer in net.layers:
        layer.params()[1][...] = 0.2  # biases off the ReLU kink
    report = gradcheck(net, x, rng.integers(0, 3, size=4))
    assert len(report) == 5


def test_gradcheck_catches_a_wrong_gradient(rng):
    """The checker can fail: a Tanh whose backward forgets the derivative is caught."""

    class WrongTanh(fd.Tanh):
        def _input_grad(self, output_grad):
            return output_grad

    with pytest.raises(GradcheckError, match="WrongTanh input"):
        gradcheck(WrongTanh(), rng.standard_normal((3, 4)))


def test_gradcheck_catches_a_wrong_param_gradient(rng):
    class WrongBias(fd.BiasAdd):
        def _param_grad(self, output_grad):
            return output_grad.sum(axis=0) * 0.5

    with pytest.raises(GradcheckError, match=r"param\[0\]"):
        gradcheck(WrongBias(rng.standard_normal(4)), rng.standard_normal((3, 4)))


def test_soft_labels_not_summing_exactly_to_one(rng):
    target = np.full((3, 4), 0.2498)  # rows sum to 0.9992, inside the accepted tolerance
    gradcheck(fd.SoftmaxCrossEntropy(), rng.standard_normal((3, 4)), target)


def test_gradcheck_leaves_the_skip_flag_as_it_was(rng):
    net = toy_net()
    net.forward(np.zeros((2, 4), dtype=np.float32))
    layer = fd.Dense(3)
    layer.set_skip_input_grad(True)
    gradcheck(layer, rng.standard_normal((2, 4)))
    assert layer.skip_input_grad and layer.operations[0].skip_input_grad


def test_gradcheck_of_a_standalone_integer_input_layer(rng):
    gradcheck(fd.Embedding(7, 3), rng.integers(0, 7, size=(2, 5)))
