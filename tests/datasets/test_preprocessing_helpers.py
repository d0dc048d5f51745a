"""scale_images, standardize, one_hot, to_nchw, train_val_split."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fastdl.datasets import one_hot, scale_images, standardize, to_nchw, train_val_split


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)


# scale_images


def test_scale_images(images):
    out = scale_images(images)
    assert out.dtype == np.float32 and out.shape == images.shape
    np.testing.assert_array_equal(out, images.astype(np.float32) / np.float32(255))
    assert scale_images(np.array([0, 255], np.uint8)).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("dtype", [np.int64, np.float32, np.uint16, bool])
def test_scale_images_needs_uint8(dtype):
    with pytest.raises(
        TypeError, match=f"scale_images: images must be uint8.*got dtype {np.dtype(dtype)}"
    ):
        scale_images(np.zeros((2, 28, 28), dtype))


# standardize


def test_standardize_global_is_the_books_formula(rng, images):
    x_test = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    train, test = standardize(images, x_test)
    # The book: X_train - mean(X_train), X_test - mean(X_train); then both / std(X_train).
    mean, std = images.astype(np.float64).mean(), images.astype(np.float64).std()
    assert train.dtype == test.dtype == np.float32
    np.testing.assert_allclose(train, (images - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(test, (x_test - mean) / std, rtol=1e-5, atol=1e-5)
    assert abs(train.mean()) < 1e-5 and abs(train.std() - 1) < 1e-5


def test_standardize_single_array_returns_a_tuple(images):
    result = standardize(images)
    assert isinstance(result, tuple) and len(result) == 1


def test_standardize_per_feature(rng):
    x = rng.normal([1.0, -50.0, 3e4], [0.1, 7.0, 2e3], size=(200, 3))
    x[:, 0] = 4.0  # a constant feature: centred, not divided by 0
    other = rng.normal(size=(5, 3))
    train, test = standardize(x, other, axis=0)
    np.testing.assert_allclose(train[:, 1:].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(train[:, 1:].std(0), 1, rtol=1e-5)
    assert np.all(train[:, 0] == 0)
    expected = (other - x.mean(0)) / np.where(x.std(0) == 0, 1, x.std(0))
    np.testing.assert_allclose(test, expected, rtol=1e-5, atol=1e-5)


def test_standardize_is_accurate_for_large_offsets():
    x = 1e8 + np.arange(10_000, dtype=np.float64)
    (out,) = standardize(x)
    np.testing.assert_allclose(out, (x - x.mean()) / x.std(), atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(2, 40), st.integers(1, 4)),
                  elements=st.floats(-1e6, 1e6)))  # fmt: skip
def test_standardize_matches_numpy(x):
    if np.all(x == x.flat[0]):
        with pytest.raises(ValueError, match="constant"):
            standardize(x)
        return
    assume(x.std() > 1e-6 * (1 + np.abs(x).max()))  # else rounding noise is all there is
    (out,) = standardize(x)
    np.testing.assert_allclose(out, (x - x.mean()) / x.std(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        ((np.zeros((3, 2)),), {}, ValueError, "standardize: x_train is constant"),
        ((np.array([[1.0, np.nan]]),), {"axis": 0}, ValueError, "NaN or infinity"),
        ((np.zeros((0, 3)),), {}, ValueError, "non-empty"),
        ((np.ones((3, 2)), np.ones((3, 5))), {"axis": 0}, ValueError, r"others\[0\] has shape"),
        ((np.ones((3, 2)),), {"axis": 1}, ValueError, "axis must be None"),
        ((np.ones((3, 2), bool),), {}, TypeError, "x_train must have an integer or floating"),
        ((np.ones(3), np.array(["a"])), {}, TypeError, r"others\[0\] must be a numeric array"),
    ],
    ids=["constant", "nan", "empty", "feature-mismatch", "axis", "bool", "strings"],
)
def test_standardize_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        standardize(*args, **kwargs)


# one_hot


def test_one_hot_vectors_and_sequences():
    out = one_hot(np.array([2, 0, 9]), 10)
    assert out.shape == (3, 10) and out.dtype == np.float32
    assert out.sum() == 3 and out[0, 2] == out[1, 0] == out[2, 9] == 1
    seq = one_hot([[1, 2], [0, 1]], 3, dtype=np.int8)
    assert seq.shape == (2, 2, 3) and seq.dtype == np.int8
    np.testing.assert_array_equal(seq.argmax(-1), [[1, 2], [0, 1]])
    assert one_hot(np.zeros(0, np.uint8), 4).shape == (0, 4)


@pytest.mark.parametrize(
    "labels, num_classes, error, match",
    [
        ([0, 10], 10, ValueError, r"labels must be in \[0, 10\), got values from 0 to 10"),
        ([-1, 3], 10, ValueError, "from -1 to 3"),
        ([0.0, 1.0], 10, TypeError, "one_hot: labels must have an integer dtype, got float64"),
        ([0, 1], 0, ValueError, "num_classes must be >= 1"),
        ([0, 1], 2.0, TypeError, "num_classes must be an int"),
        ([0, 1], True, TypeError, "num_classes must be an int"),
    ],
)
def test_one_hot_errors(labels, num_classes, error, match):
    with pytest.raises(error, match=match):
        one_hot(labels, num_classes)


# to_nchw


def test_to_nchw_is_a_view(images):
    out = to_nchw(images)
    assert out.shape == (6, 1, 28, 28) and out.dtype == np.uint8
    assert np.shares_memory(out, images)
    assert to_nchw(np.zeros((2, 5, 7), np.float32)).shape == (2, 1, 5, 7)


@pytest.mark.parametrize("shape", [(28, 28), (2, 1, 28, 28)])
def test_to_nchw_needs_3d(shape):
    with pytest.raises(ValueError, match=r"to_nchw: images must have shape \(N, H, W\), got shape"):
        to_nchw(np.zeros(shape, np.uint8))


# train_val_split


def test_train_val_split_partitions_reproducibly(rng):
    x = np.arange(100).reshape(50, 2)
    y = np.arange(50)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, 0.2, seed=3)
    assert x_tr.shape == (40, 2) and x_val.shape == (10, 2)
    np.testing.assert_array_equal(x_tr[:, 0] // 2, y_tr)  # rows stay paired
    np.testing.assert_array_equal(x_val[:, 0] // 2, y_val)
    assert sorted(np.concatenate([y_tr, y_val]).tolist()) == list(range(50))
    again = train_val_split(x, y, 0.2, seed=3)
    np.testing.assert_array_equal(again[1][1], y_val)
    other = train_val_split(x, y, 0.2, seed=4)
    assert not np.array_equal(other[1][1], y_val)
    gen = train_val_split(x, y, 0.2, np.random.default_rng(3))
    np.testing.assert_array_equal(gen[1][1], y_val)


def test_train_val_split_leaves_global_random_state_alone():
    state = np.random.get_state()[1].copy()  # noqa: NPY002 (checking the global state)
    train_val_split(np.zeros(10), np.zeros(10), 0.3, 0)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


@pytest.mark.parametrize("n, fraction, expected", [(10, 0.7, 7), (10, 0.25, 3), (60000, 0.1, 6000)])
def test_train_val_split_size_is_ceil(n, fraction, expected):
    _, (x_val, _) = train_val_split(np.zeros(n), np.zeros(n), fraction, 0)
    assert len(x_val) == expected


@pytest.mark.parametrize(
    "args, error, match",
    [
        ((np.zeros(5), np.zeros(4), 0.2, 0), ValueError, r"same N, got x \(5,\) and y \(4,\)"),
        ((np.zeros(5), np.zeros(5), 1.0, 0), ValueError, "strictly between 0 and 1"),
        ((np.zeros(5), np.zeros(5), 0, 0), ValueError, "strictly between 0 and 1"),
        ((np.zeros(5), np.zeros(5), "0.2", 0), TypeError, "val_fraction must be a float"),
        ((np.zeros(5), np.zeros(5), 1e-12, 0), ValueError, "leaves 0 for validation and 5"),
        ((np.zeros(2), np.zeros(2), 0.99, 0), ValueError, "leaves 2 for validation and 0"),
        ((np.zeros(5), np.zeros(5), 0.2, None), TypeError, "train_val_split: seed must be an int"),
        ((np.zeros(5), np.zeros(5), 0.2, -1), ValueError, "seed must be >= 0"),
        ((np.float64(1.0), np.zeros(5), 0.2, 0), ValueError, r"shape \(N, \.\.\.\)"),
    ],
)
def test_train_val_split_errors(args, error, match):
    with pytest.raises(error, match=match):
        train_val_split(*args)
