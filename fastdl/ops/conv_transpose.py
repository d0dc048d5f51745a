"""Conv2DTransposeOp: 2-D transposed convolution with bias on NCHW images, and its gradients.

Shapes: input ``x`` ``(N, C_in, H, W)``; weights ``W`` ``(C_in, C_out, KH, KW)`` (PyTorch's
``ConvTranspose2d`` layout); bias ``B`` ``(C_out,)``; output ``(N, C_out, OH, OW)`` with
``OH = (H - 1)·S - PT - PB + KH + OPH`` and ``OW = (W - 1)·S - PL - PR + KW + OPW`` (see
:mod:`fastdl.kernels.conv_transpose` for the notation).

As :class:`~fastdl.ops.conv.Conv2DOp`, the kernels compute channels-last and the output is
an NCHW-shaped view of channels-last memory, which the next convolution takes without a copy.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels.conv_transpose import (
    conv_transpose2d_backward,
    conv_transpose2d_forward,
    transposed_output_size,
)
from fastdl.ops.base import Operation
from fastdl.ops.conv import from_nhwc, to_nhwc

__all__ = ["Conv2DTransposeOp", "transposed_output_size"]


class Conv2DTransposeOp(Operation):
    """``y = conv_transpose2d(x, W) + B``: every input pixel adds a copy of the kernel, scaled
    by its value, onto the output (the adjoint of a convolution with the same ``W``).

    Gradients: ``dB = Σ dy`` over ``N, OH, OW``; ``dx`` is the convolution of ``dy`` with
    ``W`` (stride and padding as given); ``dW`` correlates ``dy``'s patches with ``x``.

    Parameters
    ----------
    W : ndarray, shape (C_in, C_out, KH, KW)
    B : ndarray, shape (C_out,)
    stride : int
    pad : tuple of 4 int
        ``(PT, PB, PL, PR)``, rows and columns cropped from the full output.
    output_padding : tuple of 2 int, default (0, 0)
        ``(OPH, OPW)``, rows added at the bottom and columns at the right; each < stride.
    """

    pass_attrs = (*Operation.pass_attrs, "_x", "_w")

    def __init__(
        self,
        W: np.ndarray,
        B: np.ndarray,
        stride: int,
        pad: tuple,
        output_padding: tuple = (0, 0),
    ) -> None:
        super().__init__()
        self.W = W
        self.B = B
        self.stride = int(stride)
        self.pad = tuple(int(p) for p in pad)
        self.output_padding = tuple(int(p) for p in output_padding)
        self._x: np.ndarray | None = None  # channels-last copies kept for backward
        self._w: np.ndarray | None = None

    def params(self) -> list[np.ndarray]:
        return [self.W, self.B]

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """``(OH, OW)`` for an ``h × w`` input (may be < 1; :meth:`_check_input` refuses it)."""
        kh, kw = self.W.shape[2:]
        return transposed_output_size(h, w, kh, kw, self.stride, self.pad, self.output_padding)

    def _check_input(self, input_: np.ndarray) -> None:
        c_in = self.W.shape[0]
        if input_.ndim != 4 or input_.shape[1] != c_in:
            raise ValueError(
                f"{self.name}: expected input (N, {c_in}, H, W) for weights {self.W.shape}, "
                f"got {input_.shape}"
            )
        oh, ow = self.output_size(*input_.shape[2:])
        if oh < 1 or ow < 1:
            raise ValueError(
                f"{self.name}: the output would be {oh}x{ow} (input {input_.shape}, weights "
                f"{self.W.shape}, stride {self.stride}, padding {self.pad}, output padding "
                f"{self.output_padding}); it must be at least 1x1"
            )

    def _output(self, inference: bool) -> np.ndarray:
        self._x = to_nhwc(self.input_)
        self._w = np.ascontiguousarray(self.W.transpose(2, 3, 1, 0))  # (KH, KW, C_out, C_in)
        y = conv_transpose2d_forward(
            self._x, self._w, self.B, self.stride, self.pad, self.output_padding
        )
        return from_nhwc(y)

    def _gradients(
        self, output_grad: np.ndarray, need_input_grad: bool
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """``dx`` (None when not needed) and ``[dW, dB]`` from one kernel call."""
        dy = to_nhwc(output_grad)
        dx, dw, db = conv_transpose2d_backward(
            self._x, self._w, dy, self.stride, self.pad, need_input_grad
        )
        dw = np.ascontiguousarray(dw.transpose(3, 2, 0, 1))  # back to (C_in, C_out, KH, KW)
        return (from_nhwc(dx) if need_input_grad else None), [dw, db]

    def flops(self) -> tuple[int, int]:
        """``(forward, backward)`` FLOPs for the last input: per image one
        ``(H·W, C_in) @ (C_in, K)`` product of the input with the weights, ``2·H·W·C_in·K``
        FLOPs (K = C_out·KH·KW; the kernel copies cropped by the padding included); backward
        the same again for ``dW`` (``im2col(dy)ᵀ @ x``) and, unless skipped, for ``dx``
        (``im2col(dy) @ W``)."""
        if self.output is None:
            raise RuntimeError(f"{self.name}.flops called before forward")
        product = 2 * self.input_.size * self.W[0].size  # 2 · N·H·W·C_in · K
        return product, product * (2 if self.needs_input_grad else 1)
