"""Dropout with the book's *keep* probability and inverted scaling.

Training: each element is kept with probability ``keep_prob`` and scaled by ``1 / keep_prob``,
``y = x * mask / keep_prob``; ``dx = dy * mask / keep_prob``. Inference: ``y = x``.

The book scales at inference instead (``y = x * keep_prob``). Inverted scaling gives the same
expected activations and leaves inference untouched, as PyTorch and Keras do. Shapes:
``(...) → (...)``.
"""

from __future__ import annotations

import numpy as np

from fastdl.ops.base import Operation

__all__ = ["Dropout"]


class Dropout(Operation):
    """Keep each element with probability ``keep_prob`` during training.

    Parameters
    ----------
    keep_prob : float, default 0.8
        Probability of keeping an element, 0 < keep_prob <= 1 (1 keeps all: no dropout).
    rng : numpy.random.Generator, optional
        Source of the masks; a layer sets it to its network's generator on setup.
    """

    def __init__(self, keep_prob: float = 0.8, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 < float(keep_prob) <= 1.0:
            raise ValueError(f"Dropout: keep_prob must be in (0, 1], got {keep_prob}")
        self.keep_prob = float(keep_prob)
        self.rng = rng
        self.mask: np.ndarray | None = None

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        if inference or self.keep_prob == 1.0:
            self.mask = None
            return x
        if self.rng is None:
            raise RuntimeError(
                "Dropout: no random generator set (use it inside a layer or pass rng=)"
            )
        keep = self.rng.random(x.shape, dtype=x.dtype) < self.keep_prob
        self.mask = keep.astype(x.dtype) * (1.0 / self.keep_prob)
        return x * self.mask

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        if self.mask is None:
            return output_grad
        return output_grad * self.mask
