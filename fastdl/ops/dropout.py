"""Dropout with the book's *keep* probability and inverted scaling.

Training: each element is kept with probability ``keep_prob`` and scaled by ``1 / keep_prob``,
``y = x * mask / keep_prob``; ``dx = dy * mask / keep_prob``. Inference: ``y = x``. The mask
is ``r < keep_prob`` for one uniform draw ``r`` per element from the layer's generator; the
draws are kept for the backward pass, and the kernels of :mod:`fastdl.kernels.elementwise`
apply the mask in one pass.

The book scales at inference instead (``y = x * keep_prob``). Inverted scaling gives the same
expected activations and leaves inference untouched, as PyTorch and Keras do. Shapes:
``(...) → (...)``.

In data-parallel training (:mod:`fastdl._data_parallel`) each process holds rows ``lo:hi``
of a global batch of ``N`` rows: inside :func:`batch_window` the draws are made for the whole
``(N, ...)`` batch and rows ``lo:hi`` kept, so every process draws what one process training
the global batch draws, and its generator stays in step with theirs.
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np

from fastdl._checks import check_keep_prob
from fastdl.kernels.elementwise import dropout_backward, dropout_forward
from fastdl.ops.base import Operation

__all__ = ["Dropout", "batch_window"]

# (N, lo, hi): this process's rows lo:hi of a global batch of N rows, or None.
_window: contextvars.ContextVar = contextvars.ContextVar("fastdl_batch_window", default=None)


@contextlib.contextmanager
def batch_window(n: int, lo: int, hi: int):
    """Within the block, a batch of ``hi - lo`` rows is rows ``lo:hi`` of a global batch of
    ``n`` rows: dropout draws for all ``n`` and keeps those rows."""
    token = _window.set((n, lo, hi))
    try:
        yield
    finally:
        _window.reset(token)


class Dropout(Operation):
    """Keep each element with probability ``keep_prob`` during training.

    Parameters
    ----------
    keep_prob : float, default 0.8
        Probability of keeping an element, 0 < keep_prob <= 1 (1 keeps all: no dropout).
    rng : numpy.random.Generator, optional
        Source of the masks; a layer sets it to its network's generator on setup.
    """

    pass_attrs = (*Operation.pass_attrs, "draws")

    def __init__(self, keep_prob: float = 0.8, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.keep_prob = check_keep_prob("Dropout", "keep_prob", keep_prob)
        self.rng = rng
        self.draws: np.ndarray | None = None  # the uniform draws of the last training pass

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        if inference or self.keep_prob == 1.0:
            self.draws = None
            return x
        if self.rng is None:
            raise RuntimeError(
                "Dropout: no random generator set (use it inside a layer or pass rng=)"
            )
        # One uniform draw per element; the element is kept where it is below keep_prob.
        window = _window.get()
        if window is not None and window[2] - window[1] == x.shape[0]:
            n, lo, hi = window
            self.draws = self.rng.random((n, *x.shape[1:]), dtype=x.dtype)[lo:hi]
        else:
            self.draws = self.rng.random(x.shape, dtype=x.dtype)
        return dropout_forward(x, self.draws, self.keep_prob)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        if self.draws is None:
            return output_grad
        return dropout_backward(output_grad, self.draws, self.keep_prob)
