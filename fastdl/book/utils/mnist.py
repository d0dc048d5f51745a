"""The book's MNIST helpers (``lincoln.utils.mnist``): ``init()`` and ``load()``.

The book downloads the four files from yann.lecun.com (no longer served) and keeps them in
a pickle, ``mnist.pkl``, in the working folder. Here both go through fastdl's checksummed
loader, :func:`fastdl.datasets.load_mnist`: the files are looked for in ``$FASTDL_DATA/mnist``
and fastdl's cache, downloaded from its mirrors if missing, and every file's SHA-256 is
checked. Nothing is pickled.
"""

from __future__ import annotations

import numpy as np

from fastdl.datasets import load_mnist

__all__ = ["init", "load"]


def init() -> None:
    """Make sure the four MNIST files are present and intact (downloading them if not)."""
    load_mnist(download=True)
    print("MNIST is ready.")


def load() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``X_train`` ``(60000, 784)``, ``y_train`` ``(60000,)``, ``X_test`` ``(10000, 784)``,
    ``y_test`` ``(10000,)``, all uint8 as the book's pickle holds them (pixels 0–255 in
    row-major order, labels 0–9)."""
    (x_train, y_train), (x_test, y_test) = load_mnist(download=True)
    return x_train.reshape(len(x_train), -1), y_train, x_test.reshape(len(x_test), -1), y_test
