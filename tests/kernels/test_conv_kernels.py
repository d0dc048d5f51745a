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
# "nb" runs small work on one thread; "nb-par" forces the parallel path (blocks of images);
# "st" is the staged twin (the numpy BLAS path), "st-par" the same on threads, one image per
# product
IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb", "nb-par", "st", "st-par"]


def tolerance(dtype, magnitude):
    """Absolute tolerance for sums whose terms have absolute sum ``magnitude``."""
    eps = 1e-5 if dtype == np.float32 else 1e-12
    return eps * (1.0 + float(np.max(magnitude)))


@pytest.fixture
def kernel(monkeypatch):
    def pick(fn, impl):
        if impl.endswith("-par"):
            monkeypatch.setattr(conv, "SERIAL_MAX_FLOPS", 0)
            monkeypatch.setattr(conv, "STAGED_GROUP_BYTES", 1)
        return getattr(fn, impl.removesuffix("-par"))

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
    tol = tolerance(dtype, 300.0)
    for twin in (conv.conv2d_forward.nb, conv.conv2d_forward.st):
        np.testing.assert_allclose(twin(x, w, b, 1, pad, True), y_np, rtol=0, atol=tol)
    for density in (1.0, 0.2):
        dy = (rng.standard_normal(y_np.shape) * (rng.random(y_np.shape) < density)).astype(dtype)
        want = conv.conv2d_backward.np(x, w, y_np, dy, 1, pad, True, True)
        for twin in (conv.conv2d_backward.nb, conv.conv2d_backward.st):
            for got, exp in zip(twin(x, w, y_np, dy, 1, pad, True, True), want, strict=True):
                np.testing.assert_allclose(got, exp, rtol=0, atol=tolerance(dtype, 1000.0))


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="compiled twins unavailable in pure mode")
@pytest.mark.parametrize("impl", ["nb", "st"])
def test_backward_on_a_batch_of_dense_sparse_and_empty_images(impl):
    """One group of the staged twin (and one block of the numba twin) mixes images whose
    gradient is dense (products), sparse (scatter-AXPYs) and zero (skipped)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((6, 7, 6, 5))
    w = rng.standard_normal((3, 3, 5, 4))
    y = conv.conv2d_forward.np(x, w, np.zeros(4), 1, (1, 1, 1, 1), False)
    density = np.array([1.0, 0.0, 0.05, 1.0, 0.1, 0.0])[:, None, None, None]
    dy = rng.standard_normal(y.shape) * (rng.random(y.shape) < density)
    want = conv.conv2d_backward.np(x, w, y, dy, 1, (1, 1, 1, 1), False, True)
    got = getattr(conv.conv2d_backward, impl)(x, w, y, dy, 1, (1, 1, 1, 1), False, True)
    for g, e in zip(got, want, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-12)
