"""MaxPool2D: float64 gradient checks over a grid, agreement with the naive oracle, errors."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest

from fastdl import config
from fastdl.layers.conv import Conv2D
from fastdl.layers.dense import Dense
from fastdl.layers.flatten import Flatten
from fastdl.layers.pool import MaxPool2D
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.ops.activations import ReLU
from fastdl.testing import gradcheck

IMPLS = [True] if config.PURE_AT_IMPORT else [True, False]
IMPL_IDS = ["numpy"] if config.PURE_AT_IMPORT else ["numpy", "numba"]

# (id, input shape NCHW, size, stride)
GRID = [
    ("batch1-2x2", (1, 2, 4, 4), 2, None),
    ("odd-nonsquare", (2, 3, 5, 7), 2, None),
    ("overlap-3x3-s2", (2, 2, 7, 6), 3, 2),
    ("overlap-2x2-s1", (1, 2, 4, 5), 2, 1),
    ("stride3>size2", (2, 2, 8, 7), 2, 3),
    ("1x1", (2, 2, 3, 3), 1, None),
]
IDS = [g[0] for g in GRID]


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("grid", GRID, ids=IDS)
def test_maxpool_gradcheck_and_naive(grid, pure):
    _, shape, size, stride = grid
    x = np.random.default_rng(0).standard_normal(shape)
    layer = MaxPool2D(size, stride)
    with config.use_pure(pure):
        y = layer.forward(x)
        gradcheck(layer, x, atol=1e-6, rtol=1e-5)
    y_e, _ = naive.maxpool(x, size, stride or size)
    np.testing.assert_array_equal(y, y_e)


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
def test_conv_relu_pool_network_gradcheck(pure):
    """Conv2D(ReLU) → MaxPool2D → Flatten → Dense, the reference CNN's shape, end to end."""
    x = np.random.default_rng(1).standard_normal((3, 2, 8, 7))
    y = np.array([0, 2, 1])
    net = NeuralNetwork(
        [Conv2D(3, 3, padding=0, activation=ReLU()), MaxPool2D(2), Flatten(), Dense(3)],
        loss=SoftmaxCrossEntropy(),
        seed=0,
        dtype=np.float64,
    )
    with config.use_pure(pure):
        net.forward(x)
        net.layers[0].operations[0].B[:] = 0.3  # away from ReLU's kink
        gradcheck(net, x, y, atol=1e-6, rtol=1e-5)


def test_dropout_after_pooling():
    x = np.random.default_rng(2).standard_normal((4, 3, 8, 8)).astype(np.float32)
    layer = MaxPool2D(2, dropout=0.75)
    y = layer.forward(x)
    assert 0.5 < np.mean(y != 0) < 0.95
    np.testing.assert_array_equal(layer.forward(x, inference=True), MaxPool2D(2).forward(x))


@pytest.mark.parametrize(
    "x_shape, message",
    [((1, 2, 1, 4), "larger than the input image"), ((2, 4, 4), "expected NCHW input")],
    ids=["window-too-large", "3-D"],
)
def test_clear_errors(x_shape, message):
    with pytest.raises(ValueError, match=f"MaxPool2D.*{message}"):
        MaxPool2D(2).forward(np.zeros(x_shape, dtype=np.float32))


@pytest.mark.parametrize(
    "kwargs", [{"size": 0}, {"size": 2, "stride": 0}, {"size": 2, "dropout": 1.5}]
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="MaxPool2D"):
        MaxPool2D(**kwargs)


def test_output_is_c_contiguous_nchw_so_flatten_is_free():
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 6)).astype(np.float32)
    h = Conv2D(4, 3, activation=ReLU()).forward(x)  # NCHW view of channels-last memory
    y = MaxPool2D(2).forward(h)
    assert y.flags.c_contiguous
    flat = Flatten().forward(y)
    assert np.shares_memory(flat, y)
