"""Flatten: ``(N, d1, d2, ...) → (N, d1·d2·...)`` in C order, and its inverse on the way back.

For images ``(N, C, H, W)`` the flattened order is channel-major, as PyTorch's ``flatten(1)``,
so dense weights that follow a convolution can be exchanged with PyTorch.
"""

from __future__ import annotations

import numpy as np

from fastdl.ops.base import Operation

__all__ = ["Flatten"]


class Flatten(Operation):
    """``y = x.reshape(N, -1)``; ``dx = dy.reshape(x.shape)``."""

    def _output(self, inference: bool) -> np.ndarray:
        return self.input_.reshape(self.input_.shape[0], -1)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad.reshape(self.input_.shape)
