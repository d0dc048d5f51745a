"""Three tiers for the element-wise kernels: a per-element Python loop → NumPy twin → numba twin.

Layouts matter here: the kernels meet NCHW views of channels-last memory (a convolution's
output), C-ordered gradients, slices with steps, and 1-D to 3-D arrays from dense and
recurrent layers. The results must be bitwise equal to the loop — the same float operations
in the same order — whatever the layout. The one exception is the float32 tanh forward,
whose numba twin is a rational approximation: it must stay within 4.2e-7 of the exact tanh
and keep NaN, ±inf, ±0 and |tanh| ≤ 1 exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import elementwise as ew

IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb"]
DTYPES = [np.float32, np.float64]


def channels_last(shape, rng, dtype):
    """An NCHW-shaped view of NHWC memory, as a convolution returns it."""
    n, c, h, w = shape
    return rng.standard_normal((n, h, w, c)).astype(dtype).transpose(0, 3, 1, 2)


def strided(shape, rng, dtype):
    """A view with a step along the last axis (not contiguous in any order)."""
    return rng.standard_normal((*shape[:-1], 2 * shape[-1])).astype(dtype)[..., ::2]


def c_order(shape, rng, dtype):
    return rng.standard_normal(shape).astype(dtype)


LAYOUTS = {"C": c_order, "channels-last": channels_last, "strided": strided}
# (id, shape, layout of the first array, layout of the second)
CASES = [
    ("1-D", (7,), "C", "C"),
    ("2-D dense", (5, 3), "C", "C"),
    ("2-D strided", (4, 6), "strided", "C"),
    ("3-D sequence", (2, 4, 3), "C", "strided"),
    ("batch1-1x1", (1, 1, 1, 1), "C", "C"),
    ("conv out, C grad", (2, 3, 4, 5), "channels-last", "C"),
    ("conv out, conv grad", (3, 4, 2, 3), "channels-last", "channels-last"),
    ("C out, conv grad", (2, 5, 3, 3), "C", "channels-last"),
    ("4-D strided", (2, 3, 3, 4), "strided", "channels-last"),
    ("empty", (0, 3, 2, 2), "C", "C"),
]
IDS = [c[0] for c in CASES]


def arrays(case, dtype, squash=None):
    _, shape, first, second = case
    rng = np.random.default_rng(len(shape) + shape[0])
    if first == "channels-last" and len(shape) != 4:
        raise AssertionError("channels-last needs 4-D")
    a = LAYOUTS[first](shape, rng, dtype)
    if squash is not None:
        a = squash(a).astype(dtype)
    b = LAYOUTS[second](shape, rng, dtype)
    return a, b


def loop(fn, *arrays):
    """Apply a scalar function element by element, in the arrays' own dtype."""
    out = np.empty(arrays[0].shape, dtype=arrays[0].dtype)
    for index in np.ndindex(out.shape):
        out[index] = fn(*(a[index] for a in arrays))
    return out


#: The rational float32 tanh's largest absolute error (fastdl.kernels._activation_rows).
TANH_ERROR = 4.2e-7


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_tanh_forward(case, dtype, impl):
    """Twin against ``math.tanh`` per element, in any layout; float64 bit for bit, float32
    within the rational tanh's error; the result keeps a contiguous input's layout."""
    x, _ = arrays(case, dtype)
    x = x * dtype(4)  # reach the saturated range too
    expected = loop(lambda v: dtype(math.tanh(float(v))), x)
    y = getattr(ew.tanh_forward, impl)(x)
    assert y.shape == x.shape and y.dtype == dtype
    if dtype == np.float64:  # numpy's tanh and libm's may differ in the last bit
        np.testing.assert_allclose(y, expected, rtol=4.5e-16, atol=0)
        np.testing.assert_array_equal(y, ew.tanh_forward.np(x))  # the twin itself
    else:
        np.testing.assert_allclose(y, expected, rtol=0, atol=TANH_ERROR if impl == "nb" else 1.2e-7)
    if impl == "nb" and x.ndim == 4 and x.size and case[2] == "channels-last":
        assert np.argsort(y.strides).tolist() == np.argsort(x.strides).tolist()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_tanh_forward_special_values(dtype, impl):
    """NaN stays NaN, ±inf → ±1, −0 → −0, a subnormal stays near itself, |tanh| ≤ 1."""
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, -1e-40, 1e30, -1e30, 7.9, -20.0,
                  0.5], dtype=dtype)  # fmt: skip
    with np.errstate(all="ignore"):
        y = getattr(ew.tanh_forward, impl)(x)
    assert np.isnan(y[0]) and not np.isnan(y[1:]).any()
    np.testing.assert_array_equal(y[[1, 2, 7, 8, 10]], [1, -1, 1, -1, -1])
    assert y[3] == 0 and np.signbit(y[3]) and y[4] == 0 and not np.signbit(y[4])
    assert abs(y[5]) <= 1e-39 and abs(y[6]) <= 1e-39 and np.signbit(y[6])
    assert np.all(np.abs(y[1:]) <= 1)
    np.testing.assert_allclose(y[9:], np.tanh(x[9:].astype(np.float64)), rtol=0, atol=TANH_ERROR)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twin unavailable in pure mode")
def test_tanh_forward_error_over_every_float32_from_a_sixteenth_to_the_clamp():
    """The bound over every float32 in [2⁻⁴, 8.5] (below, the error is far smaller; above
    the clamp the result is ±1 within the bound), and oddness bit for bit."""
    lo, hi = (int(np.float32(v).view(np.uint32)) for v in (2.0**-4, 8.5))
    worst = 0.0
    for start in range(lo, hi + 1, 1 << 22):
        x = np.arange(start, min(start + (1 << 22), hi + 1), dtype=np.uint32).view(np.float32)
        y = ew.tanh_forward.nb(x)
        worst = max(
            worst, float(np.abs(y.astype(np.float64) - np.tanh(x.astype(np.float64))).max())
        )
        np.testing.assert_array_equal(ew.tanh_forward.nb(-x), -y)
    assert 4.0e-7 < worst <= TANH_ERROR  # the largest is 4.10e-7, at 5.827876


def tanh_grad(y, dy):
    one = y.dtype.type(1.0)
    return dy * (one - y * y)


def sigmoid_grad(y, dy):
    one = y.dtype.type(1.0)
    return dy * y * (one - y)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize(
    ("name", "scalar", "squash"),
    [("tanh", tanh_grad, np.tanh), ("sigmoid", sigmoid_grad, lambda a: 0.5 * np.tanh(a) + 0.5)],
    ids=["tanh", "sigmoid"],
)
def test_activation_backward(name, scalar, squash, case, dtype, impl):
    y, dy = arrays(case, dtype, squash)
    expected = loop(scalar, y, dy)
    fn = getattr(getattr(ew, f"{name}_backward"), impl)
    dx = fn(y, dy)
    assert dx.shape == y.shape and dx.dtype == dtype
    np.testing.assert_array_equal(dx, expected)
    if impl == "nb" and y.size:  # the result keeps y's memory layout
        assert np.argsort(dx.strides).tolist() == np.argsort(y.strides).tolist() or y.ndim < 4


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("keep", [0.2, 0.5, 0.8, 0.999])
def test_dropout(keep, case, dtype, impl):
    x, dy = arrays(case, dtype)
    r = np.random.default_rng(7).random(x.shape, dtype=dtype)
    scale, k = dtype(1.0 / keep), dtype(keep)

    def masked(v, draw):
        return v * (scale if draw < k else dtype(0.0))

    forward = getattr(ew.dropout_forward, impl)
    backward = getattr(ew.dropout_backward, impl)
    y = forward(x, r, keep)
    dx = backward(dy, r, keep)
    for out, src in ((y, x), (dx, dy)):
        assert out.shape == src.shape and out.dtype == dtype and out.flags.c_contiguous
        np.testing.assert_array_equal(out, loop(masked, src, r))
    # The fraction kept is keep, up to sampling noise (only where there are enough elements).
    if x.size >= 60:
        kept = np.mean(r < k)
        assert abs(kept - keep) < 4 * np.sqrt(keep * (1 - keep) / x.size) + 1e-9


@pytest.mark.parametrize("impl", IMPLS)
def test_dropout_keeps_nan_and_the_sign_of_zero(impl):
    """A dropped element is multiplied by 0, as ``x * mask``: NaN stays NaN, −x·0 is −0."""
    x = np.array([np.nan, -3.0, 2.0, np.nan], dtype=np.float32)
    r = np.array([0.9, 0.9, 0.1, 0.1], dtype=np.float32)
    y = getattr(ew.dropout_forward, impl)(x, r, 0.5)
    assert np.isnan(y[0]) and np.isnan(y[3])
    assert y[1] == 0 and np.signbit(y[1]) and y[2] == np.float32(4.0)


@pytest.mark.parametrize("impl", IMPLS)
def test_float32_stays_float32_in_the_arithmetic(impl):
    """1 − y² rounded in float32, not computed in float64 and rounded once at the end."""
    y = np.array([0.1234567, 0.7654321, -0.9999], dtype=np.float32)
    dy = np.array([1.1, -2.3, 3.7], dtype=np.float32)
    by_float32 = dy * (np.float32(1.0) - y * y)
    got = getattr(ew.tanh_backward, impl)(y, dy)
    np.testing.assert_array_equal(got, by_float32)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_mixed_dtypes_promote_as_numpy_does(name, impl):
    rng = np.random.default_rng(3)
    y = np.tanh(rng.standard_normal((2, 3, 4, 5))).astype(np.float32).transpose(0, 2, 3, 1)
    dy = rng.standard_normal(y.shape)  # float64
    scalar = tanh_grad if name == "tanh" else sigmoid_grad
    expected = loop(scalar, y.astype(np.float64), dy)
    dx = getattr(getattr(ew, f"{name}_backward"), impl)(y, dy)
    assert dx.dtype == np.float64
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-7)  # 1 − y² may round in float32


@pytest.mark.parametrize("impl", IMPLS)
def test_dropout_compares_in_the_draws_dtype(impl):
    """float64 data with float32 draws (or the reverse): the mask is ``r < keep`` in r's dtype,
    so a forward pass and a backward pass of different dtypes drop the same elements."""
    rng = np.random.default_rng(4)
    r = rng.random((50, 40), dtype=np.float32)
    x64 = rng.standard_normal((50, 40))
    x32 = x64.astype(np.float32)
    y64 = getattr(ew.dropout_forward, impl)(x64, r, 0.7)
    y32 = getattr(ew.dropout_forward, impl)(x32, r, 0.7)
    assert y64.dtype == np.float64 and y32.dtype == np.float32
    np.testing.assert_array_equal(y64 != 0, r < np.float32(0.7))
    np.testing.assert_array_equal(y32 != 0, r < np.float32(0.7))
