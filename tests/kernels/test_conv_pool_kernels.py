"""Three tiers for the fused backward pass of a convolution with ReLU and its max-pool:
naive loops (NCHW, the chain rule term by term) → NumPy twin → numba twin, which must equal
the two compiled twins run in turn to the bit (the same sums in the same order)."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import conv, conv_pool, pool

# (id, N, C_in, H, W, C_out, K, conv stride, pad (PT, PB, PL, PR), pool F, pool S)
CASES = [
    ("reference-like", 3, 4, 8, 8, 6, 3, 1, (0, 0, 0, 0), 2, 2),
    ("odd-output-drops-edge", 2, 3, 8, 9, 5, 3, 1, (0, 0, 0, 0), 2, 2),
    ("overlapping-3x3-s2", 2, 2, 9, 9, 4, 3, 1, (1, 1, 1, 1), 3, 2),
    ("overlapping-2x2-s1", 2, 3, 6, 7, 3, 2, 1, (0, 1, 0, 1), 2, 1),
    ("strided-conv", 2, 2, 11, 10, 3, 3, 2, (1, 0, 1, 0), 2, 2),
    ("stride>window", 2, 2, 10, 10, 3, 3, 1, (0, 0, 0, 0), 2, 3),
    ("one-window", 1, 3, 4, 4, 2, 3, 1, (0, 0, 0, 0), 2, 2),
    ("1x1-pool", 2, 2, 5, 5, 3, 3, 1, (1, 1, 1, 1), 1, 1),
]
IDS = [c[0] for c in CASES]
IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb", "nb-par", "st"]


def twin(impl, monkeypatch):
    if impl == "nb-par":  # the parallel driver, also for these small shapes
        monkeypatch.setattr(conv, "SERIAL_MAX_FLOPS", 0)
        return conv_pool.conv_pool_backward.nb
    return getattr(conv_pool.conv_pool_backward, impl)


def forward(case, dtype, rng):
    """``(x, w, y, idx, dyp)`` channels-last for the kernels, and the pooled shape."""
    _, n, c, h, wd, co, k, s, pad, f, ps = case
    x = rng.standard_normal((n, h, wd, c)).astype(dtype)
    w = (rng.standard_normal((k, k, c, co)) * 0.5).astype(dtype)
    b = rng.standard_normal(co).astype(dtype) * 0.3
    y = conv.conv2d_forward.np(x, w, b, s, pad, True)
    yp, idx = pool.maxpool_forward.np(y, f, ps)
    dyp = rng.standard_normal(yp.shape).astype(dtype)
    return x, w, y, idx, dyp


def naive_grads(case, x, w, y, dyp):
    """The chain rule term by term: the pool's naive gradient, the ReLU's mask, the naive
    convolution gradients (float64)."""
    _, n, c, h, wd, co, k, s, pad, f, ps = case
    y_nchw = y.transpose(0, 3, 1, 2).astype(np.float64)
    _, dx_of = naive.maxpool(y_nchw, f, ps)
    dz = dx_of(dyp.astype(np.float64)) * (y_nchw > 0)
    dx, dw, db = naive.conv2d_grads(
        x.transpose(0, 3, 1, 2).astype(np.float64), w.transpose(3, 2, 0, 1), dz, s, pad
    )
    return dx.transpose(0, 2, 3, 1), dw.transpose(2, 3, 1, 0), db


@pytest.mark.parametrize("need_dx", [True, False], ids=["dx", "no-dx"])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_the_chain_rule_term_by_term(case, dtype, impl, need_dx, monkeypatch):
    rng = np.random.default_rng(0)
    x, w, y, idx, dyp = forward(case, dtype, rng)
    _, n, c, h, wd, co, k, s, pad, f, ps = case
    dx, dw, db = twin(impl, monkeypatch)(x, w, y, dyp, idx, s, pad, f, ps, need_dx)
    dx_e, dw_e, db_e = naive_grads(case, x, w, y, dyp)
    assert dx.dtype == dw.dtype == db.dtype == dtype
    assert dw.shape == w.shape and db.shape == (co,)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dw, dw_e, rtol=0, atol=tol * max(1, np.abs(dw_e).max()))
    np.testing.assert_allclose(db, db_e, rtol=0, atol=tol * max(1, np.abs(db_e).max()))
    if need_dx:
        assert dx.shape == x.shape
        np.testing.assert_allclose(dx, dx_e, rtol=0, atol=tol * max(1, np.abs(dx_e).max()))
    else:
        assert dx.shape == (0, h, wd, c)


def composed(x, w, y, dyp, idx, s, pad, f, ps, need_dx):
    """The compiled pool backward, then the compiled convolution backward."""
    dy = pool.maxpool_backward.nb(dyp, idx, y.shape[1], y.shape[2], f, ps)
    return conv.conv2d_backward.nb(x, w, y, dy, s, pad, True, need_dx)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba kernels unavailable (FASTDL_PURE=1)")
@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_numba_twin_equals_the_two_compiled_twins_to_the_bit(case, dtype, parallel, monkeypatch):
    if parallel:
        monkeypatch.setattr(conv, "SERIAL_MAX_FLOPS", 0)
    rng = np.random.default_rng(1)
    x, w, y, idx, dyp = forward(case, dtype, rng)
    args = (x, w, y, dyp, idx, *case[7:9], *case[9:11])
    for need_dx in (True, False):
        got = conv_pool.conv_pool_backward.nb(*args, need_dx)
        want = composed(*args, need_dx)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba kernels unavailable (FASTDL_PURE=1)")
def test_dense_gradients_take_the_gemm_path_and_still_agree(monkeypatch):
    """Overlapping 3×3 windows of stride 1 and a bias that keeps every unit alive make the
    gradient dense enough for the GEMM branch; the sparse branch is forced the other way."""
    case = ("dense", 2, 3, 10, 10, 4, 3, 1, (1, 1, 1, 1), 3, 1)
    rng = np.random.default_rng(2)
    x, w, y, idx, dyp = forward(case, np.float64, rng)
    args = (x, w, y, dyp, idx, 1, (1, 1, 1, 1), 3, 1, True)
    want = conv_pool.conv_pool_backward.np(*args)
    for density in (0.0, 1.0):  # every image dense (GEMMs), every image sparse (AXPYs)
        monkeypatch.setattr(conv, "SPARSE_MAX_DENSITY", density)
        got = conv_pool.conv_pool_backward.nb(*args)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("where", ["x", "dyp", "w"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_special_values_reach_what_the_composed_twins_reach(where, value, impl, monkeypatch):
    """A NaN or infinity in the input, the weights or the pooled gradient gives NaN and
    infinities exactly where the NumPy composition (pool twin, then convolution twin) puts
    them, and the same finite values elsewhere."""
    case = CASES[0]
    rng = np.random.default_rng(3)
    x, w, y, idx, dyp = forward(case, np.float32, rng)
    {"x": x, "dyp": dyp, "w": w}[where].reshape(-1)[5] = value
    _, n, c, h, wd, co, k, s, pad, f, ps = case
    if where != "dyp":  # the forward pass sees the value: y and idx follow it
        y = conv.conv2d_forward.np(x, w, np.zeros(co, np.float32), s, pad, True)
        _, idx = pool.maxpool_forward.np(y, f, ps)
    args = (x, w, y, dyp, idx, s, pad, f, ps, True)
    with np.errstate(invalid="ignore", over="ignore"):
        got = twin(impl, monkeypatch)(*args)
        dy = pool.maxpool_backward.np(dyp, idx, y.shape[1], y.shape[2], f, ps)
        want = conv.conv2d_backward.np(x, w, y, dy, s, pad, True, True)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_array_equal(np.isposinf(a), np.isposinf(b))
        np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b))
        finite = np.isfinite(b)
        np.testing.assert_allclose(a[finite], b[finite], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS)
def test_dead_units_and_ties_send_nothing_back(impl, monkeypatch):
    """A window whose maximum is 0 after the ReLU (tied zeros: the first is picked, and the
    ReLU's derivative there is 0) sends no gradient; an all-dead output gives zero
    gradients."""
    x = np.ones((2, 4, 4, 1), np.float32)
    w = -np.ones((3, 3, 1, 2), np.float32)  # every output negative → ReLU 0
    y = conv.conv2d_forward.np(x, w, np.zeros(2, np.float32), 1, (0, 0, 0, 0), True)
    assert not y.any()
    _, idx = pool.maxpool_forward.np(y, 2, 2)
    dyp = np.ones((2, 2, 1, 1), np.float32)
    dx, dw, db = twin(impl, monkeypatch)(x, w, y, dyp, idx, 1, (0, 0, 0, 0), 2, 2, True)
    assert not dx.any() and not dw.any() and not db.any()
