"""Three tiers for the convolution kernels: naive loops (NCHW) → NumPy twin → numba twin."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import conv

# (id, N, C_in, H, W, C_out, KH, KW, stride, pad=(PT, PB, PL, PR))
CASES = [
    ("batch1-3x3-same", 1, 2, 5, 5, 3, 3, 3, 1, (1, 1, 1, 1)),
    ("1x1", 2, 3, 4, 5, 4, 1, 1, 1, (0, 0, 0, 0)),
    ("even2x2-same", 2, 2, 6, 5, 3, 2, 2, 1, (0, 1, 0, 1)),
    ("even4x2-nonsquare", 2, 1, 7, 9, 3, 4, 2, 1, (0, 0, 0, 0)),
    ("stride3>kernel2", 2, 2, 9, 8, 2, 2, 2, 3, (0, 0, 0, 0)),
    ("stride2-asym-pad", 3, 3, 7, 6, 4, 3, 3, 2, (1, 0, 2, 1)),
    ("kernel=image", 2, 2, 3, 4, 3, 3, 4, 1, (0, 0, 0, 0)),
    ("gemm-3x3-cin8", 3, 8, 6, 5, 5, 3, 3, 1, (1, 1, 1, 1)),
    ("gemm-5x5-stride2-pad2", 2, 3, 9, 7, 4, 5, 5, 2, (2, 2, 2, 2)),
    ("gemm-1x1-cin40", 2, 40, 3, 4, 6, 1, 1, 1, (0, 0, 0, 0)),
]
IDS = [c[0] for c in CASES]
DTYPES = [np.float32, np.float64]
# "nb" runs small work on one thread; "nb-par" forces the parallel path (blocks of images)
IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb", "nb-par"]


def tolerance(dtype, magnitude):
    """Absolute tolerance for sums whose terms have absolute sum ``magnitude``."""
    eps = 1e-5 if dtype == np.float32 else 1e-12
    return eps * (1.0 + float(np.max(magnitude)))


@pytest.fixture
def kernel(monkeypatch):
    def pick(fn, impl):
        if impl == "nb-par":
            monkeypatch.setattr(conv, "SERIAL_MAX_FLOPS", 0)
            return fn.nb
        return getattr(fn, impl)

    return pick


def make(case, dtype, seed, scale=1.0):
    _, n, c, h, w, co, kh, kw, s, pad = case
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c, h, w)) * scale).astype(dtype)
    wt = rng.standard_normal((co, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    return x, wt, b, s, pad


def to_nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def to_hwio(w):
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_naive(case, relu, dtype, impl, kernel):
    x, w, b, s, pad = make(case, dtype, 0, scale=100.0 if dtype == np.float32 else 1.0)
    expected = naive.conv2d(x, w, b, s, pad)
    magnitude = naive.conv2d(np.abs(x), np.abs(w), np.abs(b), s, pad)
    if relu:
        expected = np.maximum(expected, 0)
    got = kernel(conv.conv2d_forward, impl)(to_nhwc(x), to_hwio(w), b, s, pad, relu)
    assert got.dtype == dtype
    assert got.shape == to_nhwc(expected).shape
    np.testing.assert_allclose(
        got.transpose(0, 3, 1, 2), expected, rtol=0, atol=tolerance(dtype, magnitude)
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("density", [1.0, 0.1], ids=["dense-dy", "sparse-dy"])
@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_matches_naive(case, relu, density, dtype, impl, kernel):
    x, w, b, s, pad = make(case, dtype, 1)
    rng = np.random.default_rng(2)
    y = naive.conv2d(x, w, b, s, pad)
    dy = rng.standard_normal(y.shape) * (rng.random(y.shape) < density)
    dz = dy * (y > 0) if relu else dy
    dx_e, dw_e, db_e = naive.conv2d_grads(x, w, dz, s, pad)
    if relu:
        y = np.maximum(y, 0)
    dx, dw, db = kernel(conv.conv2d_backward, impl)(
        to_nhwc(x),
        to_hwio(w),
        to_nhwc(y.astype(dtype)),
        to_nhwc(dy.astype(dtype)),
        s,
        pad,
        relu,
        True,
    )
    assert dx.dtype == dw.dtype == db.dtype == dtype
    np.testing.assert_allclose(
        dx.transpose(0, 3, 1, 2), dx_e, rtol=0, atol=tolerance(dtype, np.abs(dx_e) + 10)
    )
    np.testing.assert_allclose(
        dw.transpose(3, 2, 0, 1), dw_e, rtol=0, atol=tolerance(dtype, np.abs(dw_e) + 10)
    )
    np.testing.assert_allclose(db, db_e, rtol=0, atol=tolerance(dtype, np.abs(db_e) + 10))


@pytest.mark.parametrize("impl", IMPLS)
def test_backward_without_input_gradient(impl, kernel):
    x, w, b, s, pad = make(CASES[5], np.float64, 3)
    xn, wn = to_nhwc(x), to_hwio(w)
    y = conv.conv2d_forward.np(xn, wn, b, s, pad, False)
    dy = np.ones_like(y)
    full = kernel(conv.conv2d_backward, impl)(xn, wn, y, dy, s, pad, False, True)
    part = kernel(conv.conv2d_backward, impl)(xn, wn, y, dy, s, pad, False, False)
    assert part[0].shape == (0,) + xn.shape[1:]
    np.testing.assert_allclose(part[1], full[1], rtol=1e-12)
    np.testing.assert_allclose(part[2], full[2], rtol=1e-12)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable in pure mode")
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_numba_twin_matches_numpy_twin_at_model_shapes(dtype):
    """The reference CNN's conv2 at batch 5: GEMM forward, sparse and dense backward."""
    rng = np.random.default_rng(4)
    x = np.maximum(rng.standard_normal((5, 12, 12, 32)), 0).astype(dtype)
    w = (rng.standard_normal((3, 3, 32, 64)) * 0.1).astype(dtype)
    b = rng.standard_normal(64).astype(dtype)
    pad = (0, 0, 0, 0)
    y_np = conv.conv2d_forward.np(x, w, b, 1, pad, True)
    y_nb = conv.conv2d_forward.nb(x, w, b, 1, pad, True)
    tol = tolerance(dtype, 300.0)
    np.testing.assert_allclose(y_nb, y_np, rtol=0, atol=tol)
    for density in (1.0, 0.2):
        dy = (rng.standard_normal(y_np.shape) * (rng.random(y_np.shape) < density)).astype(dtype)
        for got, want in zip(
            conv.conv2d_backward.nb(x, w, y_np, dy, 1, pad, True, True),
            conv.conv2d_backward.np(x, w, y_np, dy, 1, pad, True, True),
            strict=True,
        ):
            np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(dtype, 1000.0))
