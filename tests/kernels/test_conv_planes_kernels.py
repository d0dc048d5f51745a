"""Convolutions on planes (:mod:`fastdl.kernels.conv_planes`): the channels-first kernels'
three tiers (naive loops → NumPy twin → numba twin, with ReLU or tanh fused), the planes
path inside the channels-last numba twin against its im2col path, NaN and infinity at the
rows' edges, and the layer that flattens (``Conv2D(flatten=True)``) against the
channels-last layer."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest
from test_conv_kernels import to_hwio as hwio
from test_conv_kernels import to_nhwc as nhwc
from test_conv_kernels import tolerance

import fastdl as fd
from fastdl import config
from fastdl.kernels import conv, conv_first, elementwise
from fastdl.kernels.conv_planes import planes_backward_np, planes_forward_np
from fastdl.layers.conv import Conv2D
from fastdl.ops.conv import Conv2DOp
from fastdl.ops.reshape import Flatten
from fastdl.testing import gradcheck

# (id, N, C_in, H, W, C_out, KH, KW, pad=(PT, PB, PL, PR)); stride 1 throughout
CASES = [
    ("book-5x5-same", 3, 1, 9, 8, 4, 5, 5, (2, 2, 2, 2)),
    ("3x3-valid", 2, 1, 6, 7, 3, 3, 3, (0, 0, 0, 0)),
    ("rgb-3x3-same", 2, 3, 5, 6, 4, 3, 3, (1, 1, 1, 1)),
    ("even-2x4-asym", 2, 2, 6, 7, 3, 2, 4, (0, 1, 2, 1)),
    ("1x1", 2, 4, 3, 5, 2, 1, 1, (0, 0, 0, 0)),
    ("kernel=image", 1, 2, 3, 4, 3, 3, 4, (0, 0, 0, 0)),
    ("one-row-out", 2, 1, 3, 9, 2, 3, 2, (0, 0, 1, 0)),
    ("one-pixel-image", 2, 1, 1, 1, 3, 3, 3, (1, 1, 1, 1)),
]
IDS = [c[0] for c in CASES]
DTYPES = [np.float32, np.float64]
IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb", "nb-par", "st"]
needs_numba = pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twins unavailable")


@pytest.fixture
def kernel(monkeypatch):
    def pick(fn, impl):
        if impl.endswith("-par"):
            monkeypatch.setattr(conv, "SERIAL_MAX_FLOPS", 0)
        return getattr(fn, impl.removesuffix("-par"))

    return pick


def make(case, dtype, seed):
    _, n, c, h, w, co, kh, kw, pad = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((co, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    return x, wt, b, pad


ACTS = ["linear", "relu", "tanh"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_first_forward_matches_naive(case, act, dtype, impl, kernel):
    x, w, b, pad = make(case, dtype, 0)
    want = naive.conv2d(x, w, b, 1, pad)
    if act == "relu":
        want = np.maximum(want, 0)
    elif act == "tanh":
        want = np.tanh(want)
    got = kernel(conv_first.conv2d_first_forward, impl)(
        nhwc(x), hwio(w), b, pad, act == "relu", act == "tanh"
    )
    assert got.dtype == dtype and got.shape == want.shape and got.flags.c_contiguous
    magnitude = naive.conv2d(np.abs(x), np.abs(w), np.abs(b), 1, pad)
    # (tanh's slope is at most 1; float32's rational tanh is up to 4.2e-7 off)
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(dtype, magnitude))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("need_dx", [True, False], ids=["dx", "no-dx"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_first_backward_matches_naive(case, act, dtype, need_dx, impl, kernel):
    x, w, b, pad = make(case, dtype, 1)
    rng = np.random.default_rng(2)
    y = naive.conv2d(x, w, b, 1, pad)
    dy = rng.standard_normal(y.shape)
    if act == "relu":
        dz, y = dy * (y > 0), np.maximum(y, 0)
    elif act == "tanh":
        y = np.tanh(y.astype(dtype)).astype(np.float64)  # the output the kernel is given
        dz = dy * (1 - y * y)
    else:
        dz = dy
    dx_e, dw_e, db_e = naive.conv2d_grads(x, w, dz, 1, pad)
    dx, dw, db = kernel(conv_first.conv2d_first_backward, impl)(
        nhwc(x), hwio(w), y.astype(dtype), dy.astype(dtype), pad, act == "relu", need_dx,
        act == "tanh",
    )  # fmt: skip
    assert dw.dtype == db.dtype == dx.dtype == dtype
    tol = tolerance(dtype, np.abs(dw_e) + 10)
    np.testing.assert_allclose(dw.transpose(3, 2, 0, 1), dw_e, rtol=0, atol=tol)
    np.testing.assert_allclose(db, db_e, rtol=0, atol=tolerance(dtype, np.abs(db_e) + 10))
    if need_dx:
        np.testing.assert_allclose(
            dx.transpose(0, 3, 1, 2), dx_e, rtol=0, atol=tolerance(dtype, np.abs(dx_e) + 10)
        )
    else:
        assert dx.shape == (0,) + nhwc(x).shape[1:]


@needs_numba
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_channels_last_twin_on_planes_agrees_with_its_im2col_path(case, monkeypatch):
    """``conv2d_forward.nb``/``conv2d_backward.nb`` with every stride-1 convolution on planes
    (more channels than the default takes) and with none, in float64."""
    x, w, b, pad = make(case, np.float64, 3)
    x, w = nhwc(x), hwio(w)
    y = conv.conv2d_forward.np(x, w, b, 1, pad, True)
    dy = np.random.default_rng(4).standard_normal(y.shape)
    results = []
    for limit in (1 << 30, -1):  # all on planes, then none
        monkeypatch.setattr(conv, "PLANES_MAX_C_IN", limit)
        results.append((conv.conv2d_forward.nb(x, w, b, 1, pad, True),
                        *conv.conv2d_backward.nb(x, w, y, dy, 1, pad, True, True)))  # fmt: skip
    for on_planes, by_im2col in zip(*results, strict=True):
        np.testing.assert_allclose(on_planes, by_im2col, rtol=1e-12, atol=1e-12)


@needs_numba
def test_planes_take_many_channels_too(monkeypatch):
    """The reference CNN's conv2 shape on planes (32 channels) against the NumPy twin."""
    monkeypatch.setattr(conv, "PLANES_MAX_C_IN", 64)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 8, 7, 32))
    w = rng.standard_normal((3, 3, 32, 8)) * 0.1
    b = rng.standard_normal(8)
    y = conv.conv2d_forward.np(x, w, b, 1, (0, 0, 0, 0), True)
    np.testing.assert_allclose(conv.conv2d_forward.nb(x, w, b, 1, (0,) * 4, True), y, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    want = conv.conv2d_backward.np(x, w, y, dy, 1, (0,) * 4, True, True)
    got = conv.conv2d_backward.nb(x, w, y, dy, 1, (0,) * 4, True, True)
    for g, e in zip(got, want, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-11)


def special_grid(dtype):
    """Input, weights and output gradient with NaN and ±inf where the padded-width grid
    would read them at positions that do not exist: the first and last column of a row."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 6, 7, 1)).astype(dtype)
    x[0, 2, 0, 0] = np.nan  # first column: read by a dropped position of the row above
    x[0, 4, 6, 0] = np.inf  # last column
    x[1, 0, 0, 0] = -np.inf
    w = rng.standard_normal((3, 3, 1, 2)).astype(dtype)
    return x, w


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("weights", ["finite", "inf-weight"])
def test_nan_and_inf_reach_what_the_direct_sum_reaches(dtype, weights):
    """NaN and infinities at a row's edges: the planes twins (NumPy, numba, both layouts)
    give the im2col twin's NaN and infinity positions, and its values elsewhere."""
    x, w = special_grid(dtype)
    if weights == "inf-weight":
        w[0, 2, 0, 1] = np.inf
    b = np.zeros(2, dtype)
    pad = (0, 0, 0, 0)
    with np.errstate(all="ignore"):
        want_y = conv.conv2d_forward.np(x, w, b, 1, pad, False)
        dy = np.ones_like(want_y)
        want = conv.conv2d_backward.np(x, w, want_y, dy, 1, pad, False, True)
        got = [("planes-np", planes_forward_np(x, w, b, pad, False),
                planes_backward_np(x, w, dy, pad, True))]  # fmt: skip
        twins = ["np"] if config.PURE_AT_IMPORT else ["np", "nb"]
        for twin in twins:
            y = getattr(conv_first.conv2d_first_forward, twin)(x, w, b, pad, False)
            grads = getattr(conv_first.conv2d_first_backward, twin)(
                x, w, y, np.ascontiguousarray(dy.transpose(0, 3, 1, 2)), pad, False, True
            )
            got.append((f"first-{twin}", y.transpose(0, 2, 3, 1), grads))
        if not config.PURE_AT_IMPORT:
            got.append(("last-nb", conv.conv2d_forward.nb(x, w, b, 1, pad, False),
                        conv.conv2d_backward.nb(x, w, want_y, dy, 1, pad, False, True)))  # fmt: skip
    for name, y, grads in got:
        for g, e in zip((y, *grads), (want_y, *want), strict=True):
            for kind in (np.isnan, np.isposinf, np.isneginf):
                np.testing.assert_array_equal(kind(g), kind(e), err_msg=f"{name} {kind.__name__}")
            finite = np.isfinite(e)
            np.testing.assert_allclose(g[finite], e[finite], rtol=1e-5, atol=1e-5, err_msg=name)


def test_flattening_layer_computes_channels_first_with_the_same_values():
    """``Conv2D(flatten=True)`` on grey images: a C-contiguous NCHW output (flattening is a
    view), the same values and gradients as the channels-last layer and a Flatten."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 1, 9, 8)).astype(np.float32)
    first = Conv2D(5, 5, activation=fd.Tanh(), flatten=True)
    last = Conv2D(5, 5, activation=fd.Tanh())
    y_first = first.forward(x)
    y_last = last.forward(x)
    conv_op = first.operations[0]
    assert conv_op._first and conv_op.output.flags.c_contiguous
    assert conv_op.tanh and [type(op) for op in first.operations] == [Conv2DOp, Flatten]
    assert not last.operations[0]._first and not last.operations[0].tanh
    np.testing.assert_allclose(y_first, y_last.reshape(4, -1), rtol=1e-5, atol=1e-6)
    g = rng.standard_normal(y_first.shape).astype(np.float32)
    dx_first = first.backward(g)
    dx_last = last.backward(g.reshape(y_last.shape))
    np.testing.assert_allclose(dx_first, dx_last, rtol=1e-5, atol=1e-5)
    for a, b in zip(first.param_grads(), last.param_grads(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("act", [fd.Linear, fd.Tanh, fd.ReLU], ids=["linear", "tanh", "relu"])
@pytest.mark.parametrize("c_in", [1, 3])
def test_flattening_layer_gradcheck(act, c_in):
    """float64 central differences through the layer; tanh and ReLU fused into the
    convolution."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, c_in, 6, 5))
    layer = Conv2D(3, 3, activation=act(), flatten=True)
    layer.forward(x)
    conv_op = layer.operations[0]
    assert conv_op._first and conv_op.tanh == (act is fd.Tanh)
    assert len(layer.operations) == (3 if act is fd.Linear else 2)  # [conv, (act,) flatten]
    gradcheck(layer, x)


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("data", ["finite", "nan-inf"])
@pytest.mark.parametrize("twin", ["nb", "st"])
def test_fused_tanh_gives_the_bits_of_the_separate_tanh(twin, data, dtype):
    """The tanh inside the convolution and its gradient are the separate activation's
    kernels (:mod:`fastdl.kernels.elementwise`) to the bit, NaN and inf too: float32's
    rational tanh, float64's ``np.tanh``."""
    rng = np.random.default_rng(9)
    if data == "finite":
        x = rng.standard_normal((5, 9, 8, 2)).astype(dtype)
        w = rng.standard_normal((5, 5, 2, 4)).astype(dtype)
    else:
        x, w = special_grid(dtype)
    b = rng.standard_normal(w.shape[3]).astype(dtype)
    pad = (2, 2, 2, 2)
    forward = getattr(conv_first.conv2d_first_forward, twin)
    with np.errstate(all="ignore"):
        z = forward(x, w, b, pad, False)
        want_y = elementwise.tanh_forward.nb(z)
        got_y = forward(x, w, b, pad, False, True)
        dy = rng.standard_normal(got_y.shape).astype(dtype)
        backward = getattr(conv_first.conv2d_first_backward, twin)
        want = backward(x, w, want_y, elementwise.tanh_backward.nb(want_y, dy), pad, False, True)
        got = backward(x, w, got_y, dy, pad, False, True, True)
    np.testing.assert_array_equal(got_y, want_y)
    if data == "nan-inf":
        assert np.isnan(got_y).any() and (np.abs(got_y) == 1).any()
    for g, e in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize(
    "kwargs, shape, match",
    [
        ({"relu": True}, (3, 1, 5, 5), "relu=False"),
        ({"channels_first": False}, (3, 1, 5, 5), "channels_first=True"),
        ({"stride": 2}, (3, 1, 5, 5), "stride 2"),
        ({}, (3, 8, 5, 5), r"weights \(3, 8, 5, 5\)"),
    ],
    ids=["with-relu", "channels-last", "strided", "many-channels"],
)
def test_conv_op_refuses_a_tanh_it_cannot_fuse(kwargs, shape, match):
    args = {"stride": 1, "relu": False, "channels_first": True, **kwargs}
    w = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match="Conv2DOp: tanh=True needs.*" + match):
        Conv2DOp(w, np.zeros(3, np.float32), pad=(2, 2, 2, 2), tanh=True, **args)


@pytest.mark.parametrize("twin", ["np"] if config.PURE_AT_IMPORT else ["np", "nb", "st"])
def test_first_kernels_refuse_relu_and_tanh_together(twin):
    x, w = np.zeros((1, 4, 4, 1)), np.zeros((3, 3, 1, 2))
    with pytest.raises(ValueError, match="relu and tanh"):
        getattr(conv_first.conv2d_first_forward, twin)(x, w, np.zeros(2), (1,) * 4, True, True)


def test_strided_or_many_channel_flattening_layer_stays_channels_last():
    x = np.zeros((1, 8, 6, 6), np.float32)
    for layer in (Conv2D(2, 3, flatten=True), Conv2D(2, 3, stride=2, flatten=True)):
        layer.forward(x if layer.stride == 1 else x[:, :1])
        assert not layer.operations[0]._first
