"""Flatten and Reshape: new shapes for each example, C order, inverted on the way back.

Flatten: ``(N, d1, d2, ...) → (N, d1·d2·...)``. For images ``(N, C, H, W)`` the flattened
order is channel-major, as PyTorch's ``flatten(1)``, so dense weights that follow a
convolution can be exchanged with PyTorch. Reshape is its inverse, ``(N, C·H·W) → (N, C, H,
W)`` (PyTorch's ``nn.Unflatten(1, (C, H, W))``).
"""

from __future__ import annotations

import numpy as np

from fastdl.ops.base import Operation

__all__ = ["Flatten", "Reshape"]


class Flatten(Operation):
    """``y = x.reshape(N, -1)``; ``dx = dy.reshape(x.shape)``."""

    def _output(self, inference: bool) -> np.ndarray:
        return self.input_.reshape(self.input_.shape[0], -1)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad.reshape(self.input_.shape)


class Reshape(Operation):
    """``y = x.reshape((N,) + target_shape)``; ``dx = dy.reshape(x.shape)``.

    The layer (:class:`fastdl.layers.Reshape`) checks that the sizes agree.
    """

    def __init__(self, target_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.target_shape = tuple(target_shape)

    def get_config(self) -> dict:
        return {"target_shape": self.target_shape}

    def _output(self, inference: bool) -> np.ndarray:
        return self.input_.reshape((self.input_.shape[0],) + self.target_shape)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad.reshape(self.input_.shape)
