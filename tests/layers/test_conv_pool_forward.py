"""In an inference pass the network runs a Conv2D with ReLU and the MaxPool2D after it as one
(``fastdl.layers.pool.forward_through_pool``): the same outputs as the two layers' own
forward passes, every input and output set as they set them, and only where it applies."""

import numpy as np
import pytest

import fastdl as fd
import fastdl.network
from fastdl import config
from fastdl.layers import pool as pool_layers
from fastdl.layers.pool import pools_in_one_pass

IMPLS = [True] if config.PURE_AT_IMPORT else [True, False]  # use_pure(flag)
IMPL_IDS = ["numpy"] if config.PURE_AT_IMPORT else ["numpy", "numba"]


def reference_like(pool_dropout=1.0, channels=16):
    """conv2 with 16 channels in and out: Winograd's path, which pools group by group."""
    return fd.NeuralNetwork(
        [
            fd.Conv2D(channels, 3, activation=fd.ReLU()),
            fd.Conv2D(channels, 3, activation=fd.ReLU()),
            fd.MaxPool2D(2, dropout=pool_dropout),
            fd.Flatten(),
            fd.Dense(3),
        ],
        fd.SoftmaxCrossEntropy(),
        seed=3,
    )


def never_in_one_pass(monkeypatch):
    monkeypatch.setattr(fastdl.network, "pools_in_one_pass", lambda before, layer: False)


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("pool_dropout", [1.0, 0.6], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("channels", [16, 3], ids=["winograd", "im2col"])
def test_same_outputs_and_attributes_as_the_layers_one_by_one(pure, pool_dropout, channels,
                                                              rng, monkeypatch):  # fmt: skip
    x = rng.standard_normal((5, 2, 11, 10)).astype(np.float32)
    with config.use_pure(pure):
        net = reference_like(pool_dropout, channels)
        net.forward(x, inference=True)  # set up (the layers' own passes)
        conv, pool = net.layers[1], net.layers[2]
        assert pools_in_one_pass(conv, pool)
        out = net.forward(x, inference=True).copy()
        got = [(lay.input_.copy(), lay.output.copy()) for lay in net.layers]
        assert pool.input_ is conv.output and pool.operations[0].input_ is conv.output
        ops = pool.operations
        assert (
            all(b.input_ is a.output for a, b in zip(ops[:-1], ops[1:], strict=True))
            and len(ops) > 0
        )
        assert ops[-1].output is pool.output
        never_in_one_pass(monkeypatch)
        want_out = net.forward(x, inference=True)
        want = [(lay.input_, lay.output) for lay in net.layers]
    np.testing.assert_array_equal(out, want_out)
    for (gi, go), (wi, wo) in zip(got, want, strict=True):
        np.testing.assert_array_equal(gi, wi)
        np.testing.assert_array_equal(go, wo)


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
def test_a_backward_pass_after_it_gets_the_same_gradients(pure, rng, monkeypatch):
    """The pool kept no argmax in the fused pass: ``argmax()`` finds them from its input."""
    x = rng.standard_normal((4, 2, 11, 10)).astype(np.float32)
    grads = []
    for fused in (True, False):
        if not fused:
            never_in_one_pass(monkeypatch)
        with config.use_pure(pure):
            net = reference_like()
            net.forward(x, inference=True)
            out = net.forward(x, inference=True)
            net.backward(np.ones_like(out))
        grads.append([g.copy() for g in net.param_grads()])
    for a, b in zip(*grads, strict=True):
        np.testing.assert_array_equal(a, b)


def test_only_inference_passes_of_set_up_layers_run_in_one_pass(rng, monkeypatch):
    calls = []
    real = pool_layers.forward_through_pool
    monkeypatch.setattr(
        fastdl.network, "forward_through_pool", lambda *a: calls.append(1) or real(*a)
    )
    net = reference_like()
    x = rng.standard_normal((3, 2, 11, 10)).astype(np.float32)
    net.forward(x, inference=True)  # sets the layers up: their own passes
    assert calls == []
    net.forward(x)  # training keeps the pool's argmax: the layers' own passes
    assert calls == []
    net.forward(x, inference=True)
    assert calls == [1]


def test_not_for_a_convolution_without_relu_or_a_subclass():
    plain = fd.NeuralNetwork([fd.Conv2D(4, 3), fd.MaxPool2D(2)], fd.SoftmaxCrossEntropy())
    plain.forward(np.zeros((1, 1, 6, 6), np.float32), inference=True)
    assert not pools_in_one_pass(*plain.layers)

    class MyPool(fd.MaxPool2D):
        def forward(self, x, inference=False):
            return super().forward(x, inference)

    sub = fd.NeuralNetwork(
        [fd.Conv2D(4, 3, activation=fd.ReLU()), MyPool(2)], fd.SoftmaxCrossEntropy()
    )
    sub.forward(np.zeros((1, 1, 6, 6), np.float32), inference=True)
    assert not pools_in_one_pass(*sub.layers)


def test_a_too_small_image_is_refused_before_any_work(rng):
    """A 1 × 1 image ("same" padding: a 1 × 1 output) under a 2 × 2 window."""
    net = reference_like()
    net.forward(rng.standard_normal((2, 2, 11, 10)).astype(np.float32), inference=True)
    conv = net.layers[1].operations[-1]
    kept = conv.input_, conv.output, conv._x, conv._y
    with pytest.raises(ValueError, match="MaxPool2DOp"):
        net.forward(rng.standard_normal((2, 2, 1, 1)).astype(np.float32), inference=True)
    assert all(a is b for a, b in zip(kept, (conv.input_, conv.output, conv._x, conv._y),
                                      strict=True))  # fmt: skip
