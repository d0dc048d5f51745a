"""The input gradient of a 3×3 stride-1 convolution by Winograd (F(2×2, 3×3) or F(4×4, 3×3),
each forced on every case as well as the one ``tile_size`` picks) inside the
numba twin's backward pass (``conv._winograd_dx``): against the naive loops and the NumPy
twin, serial and on threads, one image or several per group, plain and through a max-pool;
NaN and infinities in the gradient (summed directly, as the NumPy twin); where it applies."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest
from test_conv_kernels import to_hwio as hwio
from test_conv_kernels import to_nhwc as nhwc
from test_conv_kernels import tolerance

from fastdl import config
from fastdl.kernels import conv, conv_pool, pool, winograd

pytestmark = pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twins unavailable")

# (id, N, C_in, H, W, C_out, pad=(PT, PB, PL, PR)); 3×3 kernels, stride 1
CASES = [
    ("valid-odd-out", 3, 16, 9, 8, 16, (0, 0, 0, 0)),
    ("same", 2, 16, 6, 7, 20, (1, 1, 1, 1)),
    ("asymmetric", 2, 17, 5, 6, 16, (0, 1, 2, 0)),
    ("pad2", 2, 16, 4, 5, 18, (2, 2, 2, 2)),
    ("one-output", 2, 16, 3, 3, 16, (0, 0, 0, 0)),
]
IDS = [c[0] for c in CASES]
DTYPES = [np.float32, np.float64]
# "1": one image per group of GEMMs, serial; "1-par" on threads; "all": the whole batch in
# one group, serial; "all-par": each thread's images in one group
GROUPINGS = {"1": (1, False), "1-par": (1, True), "all": (1 << 40, False),
             "all-par": (1 << 40, True)}  # fmt: skip


def make(case, dtype, seed):
    _, n, c, h, w, co, pad = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w))
    wt = rng.standard_normal((co, c, 3, 3)) * 0.3
    b = rng.standard_normal(co)
    return x, wt, b, pad


@pytest.fixture
def grouping(monkeypatch):
    def use(name):
        group_bytes, parallel = GROUPINGS[name]
        monkeypatch.setattr(conv, "DX_GROUP_BYTES", group_bytes)
        monkeypatch.setattr(conv, "SERIAL_MAX_FLOPS", 0 if parallel else 1 << 62)

    return use


def force_tile(monkeypatch, m):
    """Make the input gradient use m × m tiles (None: leave ``tile_size``'s pick)."""
    if m is not None:
        monkeypatch.setattr(conv, "tile_size", lambda oh, ow: m)


@pytest.mark.parametrize("m", [None, 2, 4], ids=["picked", "F2", "F4"])
@pytest.mark.parametrize("group", list(GROUPINGS))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_input_gradient_matches_naive_and_the_numpy_twin(case, dtype, group, grouping, m,
                                                         monkeypatch):  # fmt: skip
    force_tile(monkeypatch, m)
    x, w, b, pad = make(case, dtype, 0)
    xs, ws = nhwc(x).astype(dtype), hwio(w).astype(dtype)
    u, _, _ = conv._winograd_dx(xs, ws, 1, pad, True)
    side = m or winograd.tile_size(xs.shape[1], xs.shape[2])
    assert u.shape == ((side + 2) ** 2, ws.shape[3], ws.shape[2])  # this path runs
    y = naive.conv2d(x, w, b, 1, pad)
    dy = np.random.default_rng(1).standard_normal(y.shape)
    dx_e, dw_e, db_e = naive.conv2d_grads(x, w, dy * (y > 0), 1, pad)
    y_last = nhwc(np.maximum(y, 0)).astype(dtype)
    args = (xs, ws, y_last, nhwc(dy).astype(dtype), 1, pad, True, True)
    grouping(group)
    dx, dw, db = conv.conv2d_backward.nb(*args)
    np_dx, np_dw, np_db = conv.conv2d_backward.np(*args)
    assert dx.dtype == dtype and dx.shape == xs.shape
    tol = tolerance(dtype, np.abs(dx_e) + 10)
    np.testing.assert_allclose(dx.transpose(0, 3, 1, 2), dx_e, rtol=0, atol=tol)
    np.testing.assert_allclose(dx, np_dx, rtol=0, atol=tol)
    np.testing.assert_allclose(dw, np_dw, rtol=0, atol=tolerance(dtype, np.abs(dw_e) + 10))
    np.testing.assert_allclose(db, np_db, rtol=0, atol=tolerance(dtype, np.abs(db_e) + 10))


@pytest.mark.parametrize("m", [2, 4], ids=["F2", "F4"])
@pytest.mark.parametrize("group", list(GROUPINGS))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_through_the_max_pool(dtype, group, grouping, m, monkeypatch):
    """``conv_pool_backward``'s numba twin (the reference CNN's conv2) against its NumPy twin."""
    force_tile(monkeypatch, m)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 10, 10, 16)).astype(dtype)
    w = (rng.standard_normal((3, 3, 16, 16)) * 0.3).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    y = conv.conv2d_forward.np(x, w, b, 1, (0, 0, 0, 0), True)
    yp, idx = pool.maxpool_forward.np(y, 2, 2)
    dyp = rng.standard_normal(yp.shape).astype(dtype)
    args = (x, w, y, dyp, idx, 1, (0, 0, 0, 0), 2, 2, True)
    grouping(group)
    got = conv_pool.conv_pool_backward.nb(*args)
    want = conv_pool.conv_pool_backward.np(*args)
    for g, e in zip(got, want, strict=True):
        np.testing.assert_allclose(g, e, rtol=0, atol=tolerance(dtype, np.abs(e) + 10))


@pytest.mark.parametrize("group", list(GROUPINGS))
@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_nan_and_inf_in_the_gradient_reach_what_the_direct_sum_reaches(special, group,
                                                                      grouping):  # fmt: skip
    """A NaN or an infinity in one image's gradient would spread over whole tiles through
    the transforms: that image is summed directly, and the others keep Winograd's values."""
    x, w, b, pad = make(CASES[1], np.float32, 3)
    xs, ws = nhwc(x).astype(np.float32), hwio(w).astype(np.float32)
    y = conv.conv2d_forward.np(xs, ws, b.astype(np.float32), 1, pad, False)
    dy = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
    dy[1, 2, 3, 5] = special
    args = (xs, ws, y, dy, 1, pad, False, True)
    grouping(group)
    with np.errstate(all="ignore"):
        dx = conv.conv2d_backward.nb(*args)[0]
        want = conv.conv2d_backward.np(*args)[0]
    for kind in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(kind(dx), kind(want), err_msg=kind.__name__)
    assert not np.isfinite(dx[1]).all() and np.isfinite(dx[0]).all()
    finite = np.isfinite(want)
    np.testing.assert_allclose(dx[finite], want[finite], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    "shape, kernel, stride, pad, need_dx",
    [
        ((2, 6, 6, 16), (3, 3, 16, 15), 1, (1, 1, 1, 1), True),  # too few output channels
        ((2, 6, 6, 15), (3, 3, 15, 16), 1, (1, 1, 1, 1), True),  # too few input channels
        ((2, 6, 6, 16), (3, 3, 16, 16), 2, (1, 1, 1, 1), True),  # strided
        ((2, 9, 9, 16), (5, 5, 16, 16), 1, (2, 2, 2, 2), True),  # 5×5
        ((2, 9, 9, 16), (3, 3, 16, 16), 1, (3, 0, 0, 0), True),  # padding above 2
        ((2, 6, 6, 16), (3, 3, 16, 16), 1, (1, 1, 1, 1), False),  # no input gradient
    ],
    ids=["c-out-15", "c-in-15", "stride-2", "5x5", "pad-3", "no-dx"],
)
def test_where_it_does_not_apply(shape, kernel, stride, pad, need_dx):
    x, w = np.zeros(shape, np.float32), np.zeros(kernel, np.float32)
    assert conv._winograd_dx(x, w, stride, pad, need_dx)[0].shape[0] == 0


def test_not_with_non_finite_weights():
    x, w = np.zeros((2, 6, 6, 16), np.float32), np.zeros((3, 3, 16, 16), np.float32)
    assert conv._winograd_dx(x, w, 1, (1, 1, 1, 1), True)[0].shape[0] == 16
    w[1, 1, 3, 4] = np.nan
    assert conv._winograd_dx(x, w, 1, (1, 1, 1, 1), True)[0].shape[0] == 0
