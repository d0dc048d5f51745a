"""Data sets for fastdl: MNIST-format, text and tabular loaders, and preprocessing helpers.

Depends on NumPy and the standard library only. The MNIST-format loaders work offline
(``path=``, ``$FASTDL_DATA/<name>/``, the user cache, system packages), download from public
mirrors only as a last resort, and verify every byte against checksums written in
:mod:`fastdl.datasets.registry`.

Notation: N samples, H x W images (28 x 28 for MNIST), C classes, T window length,
L text length, V vocabulary size.
"""

from .errors import DatasetIntegrityError, DatasetNotFoundError, IDXFormatError
from .housing import (
    BOSTON_FEATURES,
    CALIFORNIA_FEATURES,
    load_boston,
    load_california_housing,
)
from .idx import read_idx
from .mnist import load_fashion_mnist, load_mnist
from .preprocessing import one_hot, scale_images, standardize, to_nchw, train_val_split
from .sources import user_cache_dir
from .text import load_text, stream_windows, text_windows

__all__ = [
    "BOSTON_FEATURES",
    "CALIFORNIA_FEATURES",
    "DatasetIntegrityError",
    "DatasetNotFoundError",
    "IDXFormatError",
    "load_boston",
    "load_california_housing",
    "load_fashion_mnist",
    "load_mnist",
    "load_text",
    "one_hot",
    "read_idx",
    "scale_images",
    "standardize",
    "stream_windows",
    "text_windows",
    "to_nchw",
    "train_val_split",
    "user_cache_dir",
]
