"""The weight gradient of a 3×3 stride-1 convolution by Winograd (F(2×2, 3×3) and F(4×4, 3×3),
each forced on every case as well as the one ``tile_size`` picks): the NumPy twin
(``winograd.winograd_weight_grad_np``) against the naive loops, the compiled kernels
(``weight_grad_add``, ``weight_grad_from_u``) against the NumPy twin, and inside the
convolution's numba backward pass against its im2col twin, serial and on threads, plain and
through a max-pool, with NaN and infinities (those images are summed directly)."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest
from test_conv_kernels import tolerance
from test_conv_winograd_dx import CASES as DX_CASES
from test_conv_winograd_dx import GROUPINGS, grouping  # noqa: F401  (a fixture)
from test_winograd_kernels import CASES, IDS, hwio, make, nhwc

from fastdl import config
from fastdl.kernels import conv, conv_pool, pool, winograd

DTYPES = [np.float32, np.float64]
TILES = pytest.mark.parametrize("m", [None, 2, 4], ids=["picked", "F2", "F4"])


def force_tile(monkeypatch, m):
    """Use m × m tiles in every Winograd pass (None: leave ``tile_size``'s pick)."""
    if m is not None:
        monkeypatch.setattr(winograd, "tile_size", lambda oh, ow: m)
        monkeypatch.setattr(conv, "tile_size", lambda oh, ow: m)


def gradient_case(case, dtype, seed):
    """``x`` (N, H, W, C_in), ``dz`` (N, OH, OW, C_out), the padding, and the naive weight
    gradient (C_out, C_in, 3, 3) with the sum of its terms' magnitudes."""
    x, w, b, pad = make(case, np.float64, seed)
    dy = np.random.default_rng(seed + 1).standard_normal(naive.conv2d(x, w, b, 1, pad).shape)
    dw_e = naive.conv2d_grads(x, w, dy, 1, pad)[1]
    magnitude = naive.conv2d_grads(np.abs(x), np.abs(w), np.abs(dy), 1, pad)[1]
    return nhwc(x).astype(dtype), nhwc(dy).astype(dtype), pad, dw_e, magnitude


@TILES
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_numpy_twin_matches_naive(case, dtype, m, monkeypatch):
    force_tile(monkeypatch, m)
    x, dz, pad, dw_e, magnitude = gradient_case(case, dtype, 0)
    dw = winograd.winograd_weight_grad_np(x, dz, pad)
    assert dw.dtype == dtype and dw.shape == hwio(dw_e).shape
    np.testing.assert_allclose(dw, hwio(dw_e), rtol=0, atol=tolerance(dtype, magnitude.max()))


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable in pure mode")
@TILES
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_compiled_kernels_match_the_numpy_twin(case, dtype, m, monkeypatch):
    """One call per image, and all images in one call, agree with the NumPy twin."""
    force_tile(monkeypatch, m)
    x, dz, pad, dw_e, magnitude = gradient_case(case, dtype, 1)
    n, oh, ow, co = dz.shape
    side = m or winograd.tile_size(oh, ow)
    want = winograd.winograd_weight_grad_np(x, dz, pad)
    dz3 = dz.reshape(n, oh * ow, co)
    zero_row = np.zeros(co, dtype)
    for count in (1, n):
        work = winograd.images_work(x.shape[1], x.shape[2], x.shape[3], co, pad, count, side, x)
        du = np.zeros(((side + 2) ** 2, x.shape[3], co), dtype)
        for i0 in range(0, n, count):
            winograd.weight_grad_add(x[i0 : i0 + count], dz3[i0 : i0 + count], pad, count, work,
                                     zero_row, du)  # fmt: skip
        got = winograd.weight_grad_from_u(du)
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(dtype, magnitude.max()))


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable in pure mode")
@TILES
@pytest.mark.parametrize("group", list(GROUPINGS))
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", DX_CASES, ids=[c[0] for c in DX_CASES])
def test_backward_pass_matches_the_im2col_twin(case, dtype, group, grouping, m, monkeypatch):  # noqa: F811
    force_tile(monkeypatch, m)
    x, dz, pad, dw_e, magnitude = gradient_case(case, dtype, 2)
    w = hwio(np.random.default_rng(3).standard_normal((dz.shape[3], x.shape[3], 3, 3)))
    w = w.astype(dtype)
    assert conv._winograd_dw(x, w, 1, pad) == (m or winograd.tile_size(*dz.shape[1:3]))
    y = np.abs(dz) + 1  # y > 0 everywhere: dz is the ReLU's gradient as given
    grouping(group)
    got = conv.conv2d_backward.nb(x, w, y, dz, 1, pad, True, True)
    want = conv.conv2d_backward.np(x, w, y, dz, 1, pad, True, True)
    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=tolerance(dtype, magnitude.max()))
    np.testing.assert_allclose(got[1], hwio(dw_e), rtol=0,
                               atol=tolerance(dtype, magnitude.max()))  # fmt: skip
    np.testing.assert_allclose(got[2], want[2], rtol=0, atol=tolerance(dtype, 10 * dz.size))


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable in pure mode")
@pytest.mark.parametrize("m", [2, 4], ids=["F2", "F4"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_through_the_max_pool(dtype, m, monkeypatch):
    force_tile(monkeypatch, m)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 10, 10, 16)).astype(dtype)
    w = (rng.standard_normal((3, 3, 16, 16)) * 0.3).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    y = conv.conv2d_forward.np(x, w, b, 1, (0, 0, 0, 0), True)
    yp, idx = pool.maxpool_forward.np(y, 2, 2)
    dyp = rng.standard_normal(yp.shape).astype(dtype)
    args = (x, w, y, dyp, idx, 1, (0, 0, 0, 0), 2, 2, False)
    got = conv_pool.conv_pool_backward.nb(*args)
    want = conv_pool.conv_pool_backward.np(*args)
    np.testing.assert_allclose(got[1], want[1], rtol=0, atol=tolerance(dtype, 300 * 16 * 9))


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable in pure mode")
@pytest.mark.parametrize("where", ["input", "gradient"])
@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_a_non_finite_image_is_summed_directly(special, where):
    """A NaN or an infinity in one image's input or output gradient reaches exactly the
    weight-gradient entries the direct sum sends it to; the other images keep Winograd's
    values."""
    x, dz, pad, _, _ = gradient_case(DX_CASES[1], np.float32, 5)
    w = hwio(np.random.default_rng(6).standard_normal((dz.shape[3], x.shape[3], 3, 3)))
    w = w.astype(np.float32)
    if where == "input":
        x[1, 2, 3, 5] = special
    else:
        dz[1, 2, 3, 5] = special
    y = np.abs(np.nan_to_num(dz)) + 1
    with np.errstate(all="ignore"):
        got = conv.conv2d_backward.nb(x, w, y, dz, 1, pad, True, False)[1]
        want = conv.conv2d_backward.np(x, w, y, dz, 1, pad, True, False)[1]
        finite_only = conv.conv2d_backward.nb(x[[0]], w, y[[0]], dz[[0]], 1, pad, True, False)[1]
    for kind in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(kind(got), kind(want), err_msg=kind.__name__)
    assert not np.isfinite(got).all() and np.isfinite(finite_only).all()
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-5, atol=1e-3)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable in pure mode")
@pytest.mark.parametrize(
    "shape, kernel, stride",
    [
        ((2, 6, 6, 16), (3, 3, 16, 15), 1),  # too few output channels
        ((2, 6, 6, 15), (3, 3, 15, 16), 1),  # too few input channels
        ((2, 6, 6, 16), (3, 3, 16, 16), 2),  # strided
        ((2, 9, 9, 16), (5, 5, 16, 16), 1),  # 5×5
    ],
)
def test_where_it_does_not_apply(shape, kernel, stride):
    x, w = np.zeros(shape, np.float32), np.zeros(kernel, np.float32)
    assert conv._winograd_dw(x, w, stride, (1, 1, 1, 1)) == 0
