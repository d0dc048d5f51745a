"""Three tiers for im2col / col2im: naive loops → NumPy batch version → compiled per-image one."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import im2col

# (id, N, H, W, C, KH, KW, S, pad)
CASES = [
    ("batch1-3x3", 1, 5, 5, 2, 3, 3, 1, (0, 0, 0, 0)),
    ("1x1", 2, 3, 4, 3, 1, 1, 1, (0, 0, 0, 0)),
    ("even-2x4-pad", 2, 5, 6, 2, 2, 4, 1, (1, 0, 2, 1)),
    ("stride3>kernel2", 2, 8, 7, 3, 2, 2, 3, (0, 0, 0, 0)),
    ("stride2-pad1", 3, 6, 5, 2, 3, 3, 2, (1, 1, 1, 1)),
]
IDS = [c[0] for c in CASES]
IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "image"]


def per_image_im2col(x, kh, kw, s, pad):
    """The compiled ``im2col_image``, image by image."""
    n, h, w, c = x.shape
    oh, ow = im2col.output_size(h, w, kh, kw, s, pad)
    col = np.full((n, oh * ow, kh * kw * c), np.nan, dtype=x.dtype)  # every entry written
    for i in range(n):
        im2col.im2col_image(x[i], kh, kw, s, pad[0], pad[2], oh, ow, col[i])
    return col


def per_image_col2im(col, h, w, kh, kw, s, pad):
    """The compiled ``col2im_image``, image by image."""
    n, c = col.shape[0], col.shape[2] // (kh * kw)
    oh, ow = im2col.output_size(h, w, kh, kw, s, pad)
    x = np.zeros((n, h, w, c), dtype=col.dtype)
    for i in range(n):
        im2col.col2im_image(col[i], kh, kw, s, pad[0], pad[2], oh, ow, x[i])
    return x


TWINS = {
    "np": (im2col.im2col_np, im2col.col2im_np),
    "image": (per_image_im2col, per_image_col2im),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES + [("cin8-pixels", 2, 5, 4, 9, 3, 2, 1, (1, 1, 0, 1))],
                         ids=IDS + ["cin8-pixels"])  # fmt: skip
def test_im2col_and_col2im_match_naive(case, dtype, impl):
    _, n, h, w, c, kh, kw, s, pad = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, h, w, c)).astype(dtype)
    to_col, to_image = TWINS[impl]
    col = to_col(x, kh, kw, s, pad)
    assert col.dtype == dtype
    np.testing.assert_array_equal(col, naive.im2col(x, kh, kw, s, pad))  # copies are exact
    g = rng.standard_normal(col.shape).astype(dtype)
    back = to_image(g, h, w, kh, kw, s, pad)
    assert back.dtype == dtype and back.shape == x.shape
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(back, naive.col2im(g, h, w, kh, kw, s, pad), rtol=0, atol=tol)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_col2im_is_the_adjoint_of_im2col(case):
    """<im2col(x), g> == <x, col2im(g)> for every x and g."""
    _, n, h, w, c, kh, kw, s, pad = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, h, w, c))
    col = im2col.im2col_np(x, kh, kw, s, pad)
    g = rng.standard_normal(col.shape)
    lhs = np.sum(col * g)
    rhs = np.sum(x * im2col.col2im_np(g, h, w, kh, kw, s, pad))
    assert lhs == pytest.approx(rhs, rel=1e-12)
