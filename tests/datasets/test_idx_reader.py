"""read_idx: the IDX format, gzip or raw, checked against its header, size and checksum."""

import gzip
import hashlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastdl.datasets import DatasetIntegrityError, IDXFormatError, read_idx


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
@pytest.mark.parametrize(
    "shape_dtype",
    [
        ((7, 28, 28), np.uint8),
        ((9,), np.uint8),
        ((3, 4), ">i4"),
        ((2, 5), "<f8"),
        ((0, 3), np.int8),
    ],
    ids=["images", "labels", "int32", "float64", "empty"],
)
def test_round_trip(tmp_path, helpers, rng, compress, shape_dtype):
    shape, dtype = shape_dtype
    array = (rng.integers(0, 100, shape) - 50).astype(dtype) if shape[0] else np.zeros(shape, dtype)
    if np.dtype(dtype).kind == "u":
        array = rng.integers(0, 256, shape, dtype=np.uint8)
    content = helpers.idx_bytes(array)
    path = tmp_path / "data.idx"
    path.write_bytes(helpers.gz(content) if compress else content)
    got = read_idx(path, shape=shape, sha256=hashlib.sha256(content).hexdigest())
    assert got.shape == shape
    assert got.dtype == np.dtype(dtype).newbyteorder("=")
    assert got.dtype.isnative
    assert got.flags.writeable and got.flags.c_contiguous
    np.testing.assert_array_equal(got, array)


def test_compression_detected_from_content_not_name(tmp_path, helpers, images):
    content = helpers.idx_bytes(images)
    (tmp_path / "raw.gz").write_bytes(content)
    (tmp_path / "compressed").write_bytes(helpers.gz(content))
    np.testing.assert_array_equal(read_idx(tmp_path / "raw.gz"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "compressed"), images)


def test_one_digest_accepts_raw_and_every_recompression(tmp_path, helpers, images):
    content = helpers.idx_bytes(images)
    digest = hashlib.sha256(content).hexdigest()
    half = len(content) // 2
    variants = {
        "raw": content,
        "level1": helpers.gz(content, 1),
        "level9": helpers.gz(content, 9),
        "two-members": helpers.gz(content[:half]) + helpers.gz(content[half:]),
    }
    for name, data in variants.items():
        (tmp_path / name).write_bytes(data)
        np.testing.assert_array_equal(read_idx(tmp_path / name, sha256=digest), images)


@pytest.mark.parametrize(
    "magic, why",
    [
        (b"\x01\x00\x08\x03", "first byte not zero"),
        (b"\x00\x00\x07\x03", "unknown type code"),
        (b"PK\x03\x04", "a zip file"),
    ],
)
@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_wrong_magic(tmp_path, helpers, images, magic, why, compress):
    content = magic + helpers.idx_bytes(images)[4:]
    path = tmp_path / "bad-magic"
    path.write_bytes(helpers.gz(content) if compress else content)
    with pytest.raises(IDXFormatError, match="bad IDX magic number") as info:
        read_idx(path)
    assert str(path) in str(info.value) and info.value.path == str(path)


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
@pytest.mark.parametrize("keep", [0, 3, 10, 16, 17, 1000], ids=lambda k: f"keep{k}")
def test_truncated_content(tmp_path, helpers, images, compress, keep):
    content = helpers.idx_bytes(images)[:keep]
    path = tmp_path / "short"
    path.write_bytes(helpers.gz(content) if compress else content)
    with pytest.raises(IDXFormatError, match="short|truncated|ends") as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_content_longer_than_header_declares(tmp_path, helpers, images, compress):
    content = helpers.idx_bytes(images) + b"\x00"
    path = tmp_path / "long"
    path.write_bytes(helpers.gz(content) if compress else content)
    with pytest.raises(IDXFormatError, match="holds|continues past"):
        read_idx(path)


@pytest.mark.parametrize("cut", [10, 1000, -9, -1], ids=["header", "middle", "in-trailer", "last"])
def test_truncated_gzip_file(tmp_path, helpers, images, cut):
    path = tmp_path / "cut.gz"
    path.write_bytes(helpers.gz(helpers.idx_bytes(images))[:cut])
    with pytest.raises(DatasetIntegrityError, match="truncated|corrupted") as info:
        read_idx(path)
    assert info.value.path == str(path)


def test_corrupted_gzip_fails_its_crc(tmp_path, helpers, images):
    data = bytearray(helpers.gz(helpers.idx_bytes(images), level=0))
    data[len(data) // 2] ^= 0xFF  # stored block: a flipped data byte is caught by the CRC only
    path = tmp_path / "flipped.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetIntegrityError, match="corrupted gzip data"):
        read_idx(path)


def test_trailing_garbage_after_gzip(tmp_path, helpers, images):
    path = tmp_path / "trailing.gz"
    path.write_bytes(helpers.gz(helpers.idx_bytes(images)) + b"garbage!")
    with pytest.raises(DatasetIntegrityError, match="corrupted gzip data"):
        read_idx(path)


def test_wrong_checksum_names_file_and_expected_digest(tmp_path, helpers, images):
    altered = images.copy()
    altered[3, 14, 14] ^= 1
    path = tmp_path / "altered.gz"
    path.write_bytes(helpers.gz(helpers.idx_bytes(altered)))
    expected = hashlib.sha256(helpers.idx_bytes(images)).hexdigest()
    with pytest.raises(DatasetIntegrityError, match="checksum mismatch") as info:
        read_idx(path, sha256=expected)
    assert expected in str(info.value) and str(path) in str(info.value)
    assert not isinstance(info.value, IDXFormatError)


def test_format_errors_name_the_expected_checksum_when_given(tmp_path, helpers, images):
    content = helpers.idx_bytes(images)
    path = tmp_path / "short.gz"
    path.write_bytes(helpers.gz(content[:-5]))
    expected = hashlib.sha256(content).hexdigest()
    with pytest.raises(IDXFormatError, match=f"truncated.*expected SHA-256 .*: {expected}"):
        read_idx(path, sha256=expected)
    path.write_bytes(helpers.gz(content)[:-3])
    with pytest.raises(DatasetIntegrityError, match=f"truncated.*{expected}") as info:
        read_idx(path, sha256=expected)
    assert info.value.path == str(path)


def test_expected_shape_checked_before_reading(tmp_path, helpers, images):
    path = tmp_path / "images"
    path.write_bytes(helpers.idx_bytes(images))
    with pytest.raises(
        IDXFormatError, match=r"declares shape \(7, 28, 28\), expected \(8, 28, 28\)"
    ):
        read_idx(path, shape=(8, 28, 28))


def test_forged_huge_header_rejected_before_allocating(tmp_path):
    header = bytes([0, 0, 8, 3]) + np.array([2**31, 2**20, 2**20], ">u4").tobytes()
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(header, mtime=0))
    with pytest.raises(IDXFormatError, match="more than"):
        read_idx(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    compress=st.booleans(),
    data=st.data(),
)
def test_never_returns_partial_data(tmp_path, helpers, shape, compress, data):
    """Any file cut short is rejected; the intact file reads back exactly."""
    array = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    content = helpers.idx_bytes(array)
    blob = helpers.gz(content) if compress else content
    cut = data.draw(st.integers(0, len(blob) - 1), label="cut")
    path = tmp_path / f"cut-{compress}"
    path.write_bytes(blob[:cut])
    with pytest.raises(DatasetIntegrityError):
        read_idx(path)
    path.write_bytes(blob)
    np.testing.assert_array_equal(read_idx(path), array)
