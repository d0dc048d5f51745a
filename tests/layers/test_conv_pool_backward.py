"""A Conv2D with ReLU followed by MaxPool2D is differentiated in one pass by the network
(``fastdl.layers.pool.backward_through_pool``): the same gradients as the two layers' own
backward passes, the pool's dense input gradient not made, and only where it applies."""

import numpy as np
import pytest

import fastdl as fd
from fastdl import config
from fastdl.layers.pool import pooled_after
from fastdl.testing import gradcheck

IMPLS = [True] if config.PURE_AT_IMPORT else [True, False]  # use_pure(flag)
IMPL_IDS = ["numpy"] if config.PURE_AT_IMPORT else ["numpy", "numba"]


def net_of(*layers, dtype=np.float32):
    return fd.NeuralNetwork(list(layers), fd.SoftmaxCrossEntropy(), seed=3, dtype=dtype)


def reference_like(dtype=np.float32, pool_dropout=1.0):
    return net_of(
        fd.Conv2D(4, 3, activation=fd.ReLU()),
        fd.Conv2D(6, 3, activation=fd.ReLU()),
        fd.MaxPool2D(2, dropout=pool_dropout),
        fd.Flatten(),
        fd.Dense(3),
        dtype=dtype,
    )


def data(rng, n=5, dtype=np.float32):
    return rng.standard_normal((n, 2, 10, 9)).astype(dtype), rng.integers(0, 3, n)


def layer_by_layer(net, x, y):
    """Forward, loss and each layer's own backward in turn (never fused)."""
    net.loss.forward(net.forward(x), y)
    grad = net.loss.backward()
    for layer in reversed(net.layers):
        grad = layer.backward(grad)
    return [g.copy() for g in net.param_grads()]


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("pool_dropout", [1.0, 0.6], ids=["no-dropout", "dropout"])
def test_same_gradients_as_the_layers_one_by_one(pure, pool_dropout, rng):
    x, y = data(rng)
    net = reference_like(pool_dropout=pool_dropout)
    with config.use_pure(pure):
        net.train_batch(x, y)  # set up
        state = net.rng.bit_generator.state
        net.train_batch(x, y)
        fused = [g.copy() for g in net.param_grads()]
        conv_dx = net.layers[1].input_grad.copy()
        assert pooled_after(net.layers[1], net.layers[2])
        assert net.layers[2].input_grad is None  # the pool's dense gradient was not made
        net.rng.bit_generator.state = state  # the same dropout draws
        apart = layer_by_layer(net, x, y)
    assert net.layers[2].input_grad is not None
    for a, b in zip(fused, apart, strict=True):
        np.testing.assert_array_equal(a, b)  # the same sums, in the same order
    np.testing.assert_array_equal(conv_dx, net.layers[1].input_grad)


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
def test_gradcheck_through_the_fused_pass(pure, rng):
    net = reference_like(dtype=np.float64)
    x, y = data(rng, n=3, dtype=np.float64)
    with config.use_pure(pure):
        net.forward(x)
        net.layers[1].operations[0].B[:] = 0.2  # most units alive: gradients to check
        assert pooled_after(net.layers[1], net.layers[2])
        report = gradcheck(net, x, y)
    assert len(report) == 1 + 2 + 2 + 2  # input; two convolutions, the dense layer


def test_after_layer_sees_every_layer_last_first(rng):
    x, y = data(rng)
    net = reference_like()
    seen = []
    net.train_batch(x, y, after_layer=seen.append)
    assert seen == list(reversed(net.layers))
    assert all(g is not None for g in net.param_grads())


@pytest.mark.parametrize(
    "layers",
    [
        [fd.Conv2D(4, 3, activation=fd.Tanh()), fd.MaxPool2D(2)],  # no ReLU to fuse
        [fd.Conv2D(4, 3, activation=fd.ReLU(), dropout=0.5), fd.MaxPool2D(2)],  # in between
        [fd.Conv2D(4, 3, activation=fd.ReLU()), fd.BatchNorm2D(), fd.MaxPool2D(2)],
        [fd.MaxPool2D(2), fd.MaxPool2D(2)],  # no convolution
    ],
    ids=["tanh", "conv-dropout", "batchnorm-between", "pool-pool"],
)
def test_not_fused_where_something_stands_between(layers, rng):
    x, y = data(rng)
    net = net_of(*layers, fd.Flatten(), fd.Dense(3))
    net.train_batch(x, y)
    pool_at = max(i for i, layer in enumerate(net.layers) if isinstance(layer, fd.MaxPool2D))
    assert not pooled_after(net.layers[pool_at - 1], net.layers[pool_at])
    assert net.layers[pool_at].input_grad is not None


def test_a_first_layer_convolution_skips_its_input_gradient(rng):
    x, y = data(rng)
    net = net_of(fd.Conv2D(4, 3, activation=fd.ReLU()), fd.MaxPool2D(2), fd.Flatten(), fd.Dense(3))
    net.train_batch(x, y)
    assert pooled_after(net.layers[0], net.layers[1])
    assert net.layers[0].input_grad is None and net.layers[1].input_grad is None
    state = [g.copy() for g in net.param_grads()]
    apart = layer_by_layer(net, x, y)
    for a, b in zip(state, apart, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_operation_refuses_a_pool_that_did_not_take_its_output(rng):
    x, y = data(rng)
    net = reference_like()
    net.train_batch(x, y)
    conv, other = net.layers[0].operations[0], net.layers[2].operations[0]
    with pytest.raises(ValueError, match="must have pooled this operation's output"):
        conv.backward_through_pool(other, np.zeros_like(other.output))
    conv2 = net.layers[1].operations[0]
    with pytest.raises(ValueError, match="MaxPool2DOp: output_grad has shape"):
        conv2.backward_through_pool(other, np.zeros((1, 2, 3, 4), np.float32))


def test_the_books_convolution_is_not_fused_and_trains(rng):
    """The book's ``Conv2D`` runs ``Conv2D_Op``, a subclass with its own parameter layout and
    gradients: never taken for the fused pass, its step trains as layer by layer."""
    from fastdl.book.layers import Conv2D as BookConv2D

    x, y = data(rng, dtype=np.float64)
    net = net_of(
        BookConv2D(2, 3, activation=fd.ReLU()), fd.MaxPool2D(2), fd.Flatten(), fd.Dense(3),
        dtype=np.float64,
    )  # fmt: skip
    net.train_batch(x, y)
    assert not pooled_after(net.layers[0], net.layers[1])
    assert net.layers[1].input_grad is not None
    fused = [g.copy() for g in net.param_grads()]
    for a, b in zip(fused, layer_by_layer(net, x, y), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_max_pool_subclass_with_its_own_operations_is_not_fused(rng):
    class DropFirst(fd.MaxPool2D):
        def _setup_layer(self, x):
            super()._setup_layer(x)
            self.operations.insert(0, fd.ops.dropout.Dropout(0.5, rng=self.rng))

    x, y = data(rng)
    net = net_of(fd.Conv2D(4, 3, activation=fd.ReLU()), DropFirst(2), fd.Flatten(), fd.Dense(3))
    net.train_batch(x, y)
    assert not pooled_after(net.layers[0], net.layers[1])
    assert all(g is not None for g in net.param_grads())


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
def test_backward_after_an_inference_pass_finds_the_maxima_again(pure, rng):
    """An inference pass does not keep where the pool's maxima are; a backward pass after
    one (a gradient check in inference mode, an input's saliency) finds them from the
    pool's input, and gets the gradients a training pass gets."""
    x, y = data(rng)
    net = reference_like()
    with config.use_pure(pure):
        net.train_batch(x, y)
        pool_op = net.layers[2].operations[0]
        trained = [g.copy() for g in net.param_grads()]
        want_idx = pool_op.argmax().copy()
        net.loss.forward(net.forward(x, inference=True), y)
        assert pool_op._idx is None
        net.backward(net.loss.backward())
        np.testing.assert_array_equal(pool_op.argmax(), want_idx)
        for a, b in zip(net.param_grads(), trained, strict=True):
            np.testing.assert_array_equal(a, b)
        net.forward(x, inference=True)  # the pool's own backward pass, unfused
        dx = net.layers[2].backward(np.ones_like(net.layers[2].output))
        assert dx.shape == net.layers[1].output.shape and dx.sum() > 0
