"""Chapter 3's way of extending the library: Operation, ParamOperation, Layer and Loss
subclasses written as the book writes them run in fastdl.book, and train like its own."""

import numpy as np
import pytest

import fastdl as fd
from fastdl.book.base import Operation, ParamOperation
from fastdl.book.layers import Dense, Layer
from fastdl.book.losses import Loss, MeanSquaredError
from fastdl.book.network import NeuralNetwork
from fastdl.book.optimizers import SGD
from fastdl.book.train import Trainer
from fastdl.testing import gradcheck

# -- written in the book's chapter-3 style: _output(self), (1, H) biases, lists of params --


class MyWeightMultiply(ParamOperation):
    def __init__(self, W):
        super().__init__(W)

    def _output(self):
        return np.dot(self.input_, self.param)

    def _input_grad(self, output_grad):
        return np.dot(output_grad, np.transpose(self.param, (1, 0)))

    def _param_grad(self, output_grad):
        return np.dot(np.transpose(self.input_, (1, 0)), output_grad)


class MyBiasAdd(ParamOperation):
    def __init__(self, B):
        assert B.shape[0] == 1
        super().__init__(B)

    def _output(self):
        return self.input_ + self.param

    def _input_grad(self, output_grad):
        return np.ones_like(self.input_) * output_grad

    def _param_grad(self, output_grad):
        param_grad = np.ones_like(self.param) * output_grad
        return np.sum(param_grad, axis=0).reshape(1, param_grad.shape[1])


class MySigmoid(Operation):
    def __init__(self):
        super().__init__()

    def _output(self, inference):  # lincoln's signature, with the inference flag
        return 1.0 / (1.0 + np.exp(-1.0 * self.input_))

    def _input_grad(self, output_grad):
        return self.output * (1.0 - self.output) * output_grad


class MyLinear(Operation):
    def _output(self):
        return self.input_

    def _input_grad(self, output_grad):
        return output_grad


class MyDense(Layer):
    def __init__(self, neurons, activation=None):
        super().__init__(neurons)
        self.activation = activation if activation is not None else MyLinear()

    def _setup_layer(self, input_):
        if self.seed:
            np.random.seed(self.seed)
        self.params = []
        self.params.append(np.random.randn(input_.shape[1], self.neurons))
        self.params.append(np.random.randn(1, self.neurons))
        self.operations = [MyWeightMultiply(self.params[0]), MyBiasAdd(self.params[1]),
                           self.activation]  # fmt: skip


class MyMeanSquaredError(Loss):
    def __init__(self):
        super().__init__()

    def _output(self):
        return np.sum(np.power(self.prediction - self.target, 2)) / self.prediction.shape[0]

    def _input_grad(self):
        return 2.0 * (self.prediction - self.target) / self.prediction.shape[0]


def data(n=40, d=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    return x, (x @ rng.normal(size=(d, 1)) + 0.5)


def test_book_style_network_trains_as_the_librarys_own():
    """The hand-written classes and fastdl.book's Dense draw the same weights and compute
    the same math, so a fit gives the same weights to rounding."""
    x, y = data()
    mine = NeuralNetwork([MyDense(6, MySigmoid()), MyDense(1)], MyMeanSquaredError(), seed=5)
    ours = NeuralNetwork([Dense(6, fd.Sigmoid()), Dense(1)], MeanSquaredError(), seed=5)
    for net in (mine, ours):
        Trainer(net, SGD(lr=0.01)).fit(x, y, x, y, epochs=3, eval_every=3, seed=1, batch_size=8)
    assert [p.shape for p in mine.params()] == [(5, 6), (1, 6), (6, 1), (1, 1)]
    for a, b in zip(mine.params(), ours.params(), strict=True):
        np.testing.assert_allclose(a.ravel(), b.ravel(), rtol=1e-12, atol=1e-14)


def test_book_style_layer_attributes():
    x, y = data()
    layer = MyDense(3, MySigmoid())
    net = NeuralNetwork([layer, MyDense(1)], MyMeanSquaredError(), seed=2)
    assert layer.seed == 2 and layer.neurons == 3 and layer.params == []
    net.train_batch(x, y)
    assert isinstance(layer.params, list) and len(layer.params) == 2
    assert layer.params[1].shape == (1, 3)  # the book's row bias
    assert layer.params() == list(layer.params)  # callable as fastdl reads it
    assert [g.shape for g in layer.param_grads] == [(5, 3), (1, 3)]
    assert layer.operations[1].param_grad.shape == (1, 3)
    layer.params[0][...] = 0.0  # the list holds the arrays the operations compute with
    assert not layer.operations[0].param.any()


def test_book_style_pieces_gradcheck():
    x, y = data(n=6, d=4)
    gradcheck(
        NeuralNetwork([MyDense(3, MySigmoid()), MyDense(1)], MyMeanSquaredError(), seed=3), x, y
    )
    gradcheck(MySigmoid(), x)
    gradcheck(MyBiasAdd(np.ones((1, 4))), x)
    gradcheck(MyMeanSquaredError(), x[:, :1], y)


def test_operation_without_output_hook_says_so():
    class Incomplete(Operation):
        pass

    with pytest.raises(NotImplementedError, match="Incomplete must implement _output"):
        Incomplete().forward(np.ones((2, 2)))

    class NoSetup(Layer):
        pass

    with pytest.raises(NotImplementedError, match="NoSetup must implement _setup_layer"):
        NeuralNetwork([NoSetup(3)]).forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="NoSetup: neurons"):
        NoSetup(0)


def test_float64_weight_in_float32_network_is_blamed_on_its_layer():
    """A hand-written layer that draws float64 weights in a float32 fastdl network: the error
    names that layer and the operation, not the next layer."""
    x, y = data()
    net = fd.NeuralNetwork([MyDense(4, MySigmoid()), fd.Dense(1)], fd.MeanSquaredError(), seed=0)
    with pytest.raises(TypeError, match=r"MyDense: parameter 0 of MyWeightMultiply has dtype "
                                        r"float64, but the layer computes in float32"):  # fmt: skip
        net.train_batch(x.astype(np.float32), y.astype(np.float32))
    assert net.params() == []  # the refused batch left nothing behind


def test_param_grad_can_be_set_as_a_book_backward_does():
    op = MyBiasAdd(np.zeros((1, 2)))
    op.param_grad = np.ones((1, 2))
    np.testing.assert_array_equal(op.param_grad, np.ones((1, 2)))


def test_weights_given_in_init_survive_a_refused_batch():
    """A book-style layer holding given weights from __init__: a batch the loss refuses
    resets the layer, and the next batch sets it up from the same given arrays."""

    class Given(Layer):
        def __init__(self, W, B):
            super().__init__(W.shape[1])
            self.params = [W, B]

        def _setup_layer(self, input_):
            self.operations = [MyWeightMultiply(self.params[0]), MyBiasAdd(self.params[1])]

    x, y = data()
    W, B = np.full((5, 1), 0.5), np.full((1, 1), 0.25)
    net = NeuralNetwork([Given(W, B)], MyMeanSquaredError(), seed=1)
    with pytest.raises(ValueError):
        net.train_batch(x, np.zeros((40, 2)))
    assert [a is b for a, b in zip(net.layers[0].params, [W, B], strict=True)] == [True, True]
    net.train_batch(x, y)
    assert net.params()[0] is W and net.params()[1] is B
    np.testing.assert_allclose(net.forward(x), x @ W + B)
