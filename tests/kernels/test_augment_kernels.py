"""Three tiers for translating images: a scatter loop (tests/naive_augment.py) → NumPy twin →
numba twin, serial and one block of images per thread.

A translation only copies values, so every tier must give the same bits — for shifts of
zero, of the largest move, beyond the image, per-image mixes, every layout and both dtypes,
and for NaN, infinities and −0.0 too.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from naive_augment import translate as naive_translate

from fastdl import config
from fastdl.kernels import augment

IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb", "nb-parallel"]
DTYPES = [np.float32, np.float64]

# (id, shape N, C, H, W)
SHAPES = [
    ("batch1-1x5x7", (1, 1, 5, 7)),
    ("3x1x6x4", (3, 1, 6, 4)),
    ("rgb-2x3x5x8", (2, 3, 5, 8)),
    ("rgb-4x3x7x3", (4, 3, 7, 3)),
    ("1x1-pixel", (2, 2, 1, 1)),
]
MAX = 2  # the largest shift of the ordinary cases


def shifts_for(kind, n, h, w, rng):
    """``(N, 2)`` shifts of one kind."""
    if kind == "zero":
        return np.zeros((n, 2), np.int64)
    if kind == "+max":
        return np.full((n, 2), MAX)
    if kind == "-max":
        return np.full((n, 2), -MAX)
    if kind == "mixed":  # each image its own move in [-MAX, MAX]², one axis at a time too
        s = rng.integers(-MAX, MAX + 1, (n, 2))
        s[0] = (MAX, -MAX) if n > 1 else s[0]
        return s
    if kind == "beyond":  # the whole image and more: only fill is left
        options = np.array([[h, 0], [0, -w], [-h - 3, w + 5], [h + 1, -w - 1]])
        return options[np.arange(n) % len(options)]
    if kind == "one-axis-beyond":  # rows beyond, columns inside, and the reverse
        options = np.array([[-h, 1], [1, w], [h - 1, 1 - w]])
        return options[np.arange(n) % len(options)]
    raise AssertionError(kind)


SHIFTS = ["zero", "+max", "-max", "mixed", "beyond", "one-axis-beyond"]


def images(shape, dtype, layout, rng):
    n, c, h, w = shape
    if layout == "C":
        return rng.standard_normal(shape).astype(dtype)
    if layout == "channels-last":  # an NCHW view of NHWC memory
        return rng.standard_normal((n, h, w, c)).astype(dtype).transpose(0, 3, 1, 2)
    if layout == "strided":  # every other column of a wider array
        return rng.standard_normal((n, c, h, 2 * w)).astype(dtype)[..., ::2]
    if layout == "reversed":  # negative strides
        return rng.standard_normal(shape).astype(dtype)[::-1, :, ::-1]
    raise AssertionError(layout)


def run(impl, x, shifts, fill, monkeypatch):
    if impl == "nb-parallel":  # every batch split into blocks of images
        monkeypatch.setattr(augment, "SERIAL_MAX_SIZE", 0)
        impl = "nb"
    return getattr(augment.translate, impl)(x, shifts, fill)


def same_bits(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", ["C", "channels-last", "strided", "reversed"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("kind", SHIFTS)
@pytest.mark.parametrize("shape", [s[1] for s in SHAPES], ids=[s[0] for s in SHAPES])
def test_translate_matches_the_scatter_loop(shape, kind, dtype, layout, impl, monkeypatch):
    rng = np.random.default_rng(sum(shape))
    x = images(shape, dtype, layout, rng)
    before = x.copy()
    n, c, h, w = shape
    shifts = shifts_for(kind, n, h, w, rng)
    fill = rng.standard_normal((n, c)).astype(dtype)
    want = naive_translate(x, shifts, fill)
    got = run(impl, x, shifts, fill, monkeypatch)
    same_bits(got, want)
    assert got.flags.c_contiguous and not np.shares_memory(got, x)
    np.testing.assert_array_equal(x, before)  # the input is left as it was


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_fill_broadcasts_from_a_scalar_or_one_value_per_channel(dtype, impl, monkeypatch):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 4, 5)).astype(dtype)
    shifts = np.array([[1, -1], [-2, 3], [0, 0]])
    for fill, table in (
        (0.1, np.full((3, 2), 0.1)),  # rounded to x's dtype, as an assignment would
        ([-1.5, 2.0], np.array([[-1.5, 2.0]] * 3)),
        (np.float64(7.0), np.full((3, 2), 7.0)),
    ):
        got = run(impl, x, shifts, fill, monkeypatch)
        same_bits(got, naive_translate(x, shifts, table.astype(dtype)))
    default = run(impl, x, shifts, 0.0, monkeypatch)
    same_bits(default, augment.translate.np(x, shifts))  # fill defaults to 0


@pytest.mark.parametrize("impl", IMPLS)
def test_the_content_moves_down_and_right_for_positive_shifts(impl, monkeypatch):
    x = np.zeros((1, 1, 5, 5), np.float32)
    x[0, 0, 1, 1] = 1.0
    y = run(impl, x, np.array([[2, 1]]), -1.0, monkeypatch)
    assert y[0, 0, 3, 2] == 1.0  # row 1 + 2, column 1 + 1
    assert (y[0, 0, :2] == -1).all() and (y[0, 0, :, :1] == -1).all()  # what the move left
    assert np.count_nonzero(y == -1) == 2 * 5 + 3 and np.count_nonzero(y == 0) == 25 - 1 - 13


@pytest.mark.parametrize("impl", IMPLS)
def test_integer_shifts_of_any_dtype(impl, monkeypatch):
    x = np.random.default_rng(2).standard_normal((4, 1, 6, 6)).astype(np.float32)
    shifts = np.array([[1, 2], [-1, 0], [3, -3], [0, 1]])
    want = run(impl, x, shifts, 0.5, monkeypatch)
    for dtype in (np.int8, np.int32, np.uint8):
        s = shifts.astype(dtype) if dtype != np.uint8 else np.abs(shifts).astype(dtype)
        same_bits(run(impl, x, s, 0.5, monkeypatch), naive_translate(x, s, np.full((4, 1), 0.5,
                                                                                   np.float32)))  # fmt: skip
    same_bits(want, naive_translate(x, shifts, np.full((4, 1), 0.5, np.float32)))


@pytest.mark.parametrize("impl", IMPLS)
def test_an_mnist_batch(impl, monkeypatch):
    """The case training meets: 128 images 28 × 28, shifts of up to 2 pixels."""
    rng = np.random.default_rng(3)
    x = rng.random((128, 1, 28, 28), dtype=np.float32)
    shifts = rng.integers(-2, 3, (128, 2))
    fill = x.min(axis=(2, 3))
    same_bits(run(impl, x, shifts, fill, monkeypatch), augment.translate.np(x, shifts, fill))


SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, -1e-40, 1e30, -1e30]


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="no compiled twin when pure")
@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
    shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
    parallel=st.booleans(),
)
def test_nan_inf_and_signed_zeros_keep_their_bits(data, dtype, shape, parallel):
    width = 32 if dtype == np.float32 else 64
    values = st.one_of(st.floats(-3, 3, width=width), st.sampled_from(SPECIAL))
    x = data.draw(arrays(dtype, shape, elements=values))
    n, c, h, w = shape
    shifts = data.draw(arrays(np.int64, (n, 2), elements=st.integers(-8, 8)))
    fill = data.draw(arrays(dtype, (n, c), elements=values))
    want = augment.translate.np(x, shifts, fill)
    same_bits(want, naive_translate(x, shifts, fill))
    saved = augment.SERIAL_MAX_SIZE
    augment.SERIAL_MAX_SIZE = 0 if parallel else saved
    try:
        same_bits(augment.translate.nb(x, shifts, fill), want)
    finally:
        augment.SERIAL_MAX_SIZE = saved


def test_the_public_name_carries_the_numpy_twins_docstring():
    assert augment.translate.__name__ == "translate"
    assert augment.translate.__doc__ == augment.translate_np.__doc__
    assert "shape (N, C, H, W)" in augment.translate.__doc__
