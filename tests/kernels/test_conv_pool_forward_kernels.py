"""The inference forward pass of a convolution with ReLU and its max-pool in one pass: the
numba twin equals the two compiled twins in turn to the bit, the NumPy twin is the two
NumPy twins in turn, and both agree with the naive loops."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import conv, conv_pool, pool, winograd

pytestmark = pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twins unavailable")

# (id, N, C_in, H, W, C_out, K, conv stride, pad (PT, PB, PL, PR), pool F, pool S)
CASES = [
    ("winograd-reference-like", 3, 16, 10, 10, 16, 3, 1, (0, 0, 0, 0), 2, 2),
    ("winograd-odd-output-drops-edge", 2, 16, 9, 11, 17, 3, 1, (0, 0, 0, 0), 2, 2),
    ("winograd-padded-3x3-s2-pool", 2, 18, 9, 9, 16, 3, 1, (1, 1, 1, 1), 3, 2),
    ("winograd-one-window", 1, 16, 4, 4, 16, 3, 1, (0, 0, 0, 0), 2, 2),
    ("im2col-few-channels", 2, 3, 8, 9, 5, 3, 1, (0, 0, 0, 0), 2, 2),
    ("im2col-strided", 2, 16, 11, 10, 16, 3, 2, (1, 0, 1, 0), 2, 2),
    ("im2col-5x5", 2, 16, 9, 9, 16, 5, 1, (2, 2, 2, 2), 2, 2),
]
IDS = [c[0] for c in CASES]
# (group bytes, parallel): one image per group, or every image of a thread in one group
GROUPINGS = {"serial-1": (1, False), "parallel-1": (1, True), "parallel-all": (1 << 24, True)}


def inputs(case, dtype, rng):
    _, n, c, h, wd, co, k, s, pad, f, ps = case
    x = rng.standard_normal((n, h, wd, c)).astype(dtype)
    w = (rng.standard_normal((k, k, c, co)) * 0.3).astype(dtype)
    b = (rng.standard_normal(co) * 0.3).astype(dtype)
    return x, w, b, s, pad, f, ps


def composed_nb(x, w, b, s, pad, f, ps):
    y = conv.conv2d_forward.nb(x, w, b, s, pad, True)
    return y, pool.maxpool_forward.nb(y, f, ps, need_idx=False)[0]


@pytest.fixture
def grouping(monkeypatch):
    def use(name, m):
        group_bytes, parallel = GROUPINGS[name]
        monkeypatch.setattr(winograd, "GROUP_BYTES", group_bytes)
        monkeypatch.setattr(conv, "SERIAL_MAX_FLOPS", 0 if parallel else 1 << 62)
        if m is not None:
            monkeypatch.setattr(winograd, "tile_size", lambda oh, ow: m)

    return use


@pytest.mark.parametrize("m", [None, 2, 4], ids=["picked", "F2", "F4"])
@pytest.mark.parametrize("group", list(GROUPINGS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_numba_twin_equals_the_two_compiled_twins_to_the_bit(case, dtype, group, m, grouping):
    grouping(group, m)
    args = inputs(case, dtype, np.random.default_rng(0))
    y, yp = conv_pool.conv_pool_forward.nb(*args)
    want_y, want_yp = composed_nb(*args)
    assert y.shape == want_y.shape and yp.shape == want_yp.shape
    assert yp.dtype == dtype and yp.flags.c_contiguous
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(yp, want_yp)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_twins_agree_with_the_naive_loops(case, dtype):
    x, w, b, s, pad, f, ps = inputs(case, dtype, np.random.default_rng(1))
    x64, w64 = x.transpose(0, 3, 1, 2).astype(np.float64), w.transpose(3, 2, 0, 1)
    y_naive = np.maximum(naive.conv2d(x64, w64.astype(np.float64), b.astype(np.float64), s, pad), 0)
    yp_naive, _ = naive.maxpool(y_naive, f, ps)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for impl in ("np", "nb", "st"):
        y, yp = getattr(conv_pool.conv_pool_forward, impl)(x, w, b, s, pad, f, ps)
        scale = np.abs(y_naive).max()
        assert np.abs(y.transpose(0, 3, 1, 2) - y_naive).max() <= tol * scale, impl
        assert np.abs(yp - yp_naive).max() <= tol * scale, impl


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
def test_an_image_with_nan_or_inf_is_summed_directly_and_pooled_after(value, parallel,
                                                                     monkeypatch):  # fmt: skip
    monkeypatch.setattr(conv, "SERIAL_MAX_FLOPS", 0 if parallel else 1 << 62)
    monkeypatch.setattr(winograd, "GROUP_BYTES", 1)
    x, w, b, s, pad, f, ps = inputs(CASES[0], np.float32, np.random.default_rng(2))
    x[1, 4, 5, 3] = value  # one image: the others go by Winograd, pooled in the groups
    y, yp = conv_pool.conv_pool_forward.nb(x, w, b, s, pad, f, ps)
    want_y, want_yp = composed_nb(x, w, b, s, pad, f, ps)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(yp, want_yp)
    assert not np.isfinite(yp[1]).all() and np.isfinite(yp[[0, 2]]).all()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_staged_twin_is_the_two_in_turn(case):
    """The ``numpy`` BLAS path: the convolution's staged twin, then the compiled pool."""
    args = inputs(case, np.float32, np.random.default_rng(3))
    x, w, b, s, pad, f, ps = args
    y, yp = conv_pool.conv_pool_forward.st(*args)
    want_y = conv.conv2d_forward.st(x, w, b, s, pad, True)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(yp, pool.maxpool_forward.nb(want_y, f, ps, need_idx=False)[0])


@pytest.mark.parametrize("case", [CASES[0], CASES[4]], ids=["winograd", "im2col"])
def test_the_kept_arrays_are_taken_again(case, monkeypatch):
    """Off the Winograd path the pool's output is made after: the array set aside for it is
    let go first, so it is taken again rather than a second one made each pass."""
    from fastdl.kernels import _recycle as recycle

    monkeypatch.setattr(recycle, "MIN_BYTES", 64)
    monkeypatch.setattr(recycle, "_kept", [])
    args = inputs(case, np.float32, np.random.default_rng(4))
    for _ in range(3):
        y, yp = conv_pool.conv_pool_forward.nb(*args)
        del y, yp
    assert len(recycle._kept) == 2  # the convolution's output and the pool's
