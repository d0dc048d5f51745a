"""Element-wise activations: Identity (the book's Linear), Sigmoid, Tanh, ReLU, LeakyReLU.

Each keeps the input's shape and dtype: ``(...) → (...)``. Each ``_input_grad`` is the
derivative of its ``_output`` times ``output_grad``, written next to it.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels.elementwise import sigmoid_backward, tanh_backward, tanh_forward
from fastdl.ops.base import Operation

__all__ = ["Identity", "Linear", "Sigmoid", "Tanh", "ReLU", "LeakyReLU"]


class Identity(Operation):
    """The identity activation: ``y = x``, ``dx = dy`` (PyTorch's ``nn.Identity``).

    The default activation of ``Dense`` and ``Conv2D``. The book calls it ``Linear``, which
    fastdl keeps as a name for it (:class:`Linear`); PyTorch's ``nn.Linear`` is a dense
    layer, ``fd.Dense``.
    """

    def _output(self, inference: bool) -> np.ndarray:
        return self.input_

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad


class Linear(Identity):
    """The book's name for :class:`Identity` (``y = x``), not PyTorch's ``nn.Linear``: a
    dense layer is ``fd.Dense``."""


class Sigmoid(Operation):
    """``y = 1 / (1 + exp(-x))``, ``dx = dy * y * (1 - y)``.

    Computed as ``0.5 * tanh(x / 2) + 0.5``, which equals the logistic function and cannot
    overflow (``exp(-x)`` overflows float32 for x < -88).
    """

    def _output(self, inference: bool) -> np.ndarray:
        y = np.tanh(self.input_ * 0.5)
        y *= 0.5
        y += 0.5
        return y

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return sigmoid_backward(self.output, output_grad)  # dy · y · (1 − y), one pass


class Tanh(Operation):
    """``y = tanh(x)``, ``dx = dy * (1 - y²)``."""

    def _output(self, inference: bool) -> np.ndarray:
        return tanh_forward(self.input_)  # float32: a vectorised rational tanh (≤ 4.2e-7 off)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return tanh_backward(self.output, output_grad)  # dy · (1 − y²), one pass


class ReLU(Operation):
    """``y = max(x, 0)``, ``dx = dy * (x > 0)`` (the subgradient at 0 is 0, as in PyTorch)."""

    def _output(self, inference: bool) -> np.ndarray:
        return np.maximum(self.input_, 0)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return np.where(self.input_ > 0, output_grad, 0).astype(output_grad.dtype, copy=False)


class LeakyReLU(Operation):
    """``y = x if x > 0 else alpha * x``, ``dx = dy if x > 0 else alpha * dy``.

    Parameters
    ----------
    alpha : float, default 0.01
        Slope for negative inputs, 0 <= alpha < 1 (PyTorch's and Keras's default is 0.01).
    """

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        if not 0.0 <= float(alpha) < 1.0:
            raise ValueError(f"LeakyReLU: alpha must be in [0, 1), got {alpha}")
        self.alpha = float(alpha)

    def get_config(self) -> dict:
        return {"alpha": self.alpha}

    def _output(self, inference: bool) -> np.ndarray:
        x = self.input_
        return np.where(x > 0, x, x * self.alpha).astype(x.dtype, copy=False)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        g = output_grad
        return np.where(self.input_ > 0, g, g * self.alpha).astype(g.dtype, copy=False)
