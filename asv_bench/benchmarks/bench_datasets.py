"""Benchmarks of fastdl.datasets: MNIST loading from the gzip files, preprocessing, text.

The data come from $FASTDL_DATA, else from ../shared/data next to the repository; without
them each benchmark is skipped (asv's convention: ``setup`` raises NotImplementedError).
Target (issue 3): all of MNIST loads from gzip in under 1 s.
"""

import os
from pathlib import Path

import numpy as np

from fastdl.datasets import (
    load_mnist,
    load_text,
    scale_images,
    standardize,
    text_windows,
    to_nchw,
)


def _shared_data():
    candidates = []
    if os.environ.get("FASTDL_DATA"):
        candidates.append(Path(os.environ["FASTDL_DATA"]))
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data")
    for folder in candidates:
        if (folder / "mnist" / "train-images-idx3-ubyte.gz").is_file():
            return folder
    raise NotImplementedError("MNIST data not found: set FASTDL_DATA to the shared data folder")


class LoadMNIST:
    """All four MNIST files, gzip, with and without the SHA-256 verification."""

    params = [True, False]
    param_names = ["verify"]
    timeout = 60

    def setup(self, verify):
        self.folder = _shared_data() / "mnist"

    def time_load_mnist(self, verify):
        load_mnist(self.folder, download=False, verify=verify, progress=False)

    def peakmem_load_mnist(self, verify):
        load_mnist(self.folder, download=False, verify=verify, progress=False)


class PreprocessMNIST:
    """The examples' preprocessing of the MNIST training images."""

    def setup(self):
        (self.x_train, _), (self.x_test, _) = load_mnist(
            _shared_data() / "mnist", download=False, progress=False
        )

    def time_scale_images(self):
        scale_images(self.x_train)

    def time_standardize_global(self):
        standardize(self.x_train, self.x_test)

    def time_to_nchw_scaled(self):
        to_nchw(scale_images(self.x_train))


class Text:
    """tinyshakespeare: encoding and window cutting."""

    def setup(self):
        self.path = _shared_data() / "text" / "tinyshakespeare.txt"
        if not self.path.is_file():
            raise NotImplementedError(f"{self.path} not found")
        _, self.codes = load_text(self.path)

    def time_load_text(self):
        load_text(self.path)

    def time_text_windows_batch(self):
        x, y = text_windows(self.codes, 100, step=1)
        idx = np.arange(0, len(x), len(x) // 64)[:64]
        np.array(x[idx]), np.array(y[idx])
