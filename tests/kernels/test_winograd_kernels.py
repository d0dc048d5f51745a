"""Three tiers for Winograd's F(2×2, 3×3) and F(4×4, 3×3): naive loops (NCHW) → NumPy twin →
numba twin, each tile size forced on every shape as well as the one ``tile_size`` picks, and
the convolution's numba twin (which routes 3×3 stride-1 convolutions of many channels here)
against the im2col twin, on special values too, and a float64 gradient check through it."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import conv, winograd
from fastdl.ops.conv import Conv2DOp
from fastdl.testing import gradcheck

# (id, N, C_in, H, W, C_out, pad=(PT, PB, PL, PR)): odd and even outputs (a partial last
# tile row or column), one tile, asymmetric padding, one channel, many channels
CASES = [
    ("batch1-even-valid", 1, 2, 6, 6, 3, (0, 0, 0, 0)),
    ("odd-out-same", 2, 3, 5, 7, 4, (1, 1, 1, 1)),
    ("one-tile", 2, 1, 4, 4, 2, (0, 0, 0, 0)),
    ("one-output", 1, 2, 3, 3, 2, (0, 0, 0, 0)),
    ("asym-pad", 3, 5, 6, 9, 2, (1, 0, 2, 1)),
    ("nonsquare-odd", 2, 4, 9, 4, 5, (0, 1, 0, 0)),
    ("model-conv2", 2, 32, 12, 12, 64, (0, 0, 0, 0)),
]
IDS = [c[0] for c in CASES]
#: The tile side ``tile_size`` picks for each case's output (fewer products).
PICKED = {"batch1-even-valid": 4, "odd-out-same": 4, "one-tile": 2, "one-output": 2,
          "asym-pad": 4, "nonsquare-odd": 2, "model-conv2": 4}  # fmt: skip
DTYPES = [np.float32, np.float64]
IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb"]


def tolerance(dtype, magnitude):
    """The im2col tests' tolerance: absolute, for sums whose terms add up to ``magnitude``."""
    eps = 1e-5 if dtype == np.float32 else 1e-12
    return eps * (1.0 + float(np.max(magnitude)))


def make(case, dtype, seed):
    _, n, c, h, w, co, pad = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((co, c, 3, 3)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype)
    return x, wt, b, pad


def nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def hwio(w):
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


def force_tile(monkeypatch, m):
    """Make every Winograd pass use m × m output tiles (None: leave ``tile_size``'s pick)."""
    if m is not None:
        monkeypatch.setattr(winograd, "tile_size", lambda oh, ow: m)
        monkeypatch.setattr(conv, "tile_size", lambda oh, ow: m)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tile_size_picks_fewer_products(case):
    _, n, c, h, w, co, (pt, pb, pl, pr) = case
    assert winograd.tile_size(h + pt + pb - 2, w + pl + pr - 2) == PICKED[case[0]]


@pytest.mark.parametrize("m", [None, 2, 4], ids=["picked", "F2", "F4"])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_naive(case, relu, dtype, impl, m, monkeypatch):
    force_tile(monkeypatch, m)
    x, w, b, pad = make(case, dtype, 0)
    expected = naive.conv2d(x.astype(np.float64), w.astype(np.float64), b, 1, pad)
    magnitude = naive.conv2d(np.abs(x), np.abs(w), np.abs(b), 1, pad)
    if relu:
        expected = np.maximum(expected, 0)
    got = getattr(winograd.winograd_forward, impl)(nhwc(x), hwio(w), b, pad, relu)
    assert got.dtype == dtype and got.flags.c_contiguous
    assert got.shape == nhwc(expected).shape
    np.testing.assert_allclose(
        got.transpose(0, 3, 1, 2), expected, rtol=0, atol=tolerance(dtype, magnitude)
    )


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable in pure mode")
@pytest.mark.parametrize("m", [None, 2, 4], ids=["picked", "F2", "F4"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_numba_twin_matches_numpy_twin(case, dtype, m, monkeypatch):
    """The twins agree to the rounding of the transforms: the NumPy twin's einsum and the
    numba twin's shared sums round differently, by up to about 2e-6 of the sum of the
    terms' magnitudes in float32 for F(4×4) (whose ``Bᵀ`` and ``Aᵀ`` hold 4, 5 and 8),
    within the im2col tolerance; float64 to 1e-14 of the largest output."""
    force_tile(monkeypatch, m)
    x, w, b, pad = make(case, dtype, 1)
    want = winograd.winograd_forward.np(nhwc(x), hwio(w), b, pad, True)
    got = winograd.winograd_forward.nb(nhwc(x), hwio(w), b, pad, True)
    if dtype == np.float32:
        magnitude = naive.conv2d(np.abs(x), np.abs(w), np.abs(b), 1, pad)
        atol = tolerance(dtype, magnitude)
    else:
        atol = 1e-14 * (1 + np.abs(want).max())
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable in pure mode")
@pytest.mark.parametrize("m", [2, 4], ids=["F2", "F4"])
def test_numba_twin_threads_and_image_groups(monkeypatch, m):
    """Blocks of images on threads and several images per product give the same bits as
    one image at a time on one thread."""
    force_tile(monkeypatch, m)
    x, w, b, pad = make(CASES[4], np.float32, 2)
    xs, ws = nhwc(np.repeat(x, 3, axis=0)), hwio(w)
    one = winograd.winograd_images(xs, ws, b, pad, False)[0]
    monkeypatch.setattr(winograd, "GROUP_BYTES", 1 << 30)
    grouped = winograd.winograd_images(xs, ws, b, pad, False, np.array([0, 4, 9]))[0]
    np.testing.assert_array_equal(grouped, one)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable in pure mode")
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_convolution_routes_here_and_matches_the_im2col_twin(dtype, monkeypatch):
    """``conv2d_forward``'s numba twin takes Winograd for 3×3 stride-1 and C_in ≥
    WINOGRAD_MIN_C_IN, and agrees with the im2col twin."""
    calls = []
    real = conv.winograd_images
    monkeypatch.setattr(conv, "winograd_images", lambda *a: calls.append(1) or real(*a))
    x, w, b, pad = make(CASES[-1], dtype, 3)
    want = conv.conv2d_forward.np(nhwc(x), hwio(w), b, 1, pad, True)
    got = conv.conv2d_forward.nb(nhwc(x), hwio(w), b, 1, pad, True)
    assert calls == [1]
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(dtype, 300.0))


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable in pure mode")
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_non_finite_image_is_convolved_directly(bad):
    """NaN or ±inf reaches exactly the outputs that see it, as in the im2col twin: the
    image holding it is summed directly, the others by Winograd."""
    x, w, b, pad = make(CASES[-1], np.float32, 4)
    x = np.concatenate([x, x[:1]])
    x[1, 3, 5, 7] = bad
    x[2, 0, 0, 0] = -bad
    want = conv.conv2d_forward.np(nhwc(x), hwio(w), b, 1, pad, False)
    got = conv.conv2d_forward.nb(nhwc(x), hwio(w), b, 1, pad, False)
    for kind in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(kind(got), kind(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=tolerance(np.float32, 300.0))


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable in pure mode")
def test_non_finite_weights_take_the_direct_sum():
    x, w, b, pad = make(CASES[-1], np.float32, 5)
    w[3, 7, 1, 1] = np.inf
    want = conv.conv2d_forward.np(nhwc(x), hwio(w), b, 1, pad, False)
    got = conv.conv2d_forward.nb(nhwc(x), hwio(w), b, 1, pad, False)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))


@pytest.mark.parametrize("pure", [False, True] if not config.PURE_AT_IMPORT else [True])
def test_gradcheck_through_winograd(pure):
    """float64 central differences of the forward (Winograd in the numba twin) against the
    backward pass (im2col / scatter), input and both parameters."""
    rng = np.random.default_rng(6)
    c_in = co = conv.WINOGRAD_MIN_C_IN
    op = Conv2DOp(rng.standard_normal((co, c_in, 3, 3)) * 0.3, rng.standard_normal(co), 1,
                  (1, 0, 0, 1), relu=False)  # fmt: skip
    x = rng.standard_normal((2, c_in, 5, 4))
    with config.use_pure(pure):
        report = gradcheck(op, x)
    assert set(report) == {"input", "param[0]", "param[1]"}
