"""Flatten as a layer: ``(N, d1, d2, ...) → (N, d1·d2·...)``, channel-major for NCHW images."""

from __future__ import annotations

import numpy as np

from fastdl.layers.base import Layer
from fastdl.ops.reshape import Flatten as FlattenOp

__all__ = ["Flatten"]


class Flatten(Layer):
    """Flatten every axis but the first, in C order (as PyTorch's ``nn.Flatten()``).

    Shape
    -----
    - Input: ``(N, *)`` with at least 2 axes. Output: ``(N, prod(*))``.
    """

    def _check_input(self, x: np.ndarray) -> None:
        super()._check_input(x)
        if x.ndim < 2:
            raise ValueError(
                f"Flatten: expected input with at least 2 axes (N, ...), got shape {x.shape}"
            )

    def _setup_layer(self, x: np.ndarray) -> None:
        self.operations = [FlattenOp()]
