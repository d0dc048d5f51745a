"""Data augmentation for training images: :class:`RandomTranslate` moves each image a few pixels.

An augmentation is any callable ``augment(x, rng)`` that takes a batch of images ``x``,
shape ``(N, C, H, W)``, and a ``numpy.random.Generator``, and returns a new batch of the
same shape (``x`` itself is left unchanged). ``Trainer.fit(..., augment=...)`` applies it
to every training batch — never to evaluation data — drawing from fit's own generator (the
one that shuffles, seeded by fit's ``seed`` and kept in checkpoints), so the same seed
gives the same run bit for bit and a resumed run continues the uninterrupted one::

    import fastdl as fd

    trainer.fit(x_train, y_train, x_test, y_test, augment=fd.augment.RandomTranslate(2))

Augment after normalising, as the batches the network sees are normalised: the fill of
:class:`RandomTranslate` is then by default each image's own background (its minimum), in
whatever normalisation it is.
"""

from __future__ import annotations

import numpy as np

from fastdl._checks import check_pair
from fastdl.kernels.augment import translate

__all__ = ["RandomTranslate"]


class RandomTranslate:
    """Move each image by a random whole number of pixels; fill the strip it leaves.

    Each image of a batch moves ``dy`` rows down and ``dx`` columns right, both drawn
    independently and uniformly from the integers ``-max_shift .. max_shift`` (no move is
    one of them, as with torchvision's ``RandomAffine(translate=...)``). Whole pixels, so
    nothing is interpolated: every pixel keeps its value or becomes ``fill``. The shifts are
    one ``rng.integers(-max_shift, max_shift + 1, size=(N, 2))`` call per batch (bounds per
    axis for a pair); the kernel is :func:`fastdl.kernels.augment.translate`.

    Parameters
    ----------
    max_shift : int or (int, int), default 2
        The largest move in pixels, >= 0: one bound for rows and columns, or
        ``(rows, columns)``. 2 on 28 × 28 MNIST digits is the classic choice (a digit
        keeps its whole ink: MNIST centres digits in a 20 × 20 box).
    fill : float, sequence of C floats, or None, default None
        The value of the vacated pixels. ``None``: the minimum of each channel of each
        image, which is the background of dark-background images such as MNIST in any
        normalisation (0 for pixels in [0, 1], ``-mean / std`` after standardising), so
        augmenting after normalising needs no fill to be worked out. A number (PyTorch's
        ``fill=0`` is the usual choice for raw pixels) or one number per channel gives
        that value instead.

    Shape
    -----
    x : (N, C, H, W), float32 or float64 → (N, C, H, W), same dtype, a new C-contiguous array

    Examples
    --------
    >>> import numpy as np
    >>> import fastdl as fd
    >>> shift = fd.augment.RandomTranslate(max_shift=2)
    >>> x = np.zeros((8, 1, 28, 28), np.float32)
    >>> shift(x, np.random.default_rng(0)).shape
    (8, 1, 28, 28)
    """

    def __init__(self, max_shift=2, fill=None) -> None:
        self.max_shift = check_pair("RandomTranslate", "max_shift", max_shift, 0)
        self.fill = _fill(fill)

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The batch ``x``, each image moved by its own draw from ``rng``."""
        if not isinstance(x, np.ndarray) or x.ndim != 4 or x.dtype.kind != "f":
            what = (
                f"shape {x.shape} of {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
            )
            raise ValueError(
                f"RandomTranslate: x must be a float array of images (N, C, H, W), got {what}"
            )
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"RandomTranslate: rng must be a numpy.random.Generator, got {type(rng).__name__}"
            )
        rows, cols = self.max_shift
        if rows == cols:  # (scalar bounds draw twice as fast as a pair of bounds)
            shifts = rng.integers(-rows, rows + 1, size=(len(x), 2))
        else:
            high = np.array([rows, cols]) + 1
            shifts = rng.integers(1 - high, high, size=(len(x), 2))
        if self.fill is None:
            fill = x.min(axis=(2, 3))
        else:
            fill = np.asarray(self.fill, dtype=x.dtype)
            if fill.ndim == 1 and len(fill) != x.shape[1]:
                raise ValueError(
                    f"RandomTranslate: fill has {len(fill)} values (one per channel), but x "
                    f"has {x.shape[1]} channels"
                )
        return translate(x, shifts, fill)

    def get_config(self) -> dict:
        """The constructor's arguments: ``RandomTranslate(**get_config())`` is the same."""
        rows, cols = self.max_shift
        return {"max_shift": rows if rows == cols else [rows, cols], "fill": self.fill}

    def __repr__(self) -> str:
        config = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"RandomTranslate({config})"


def _fill(fill):
    """``fill`` as None, a float or a list of floats (what ``get_config`` reports)."""
    if fill is None:
        return None
    values = np.asarray(fill)
    if (
        values.ndim > 1
        or values.size == 0
        or values.dtype.kind not in "iuf"
        or not np.isfinite(values).all()
    ):
        raise ValueError(
            "RandomTranslate: fill must be None, a finite number or one finite number per "
            f"channel, got {fill!r}"
        )
    return float(values) if values.ndim == 0 else [float(v) for v in values]
