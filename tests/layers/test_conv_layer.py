"""Conv2D: float64 gradient checks over a grid, agreement with the naive oracle, errors."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest

from fastdl import config
from fastdl.layers.conv import Conv2D
from fastdl.ops.activations import Linear, ReLU, Tanh
from fastdl.testing import gradcheck

IMPLS = [True] if config.PURE_AT_IMPORT else [True, False]  # use_pure(flag)
IMPL_IDS = ["numpy"] if config.PURE_AT_IMPORT else ["numpy", "numba"]

# (id, input shape NCHW, out_channels, param_size, stride, padding)
GRID = [
    ("batch1-3x3-same", (1, 2, 5, 5), 3, 3, 1, "same"),
    ("1x1", (2, 3, 3, 4), 2, 1, 1, "valid"),
    ("even2x2-same", (2, 2, 4, 5), 3, 2, 1, "same"),
    ("even4x2-nonsquare-valid", (2, 1, 6, 5), 2, (4, 2), 1, "valid"),
    ("stride3>kernel2", (2, 2, 7, 8), 2, 2, 3, 0),
    ("stride2-same", (2, 2, 5, 6), 3, 3, 2, "same"),
    ("pad2-int", (1, 3, 4, 4), 2, 3, 1, 2),
    ("gemm-path-cin5", (2, 5, 4, 4), 3, 3, 1, (1, 0)),
]
IDS = [g[0] for g in GRID]


def make_x(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("activation", [Linear(), ReLU(), Tanh()], ids=["linear", "relu", "tanh"])
@pytest.mark.parametrize("grid", GRID, ids=IDS)
def test_conv2d_gradcheck(grid, activation, pure):
    _, shape, co, k, s, p = grid
    layer = Conv2D(co, k, stride=s, padding=p, activation=activation)
    x = make_x(shape)
    with config.use_pure(pure):
        layer.forward(x)
        # a bias that moves outputs away from ReLU's kink, so differences stay one-sided
        layer.operations[0].B[:] = np.random.default_rng(5).standard_normal(co)
        report = gradcheck(layer, x, atol=1e-6, rtol=1e-5)
    assert set(report) == {"input", "param[0]", "param[1]"}  # x, W, B


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("grid", GRID, ids=IDS)
def test_conv2d_matches_naive_and_keeps_nchw_semantics(grid, pure):
    _, shape, co, k, s, p = grid
    layer = Conv2D(co, k, stride=s, padding=p)
    x = make_x(shape, 1)
    with config.use_pure(pure):
        y = layer.forward(x)
    op = layer.operations[0]
    expected = naive.conv2d(x, op.W, op.B, s, op.pad)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        np.ascontiguousarray(y).reshape(len(y), -1), expected.reshape(len(y), -1), atol=1e-12
    )


def test_same_padding_keeps_the_size_for_odd_and_even_kernels():
    x = make_x((2, 1, 7, 6), dtype=np.float32)
    for k in (1, 2, 3, 4, 5):
        assert Conv2D(3, k).forward(x).shape == (2, 3, 7, 6)
    assert Conv2D(3, 3, stride=2).forward(x).shape == (2, 3, 4, 3)  # ceil(H / S)


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize(
    "view",
    [
        lambda x: x[:, :, ::2, 1::2],
        lambda x: x.transpose(0, 1, 3, 2),
        lambda x: np.asfortranarray(x),
        lambda x: x[::-1],
    ],
    ids=["strided", "transposed", "fortran", "reversed-batch"],
)
def test_non_contiguous_input(view, pure):
    base = make_x((3, 2, 8, 8), 2, np.float32)
    x = view(base)
    layer = Conv2D(4, 3, activation=ReLU())
    with config.use_pure(pure):
        y = layer.forward(x)
        y2 = layer.forward(np.ascontiguousarray(x))
        g = layer.backward(np.ones_like(y))
        g2 = layer.backward(np.ones_like(y2))
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(g, g2)


def test_conv_then_conv_reads_channels_last_without_copy():
    x = make_x((2, 3, 6, 6), 3, np.float32)
    first, second = Conv2D(4, 3, activation=ReLU()), Conv2D(5, 3)
    h = first.forward(x)
    assert h.transpose(0, 2, 3, 1).flags.c_contiguous  # NCHW view of channels-last memory
    second.forward(h)
    assert np.shares_memory(second.operations[0]._x, h)


def test_first_layer_skips_input_gradient_but_computes_weights():
    x = make_x((2, 1, 5, 5))
    layer = Conv2D(2, 3)
    layer.set_skip_input_grad(True)
    y = layer.forward(x)
    assert layer.backward(np.ones_like(y)) is None
    assert layer.param_grads()[0].shape == (2, 1, 3, 3)
    assert layer.param_grads()[1].shape == (2,)


def test_flatten_and_dropout_options():
    x = make_x((2, 3, 5, 5), dtype=np.float32)
    layer = Conv2D(4, 3, dropout=0.5, flatten=True)
    assert layer.forward(x).shape == (2, 4 * 5 * 5)
    y_inf = layer.forward(x, inference=True)
    y_nodrop = Conv2D(4, 3, flatten=True).forward(x)
    np.testing.assert_array_equal(y_inf, y_nodrop)  # same seed 0, same weights


@pytest.mark.parametrize(
    "make_layer, x_shape, message",
    [
        (lambda: Conv2D(2, 5, padding=0), (1, 1, 4, 6), "larger than the padded input"),
        (lambda: Conv2D(2, 3), (1, 1, 4), "expected NCHW input"),
        (lambda: Conv2D(2, 3), (1, 1, 1, 4, 4), "expected NCHW input"),
    ],
    ids=["kernel-too-large", "3-D", "5-D"],
)
def test_clear_errors(make_layer, x_shape, message):
    with pytest.raises(
        ValueError, match=f"Conv2D.*{message}.*{x_shape}".replace("(", r"\(").replace(")", r"\)")
    ):
        make_layer().forward(np.zeros(x_shape, dtype=np.float32))


def test_wrong_channel_count_names_both_shapes():
    layer = Conv2D(2, 3)
    layer.forward(np.zeros((1, 3, 5, 5), dtype=np.float32))
    with pytest.raises(
        ValueError, match=r"Conv2D: expected 3 input channels.*\(1, 2, 5, 5\).*\(2, 3, 3, 3\)"
    ):
        layer.forward(np.zeros((1, 2, 5, 5), dtype=np.float32))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"out_channels": 0, "param_size": 3},
        {"out_channels": 2, "param_size": 0},
        {"out_channels": 2, "param_size": (3, 3, 3)},
        {"out_channels": 2, "param_size": 3, "stride": 0},
        {"out_channels": 2, "param_size": 3, "padding": "full"},
        {"out_channels": 2, "param_size": 3, "padding": -1},
        {"out_channels": 2, "param_size": 3, "dropout": 0.0},
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Conv2D"):
        Conv2D(**kwargs)
