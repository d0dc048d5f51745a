"""MaxPool2DOp: max over F × F windows of NCHW images, and its gradient.

Shapes: input ``(N, C, H, W)``; output ``(N, C, OH, OW)`` with ``OH = (H - F) // S + 1``,
``OW = (W - F) // S + 1`` (no padding; see :mod:`fastdl.kernels.pool`). The input is read
channels-last (free after a convolution); the output is C-contiguous NCHW, so a following
``Flatten`` costs nothing (a following convolution converts it once).
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels.pool import maxpool_backward, maxpool_forward
from fastdl.ops.base import Operation
from fastdl.ops.conv import from_nhwc, to_nhwc

__all__ = ["MaxPool2DOp"]


class MaxPool2DOp(Operation):
    """``y[n, c, i, j] = max`` of window ``(i, j)`` of channel ``c``; ``dx`` routes ``dy`` to
    each window's maximum (the first one if tied), adding where windows overlap.

    Parameters
    ----------
    size : int
        F.
    stride : int
        S.
    """

    pass_attrs = (*Operation.pass_attrs, "_idx")

    def __init__(self, size: int, stride: int) -> None:
        super().__init__()
        self.size = int(size)
        self.stride = int(stride)
        self._idx: np.ndarray | None = None

    def _check_input(self, input_: np.ndarray) -> None:
        if input_.ndim != 4 or input_.shape[2] < self.size or input_.shape[3] < self.size:
            raise ValueError(
                f"{self.name}: expected input (N, C, H, W) with H, W >= the window "
                f"{self.size}, got {input_.shape}"
            )

    def _output(self, inference: bool) -> np.ndarray:
        # an inference pass does not find where the maxima are: argmax() does, if asked
        y, self._idx = maxpool_forward(
            to_nhwc(self.input_), self.size, self.stride, need_idx=not inference
        )
        return y

    def argmax(self) -> np.ndarray:
        """``(N, C, OH, OW)`` int32: the flat pixel index ``h·W + w`` of each window's
        maximum in the last forward pass (found again from its input after an inference
        pass, which does not keep them)."""
        if self.output is None:
            raise RuntimeError(f"{self.name}.argmax called before forward")
        if self._idx is None:
            _, self._idx = maxpool_forward(to_nhwc(self.input_), self.size, self.stride)
        return self._idx

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        h, w = self.input_.shape[2:]
        dy = np.ascontiguousarray(output_grad)  # NCHW, as the forward output
        return from_nhwc(maxpool_backward(dy, self.argmax(), h, w, self.size, self.stride))
