"""Three tiers for the transposed-convolution kernels: naive scatter loops (NCHW) → NumPy twin
→ numba and staged twins."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import conv, conv_transpose
from fastdl.kernels.im2col import output_size

# (id, N, C_in, H, W, C_out, KH, KW, stride, pad=(PT, PB, PL, PR), output_padding=(OPH, OPW))
CASES = [
    ("batch1-3x3", 1, 2, 4, 4, 3, 3, 3, 1, (0, 0, 0, 0), (0, 0)),
    ("1x1", 2, 3, 4, 5, 4, 1, 1, 1, (0, 0, 0, 0), (0, 0)),
    ("1x1-stride2-gaps", 2, 3, 3, 4, 2, 1, 1, 2, (0, 0, 0, 0), (1, 1)),
    ("even2x2-stride2", 2, 3, 4, 3, 2, 2, 2, 2, (0, 0, 0, 0), (0, 0)),
    ("even4x4-stride2-pad1", 2, 4, 5, 5, 3, 4, 4, 2, (1, 1, 1, 1), (0, 0)),
    ("even4x2-nonsquare", 2, 2, 3, 5, 3, 4, 2, 1, (0, 0, 0, 0), (0, 0)),
    ("stride3>kernel2", 2, 2, 3, 4, 2, 2, 2, 3, (0, 0, 0, 0), (2, 1)),
    ("3x3-stride2-pad1-outpad1", 3, 3, 4, 4, 2, 3, 3, 2, (1, 1, 1, 1), (1, 1)),
    ("asym-pad-outpad", 2, 2, 4, 3, 3, 3, 3, 2, (1, 0, 2, 1), (1, 0)),
    ("pad>kernel", 2, 2, 5, 5, 2, 3, 3, 2, (3, 3, 3, 3), (0, 0)),
    ("outpad>pad-bias-rows", 1, 2, 2, 3, 2, 2, 2, 3, (0, 0, 0, 0), (2, 2)),
    ("cout1", 2, 4, 3, 3, 1, 3, 3, 2, (0, 0, 0, 0), (0, 0)),
    ("cout8-pixels-path", 2, 6, 4, 3, 8, 3, 3, 2, (1, 1, 1, 1), (1, 1)),
    ("cin16-cout12-5x5", 3, 16, 3, 4, 12, 5, 5, 2, (2, 2, 2, 2), (1, 0)),
]
IDS = [c[0] for c in CASES]
DTYPES = [np.float32, np.float64]
# "nb" runs small work on one thread; "nb-par" forces the parallel path (blocks of images);
# "st" is the staged twin (the numpy BLAS path), "st-par" the same on threads, one image per
# product. The thresholds are the convolution's: the twins share them.
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


def make(case, dtype, seed, scale=1.0, density=1.0):
    _, n, c, h, w, co, kh, kw, s, pad, opad = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)) * scale * (rng.random((n, c, h, w)) < density)
    wt = rng.standard_normal((c, co, kh, kw)).astype(dtype)  # PyTorch's layout
    b = rng.standard_normal(co).astype(dtype)
    return x.astype(dtype), wt, b, s, pad, opad


def to_nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def to_kernel_layout(w):
    """(C_in, C_out, KH, KW) → the kernels' (KH, KW, C_out, C_in)."""
    return np.ascontiguousarray(w.transpose(2, 3, 1, 0))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_output_size_is_pytorchs_and_the_convolution_maps_it_back(case):
    """The formula, and the convolution with the same kernel, stride and padding maps the
    ``OH × OW`` output back to ``H × W`` (so its kernels give the gradients)."""
    _, n, c, h, w, co, kh, kw, s, pad, opad = case
    oh, ow = conv_transpose.transposed_output_size(h, w, kh, kw, s, pad, opad)
    assert (oh, ow) == ((h - 1) * s - pad[0] - pad[1] + kh + opad[0],
                        (w - 1) * s - pad[2] - pad[3] + kw + opad[1])  # fmt: skip
    assert output_size(oh, ow, kh, kw, s, pad) == (h, w)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_naive(case, dtype, impl, kernel):
    x, w, b, s, pad, opad = make(case, dtype, 0, scale=100.0 if dtype == np.float32 else 1.0)
    expected = naive.conv_transpose2d(x, w, b, s, pad, opad)
    magnitude = naive.conv_transpose2d(np.abs(x), np.abs(w), np.abs(b), s, pad, opad)
    got = kernel(conv_transpose.conv_transpose2d_forward, impl)(
        to_nhwc(x), to_kernel_layout(w), b, s, pad, opad
    )
    assert got.dtype == dtype
    assert got.flags.c_contiguous
    assert got.shape == to_nhwc(expected).shape
    np.testing.assert_allclose(
        got.transpose(0, 3, 1, 2), expected, rtol=0, atol=tolerance(dtype, magnitude)
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("density", [1.0, 0.1], ids=["dense-x", "sparse-x"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_backward_matches_naive(case, density, dtype, impl, kernel):
    """A sparse input (ReLU'd activations) takes the convolution's scatter-AXPY path for the
    weight gradient: ``x`` is the output gradient of the convolution it reuses."""
    x, w, b, s, pad, opad = make(case, dtype, 1, density=density)
    rng = np.random.default_rng(2)
    y = naive.conv_transpose2d(x, w, b, s, pad, opad)
    dy = rng.standard_normal(y.shape)
    dx_e, dw_e, db_e = naive.conv_transpose2d_grads(x, w, dy, s, pad)
    dx, dw, db = kernel(conv_transpose.conv_transpose2d_backward, impl)(
        to_nhwc(x), to_kernel_layout(w), to_nhwc(dy.astype(dtype)), s, pad, True
    )
    assert dx.dtype == dw.dtype == db.dtype == dtype
    assert dx.shape == to_nhwc(x).shape and dw.shape == to_kernel_layout(w).shape
    np.testing.assert_allclose(
        dx.transpose(0, 3, 1, 2), dx_e, rtol=0, atol=tolerance(dtype, np.abs(dx_e) + 10)
    )
    np.testing.assert_allclose(
        dw.transpose(3, 2, 0, 1), dw_e, rtol=0, atol=tolerance(dtype, np.abs(dw_e) + 10)
    )
    np.testing.assert_allclose(db, db_e, rtol=0, atol=tolerance(dtype, np.abs(db_e) + 10))


@pytest.mark.parametrize("impl", IMPLS)
def test_backward_without_input_gradient(impl, kernel):
    x, w, b, s, pad, opad = make(CASES[8], np.float64, 3)
    xn, wn = to_nhwc(x), to_kernel_layout(w)
    y = conv_transpose.conv_transpose2d_forward.np(xn, wn, b, s, pad, opad)
    dy = np.random.default_rng(4).standard_normal(y.shape)
    full = kernel(conv_transpose.conv_transpose2d_backward, impl)(xn, wn, dy, s, pad, True)
    part = kernel(conv_transpose.conv_transpose2d_backward, impl)(xn, wn, dy, s, pad, False)
    assert part[0].shape == (0,) + xn.shape[1:]
    np.testing.assert_allclose(part[1], full[1], rtol=1e-12)
    np.testing.assert_allclose(part[2], full[2], rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_it_is_the_adjoint_of_the_convolution(dtype):
    """``<conv_transpose(x), u> = <x, conv(u)>`` for the same weights, stride and padding
    (no bias): the defining property, checked with the convolution's own NumPy twin."""
    rng = np.random.default_rng(5)
    for case in CASES:
        x, w, _, s, pad, opad = make(case, np.float64, 6)
        xn, wn = to_nhwc(x), to_kernel_layout(w)
        zero_c_out, zero_c_in = np.zeros(w.shape[1]), np.zeros(w.shape[0])
        y = conv_transpose.conv_transpose2d_forward.np(xn, wn, zero_c_out, s, pad, opad)
        u = rng.standard_normal(y.shape)
        back = conv.conv2d_forward.np(u, wn, zero_c_in, s, pad, False)
        assert np.vdot(y, u) == pytest.approx(np.vdot(xn, back), rel=1e-12, abs=1e-12)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="compiled twins unavailable in pure mode")
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_compiled_twins_match_numpy_twin_at_a_decoder_shape(dtype):
    """A chapter-7 autoencoder's decoder layer at batch 5: 32 channels 7×7 → 16 channels
    14×14 (4×4 kernel, stride 2, padding 1), forward and backward, on threads."""
    rng = np.random.default_rng(7)
    x = np.maximum(rng.standard_normal((5, 7, 7, 32)), 0).astype(dtype)
    w = (rng.standard_normal((4, 4, 16, 32)) * 0.1).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    pad, opad = (1, 1, 1, 1), (0, 0)
    y_np = conv_transpose.conv_transpose2d_forward.np(x, w, b, 2, pad, opad)
    assert y_np.shape == (5, 14, 14, 16)
    dy = rng.standard_normal(y_np.shape).astype(dtype)
    want = conv_transpose.conv_transpose2d_backward.np(x, w, dy, 2, pad, True)
    for twin in ("nb", "st"):
        got = getattr(conv_transpose.conv_transpose2d_forward, twin)(x, w, b, 2, pad, opad)
        np.testing.assert_allclose(got, y_np, rtol=0, atol=tolerance(dtype, 100.0))
        grads = getattr(conv_transpose.conv_transpose2d_backward, twin)(x, w, dy, 2, pad, True)
        for g, e in zip(grads, want, strict=True):
            np.testing.assert_allclose(g, e, rtol=0, atol=tolerance(dtype, 1000.0))
