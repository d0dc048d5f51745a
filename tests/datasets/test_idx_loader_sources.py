"""load_mnist / load_fashion_mnist: where files are looked for, and what a bad file does.

These tests install a tiny data set as ``registry.MNIST`` (fixture ``tiny_mnist``), so the
public loaders run unchanged on a few images whose checksums the test knows.
"""

import dataclasses
import time

import numpy as np
import pytest

from fastdl.datasets import (
    DatasetIntegrityError,
    DatasetNotFoundError,
    IDXFormatError,
    load_fashion_mnist,
    load_mnist,
    registry,
)


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_explicit_path(tmp_path, tiny_mnist, compress):
    folder = tiny_mnist.write(tmp_path / "given", compress=compress)
    tiny_mnist.check(load_mnist(folder, download=False))
    tiny_mnist.check(load_mnist(str(folder), download=False))


def test_fastdl_data_subfolder(tmp_path, monkeypatch, tiny_mnist):
    tiny_mnist.write(tmp_path / "data" / "mnist")
    monkeypatch.setenv("FASTDL_DATA", str(tmp_path / "data"))
    tiny_mnist.check(load_mnist(download=False))


def test_user_cache(tiny_mnist, cache_dir):
    tiny_mnist.write(cache_dir)
    tiny_mnist.check(load_mnist(download=False))


def test_xdg_cache_home_relative_is_ignored(tmp_path, monkeypatch, tiny_mnist):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    tiny_mnist.write(tmp_path / "home" / ".cache" / "fastdl" / "mnist")
    tiny_mnist.check(load_mnist(download=False))


def test_order_path_then_fastdl_data_then_cache(tmp_path, monkeypatch, tiny_mnist, cache_dir):
    """A bad copy in a later place is never read when an earlier place has the files."""
    good = tiny_mnist.write(tmp_path / "given")
    bad_data = tiny_mnist.write(tmp_path / "data" / "mnist")
    (bad_data / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    monkeypatch.setenv("FASTDL_DATA", str(tmp_path / "data"))
    tiny_mnist.check(load_mnist(good, download=False))
    with pytest.raises(IDXFormatError, match="t10k-labels"):
        load_mnist(download=False)  # FASTDL_DATA comes before the (empty) cache


def test_fashion_mnist_from_system_folder(tmp_path, monkeypatch, helpers):
    tiny = helpers.make_tiny(
        "fashion-mnist",
        "Fashion-MNIST",
        seed=1,
        mirrors=registry.FASHION_MNIST.mirrors,
        system_dirs=(str(tmp_path / "usr-share"),),
    )
    monkeypatch.setattr(registry, "FASHION_MNIST", tiny.spec)
    tiny.write(tmp_path / "usr-share")
    tiny.check(load_fashion_mnist(download=False))


def test_incomplete_folder_is_skipped_and_reported(tmp_path, monkeypatch, tiny_mnist, cache_dir):
    partial = tiny_mnist.write(tmp_path / "given", skip={"t10k-labels-idx1-ubyte"})
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(partial, download=False)
    assert f"{partial}: missing t10k-labels-idx1-ubyte.gz" in str(info.value)
    tiny_mnist.write(cache_dir)
    tiny_mnist.check(load_mnist(partial, download=False))


def test_not_found_message_lists_every_place_and_the_fix(tmp_path, monkeypatch, tiny_mnist):
    monkeypatch.setenv("FASTDL_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(tmp_path / "given", download=False)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    for expected in (
        f"path= argument {tmp_path / 'given'}: no such folder",
        f"$FASTDL_DATA/mnist {tmp_path / 'data' / 'mnist'}: no such folder",
        f"user cache {tmp_path / 'xdg-cache' / 'fastdl' / 'mnist'}: no such folder",
        "download: not attempted (download=False)",
        "FASTDL_DATA=DIR",
        'path="folder holding the four files"',
        "train-images-idx3-ubyte.gz",
    ):
        assert expected in message


def test_path_to_a_file_is_explained(tmp_path, tiny_mnist):
    folder = tiny_mnist.write(tmp_path / "given")
    with pytest.raises(DatasetNotFoundError, match="is a file; give the folder holding"):
        load_mnist(folder / "train-images-idx3-ubyte.gz", download=False)


def test_not_found_unset_places_are_named(tiny_mnist):
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(download=False)
    assert "path= argument: not given" in str(info.value)
    assert "$FASTDL_DATA/mnist: FASTDL_DATA is not set" in str(info.value)


def test_offline_download_fails_within_seconds(tmp_path, tiny_mnist, helpers):
    refused = helpers.refused_port_url()
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(mirrors=[refused, refused + "other/"], progress=False)
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert f"{refused}train-images-idx3-ubyte.gz: cannot connect" in message
    assert f"{refused}other/train-images-idx3-ubyte.gz: cannot connect" in message
    assert "FASTDL_DATA" in message and "path=" in message


def test_fashion_message_names_the_debian_package(monkeypatch):
    spec = dataclasses.replace(registry.FASHION_MNIST, system_dirs=("/nonexistent/fashion",))
    monkeypatch.setattr(registry, "FASHION_MNIST", spec)
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist(download=False)
    assert "system package folder /nonexistent/fashion: no such folder" in str(info.value)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)


def test_label_count_not_matching_image_count(tmp_path, tiny_mnist, helpers):
    folder = tiny_mnist.write(tmp_path / "given")
    labels = np.zeros(len(tiny_mnist.arrays[1]) - 1, np.uint8)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(helpers.gz(helpers.idx_bytes(labels)))
    with pytest.raises(IDXFormatError, match=r"declares shape \(11,\), expected \(12,\)"):
        load_mnist(folder, download=False)
    with pytest.raises(DatasetIntegrityError, match="holds 11 labels but .* holds 12 images"):
        load_mnist(folder, download=False, verify=False)


@pytest.mark.parametrize(
    "index, array, match",
    [
        (1, np.full(12, 10, np.uint8), "labels must be 0 to 9, found 10"),
        (0, np.zeros((12, 28, 27), np.uint8), r"expected uint8 images of shape \(N, 28, 28\)"),
        (1, np.zeros(12, np.int32), r"expected uint8 labels of shape \(N,\)"),
    ],
    ids=["label-10", "27-columns", "int32-labels"],
)
def test_format_checks_hold_without_verification(
    tmp_path, tiny_mnist, helpers, index, array, match
):
    folder = tiny_mnist.write(tmp_path / "given")
    name = tiny_mnist.spec.files[index].gz_name
    (folder / name).write_bytes(helpers.gz(helpers.idx_bytes(array)))
    with pytest.raises(DatasetIntegrityError, match=match):
        load_mnist(folder, download=False, verify=False)


def test_verify_false_accepts_other_mnist_format_data(tmp_path, helpers, tiny_mnist):
    other = helpers.make_tiny("mnist", "MNIST", n_train=3, n_test=2, seed=7)
    folder = other.write(tmp_path / "custom")
    other.check(load_mnist(folder, download=False, verify=False))
    with pytest.raises(IDXFormatError):
        load_mnist(folder, download=False)


def test_corrupted_file_outside_cache_raises_and_is_kept(tmp_path, tiny_mnist, helpers):
    folder = tiny_mnist.write(tmp_path / "given")
    x = tiny_mnist.arrays[2].copy()
    x[0, 0, 0] ^= 0x80
    bad = folder / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(helpers.gz(helpers.idx_bytes(x)))
    with pytest.raises(DatasetIntegrityError) as info:
        load_mnist(folder)
    assert str(bad) in str(info.value)
    assert tiny_mnist.spec.test_images.sha256 in str(info.value)
    assert bad.exists()


def test_truncated_file_outside_cache_raises(tmp_path, tiny_mnist):
    folder = tiny_mnist.write(tmp_path / "given")
    bad = folder / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(DatasetIntegrityError, match="truncated") as info:
        load_mnist(folder)
    assert str(bad) in str(info.value)
    assert tiny_mnist.spec.train_images.sha256 in str(info.value)


def test_corrupted_cache_file_is_deleted_not_reused(tiny_mnist, cache_dir, capsys):
    tiny_mnist.write(cache_dir)
    bad = cache_dir / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-20])
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(download=False)
    assert "deleted corrupted train-labels-idx1-ubyte.gz" in str(info.value)
    assert not bad.exists()
    assert "deleted a corrupted cached file" in capsys.readouterr().err
    assert sorted(p.name for p in cache_dir.iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz",
    ]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"path": 3}, TypeError, "load_mnist: path must be a str or os.PathLike, got int"),
        ({"download": "yes"}, TypeError, "load_mnist: download must be True or False"),
        ({"verify": None}, TypeError, "load_mnist: verify must be True or False"),
        ({"progress": 1}, TypeError, "load_mnist: progress must be True or False"),
        ({"timeout": 0}, ValueError, "load_mnist: timeout must be a positive number"),
        ({"timeout": "5"}, TypeError, "load_mnist: timeout must be a number of seconds"),
        ({"timeout": float("nan")}, ValueError, "load_mnist: timeout must be a positive number"),
        ({"mirrors": "http://x/"}, TypeError, "load_mnist: mirrors must be a sequence of URLs"),
        ({"mirrors": ["ftp://x/"]}, ValueError, "load_mnist: mirrors must be http"),
    ],
    ids=lambda v: str(v)[:30] if isinstance(v, dict) else "",
)
def test_argument_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        load_mnist(**kwargs)


def test_argument_validation_names_fashion_loader():
    with pytest.raises(TypeError, match="load_fashion_mnist: download"):
        load_fashion_mnist(download="no")
