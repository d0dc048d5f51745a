"""Fashion-MNIST for real, from Debian's dataset-fashion-mnist package (installed by .ci/run)."""

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from fastdl.datasets import load_fashion_mnist, registry

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
# SHA-256 of Debian's recompressed .gz files (they differ from upstream's .gz files).
DEBIAN_GZ_SHA256 = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}

pytestmark = pytest.mark.skipif(
    not all((DEBIAN / name).is_file() for name in DEBIAN_GZ_SHA256),
    reason=f"{DEBIAN} missing or incomplete: apt-get install -y dataset-fashion-mnist",
)


def test_loads_from_the_debian_folder_by_default(cache_dir):
    """No path, no FASTDL_DATA, empty cache, no network: the Debian folder is used."""
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(download=False)
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.uint8
    assert np.bincount(y_train, minlength=10).tolist() == [6000] * 10
    assert np.bincount(y_test, minlength=10).tolist() == [1000] * 10
    assert (y_train[0], y_test[0]) == (9, 9)  # ankle boots open both sets
    assert not cache_dir.parent.exists()  # nothing was copied or downloaded


def test_debian_files_are_recompressed_but_content_is_upstream():
    for f in registry.FASHION_MNIST.files:
        packed = (DEBIAN / f.gz_name).read_bytes()
        assert hashlib.sha256(packed).hexdigest() == DEBIAN_GZ_SHA256[f.gz_name]
        content = gzip.decompress(packed)
        assert hashlib.md5(content).hexdigest() == f.md5  # published upstream
        assert hashlib.sha256(content).hexdigest() == f.sha256
