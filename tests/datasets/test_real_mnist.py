"""The real MNIST files from $FASTDL_DATA/mnist (CI sets FASTDL_DATA=../shared/data)."""

import gzip
import hashlib

import numpy as np
import pytest

from fastdl.datasets import load_mnist, registry

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def _cache():
    return {}


@pytest.fixture
def mnist(real_mnist_dir, _cache):
    if "mnist" not in _cache:
        _cache["mnist"] = load_mnist(download=False)  # through $FASTDL_DATA
    return _cache["mnist"]


def test_shapes_dtypes_and_values(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.uint8
    assert x_train.min() == 0 and x_train.max() == 255
    assert (y_train[0], y_test[0]) == (5, 7)  # the well-known first digits
    assert x_train.flags.writeable


def test_label_histograms(mnist):
    (_, y_train), (_, y_test) = mnist
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS


def test_files_match_published_checksums(real_mnist_dir):
    """.gz SHA-256 as in SHA256SUMS; uncompressed MD5 as published; SHA-256 as in the code."""
    sums = dict(
        reversed(line.split()) for line in (real_mnist_dir / "SHA256SUMS").read_text().splitlines()
    )
    for f in registry.MNIST.files:
        packed = (real_mnist_dir / f.gz_name).read_bytes()
        assert hashlib.sha256(packed).hexdigest() == sums[f.gz_name]
        assert hashlib.sha256(packed).hexdigest() in registry.__doc__
        content = gzip.decompress(packed)
        assert hashlib.md5(content).hexdigest() == f.md5
        assert hashlib.sha256(content).hexdigest() == f.sha256


def test_unpacked_and_recompressed_copies_pass_verification(tmp_path, real_mnist_dir, mnist):
    """One digest per file accepts an unpacked copy and a recompressed one alike."""
    for f in registry.MNIST.files:
        content = gzip.decompress((real_mnist_dir / f.gz_name).read_bytes())
        if f is registry.MNIST.train_images:
            (tmp_path / f.name).write_bytes(content)
        else:
            (tmp_path / f.gz_name).write_bytes(gzip.compress(content, compresslevel=1))
    loaded = load_mnist(tmp_path, download=False)
    for got, want in zip((*loaded[0], *loaded[1]), (*mnist[0], *mnist[1]), strict=True):
        np.testing.assert_array_equal(got, want)
