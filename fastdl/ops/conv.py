"""Conv2DOp: 2-D convolution with bias (and a fused ReLU or tanh) on NCHW images, and its
gradients.

Shapes: input ``x`` ``(N, C_in, H, W)``; weights ``W`` ``(C_out, C_in, KH, KW)``; bias ``B``
``(C_out,)``; output ``(N, C_out, OH, OW)`` with ``OH = (H + PT + PB - KH) // S + 1`` and
``OW = (W + PL + PR - KW) // S + 1`` (see :mod:`fastdl.kernels.conv` for the notation).

The kernels compute channels-last. The output is an NCHW-shaped array whose memory is
channels-last (a transposed view, as PyTorch's ``channels_last`` memory format): it behaves
as any NCHW array for the user, and the next convolution or pooling takes it without a
copy. A C-ordered NCHW input is converted once. With ``channels_first=True`` (a layer that
flattens the output for a dense layer) a stride-1 convolution of at most
``PLANES_MAX_C_IN`` input channels writes a C-contiguous NCHW output instead
(:mod:`fastdl.kernels.conv_first`), which flattens without a copy; such a convolution can
also apply a tanh in its own passes (``tanh=True``, the book's layer).
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels.conv import PLANES_MAX_C_IN, conv2d_backward, conv2d_forward
from fastdl.kernels.conv_first import (
    conv2d_first_backward,
    conv2d_first_forward,
    runs_channels_first,
)
from fastdl.kernels.conv_pool import conv_pool_backward, conv_pool_forward
from fastdl.kernels.im2col import output_size
from fastdl.ops.base import Operation, check_same_shape

__all__ = ["Conv2DOp", "to_nhwc", "from_nhwc", "same_padding", "runs_channels_first"]


def to_nhwc(x: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` → C-contiguous ``(N, H, W, C)``; no copy for a channels-last view."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def from_nhwc(x: np.ndarray) -> np.ndarray:
    """``(N, H, W, C)`` → the ``(N, C, H, W)`` view of the same memory."""
    return x.transpose(0, 3, 1, 2)


def same_padding(h: int, w: int, kh: int, kw: int, stride: int) -> tuple[int, int, int, int]:
    """``(PT, PB, PL, PR)`` that give ``OH = ceil(H / S)``, ``OW = ceil(W / S)``.

    The rule of TensorFlow/Keras ``padding="same"`` (and, for stride 1, PyTorch's): the total
    padding along an axis is ``max((O - 1)·S + KH - I, 0)`` (KW along the width); the smaller half goes first, so
    an even kernel gets one more row at the bottom and one more column at the right.
    """
    pads = []
    for size, k in ((h, kh), (w, kw)):
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class Conv2DOp(Operation):
    """``y = conv2d(x, W) + B`` (cross-correlation, as in every deep-learning library).

    With ``relu=True``, ``y = max(conv2d(x, W) + B, 0)`` in one pass (the layer fuses its ReLU
    here); with ``tanh=True``, ``y = tanh(conv2d(x, W) + B)``. Gradients (``dz = dy · (y > 0)``
    with ReLU, ``dy · (1 − y²)`` with tanh, else ``dy``): ``dB = Σ dz`` over
    ``N, OH, OW``; ``dW`` correlates ``x`` with ``dz``; ``dx`` is the transposed convolution
    of ``dz`` with ``W``.

    Parameters
    ----------
    W : ndarray, shape (C_out, C_in, KH, KW)
    B : ndarray, shape (C_out,)
    stride : int
    pad : tuple of 4 int
        ``(PT, PB, PL, PR)``.
    relu : bool, default False
    channels_first : bool, default False
        Prefer a C-contiguous NCHW output (see the module's docstring); the same sums either
        way, up to rounding (another order).
    tanh : bool, default False
        Only with ``channels_first=True`` on a convolution that runs channels-first (stride 1,
        at most ``PLANES_MAX_C_IN`` input channels), and not with ``relu``.
    """

    pass_attrs = (*Operation.pass_attrs, "_x", "_w", "_y")

    def __init__(
        self,
        W: np.ndarray,
        B: np.ndarray,
        stride: int,
        pad: tuple,
        relu: bool = False,
        channels_first: bool = False,
        tanh: bool = False,
    ) -> None:
        super().__init__()
        if tanh and (relu or not channels_first or not runs_channels_first(stride, W.shape[1])):
            raise ValueError(
                "Conv2DOp: tanh=True needs relu=False, channels_first=True and a stride-1 "
                f"convolution of at most {PLANES_MAX_C_IN} input channels; got relu={relu}, "
                f"channels_first={channels_first}, stride {stride}, weights {W.shape}"
            )
        self.W = W
        self.B = B
        self.stride = int(stride)
        self.pad = tuple(int(p) for p in pad)
        self.relu = bool(relu)
        self.channels_first = bool(channels_first)
        self.tanh = bool(tanh)
        self._first = False  # whether the last forward pass ran channels-first
        self._x: np.ndarray | None = None  # channels-last copies kept for backward
        self._w: np.ndarray | None = None
        self._y: np.ndarray | None = None

    def params(self) -> list[np.ndarray]:
        return [self.W, self.B]

    def _check_input(self, input_: np.ndarray) -> None:
        c_out, c_in, kh, kw = self.W.shape
        pt, pb, pl, pr = self.pad
        if input_.ndim != 4 or input_.shape[1] != c_in:
            raise ValueError(
                f"{self.name}: expected input (N, {c_in}, H, W) for weights {self.W.shape}, "
                f"got {input_.shape}"
            )
        h, w = input_.shape[2] + pt + pb, input_.shape[3] + pl + pr
        if kh > h or kw > w:
            raise ValueError(
                f"{self.name}: kernel {kh}x{kw} is larger than the padded input {h}x{w} "
                f"(input {input_.shape}, padding {self.pad})"
            )

    def _output(self, inference: bool) -> np.ndarray:
        self._x = to_nhwc(self.input_)
        self._w = np.ascontiguousarray(self.W.transpose(2, 3, 1, 0))  # (KH, KW, C_in, C_out)
        self._first = self.channels_first and runs_channels_first(self.stride, self.W.shape[1])
        if self._first:
            self._y = conv2d_first_forward(self._x, self._w, self.B, self.pad, self.relu, self.tanh)
            return self._y
        self._y = conv2d_forward(self._x, self._w, self.B, self.stride, self.pad, self.relu)
        return from_nhwc(self._y)

    def _gradients(
        self, output_grad: np.ndarray, need_input_grad: bool
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """``dx`` (None when not needed) and ``[dW, dB]`` from one kernel call."""
        if self._first:
            dy = np.ascontiguousarray(output_grad)
            dx, dw, db = conv2d_first_backward(
                self._x, self._w, self._y, dy, self.pad, self.relu, need_input_grad, self.tanh
            )
        else:
            dy = to_nhwc(output_grad)
            dx, dw, db = conv2d_backward(
                self._x, self._w, self._y, dy, self.stride, self.pad, self.relu, need_input_grad
            )
        dw = np.ascontiguousarray(dw.transpose(3, 2, 0, 1))
        return (from_nhwc(dx) if need_input_grad else None), [dw, db]

    def forward_through_pool(self, input_: np.ndarray, pool) -> np.ndarray:
        """``forward(input_, inference=True)`` of this convolution (with its ReLU) and then of
        the max-pool ``pool`` on its output, in one pass (:func:`conv_pool_forward
        <fastdl.kernels.conv_pool.conv_pool_forward>`): the same outputs, with ``input_``,
        ``output`` and the pool's ``input_`` and ``output`` set as the two calls set them.
        Returns the pool's output.

        The network calls this in an inference pass for a ``Conv2D`` with ReLU followed by
        ``MaxPool2D`` (see :func:`fastdl.layers.pool.pools_in_one_pass`)."""
        self._check_input(input_)
        first = self.channels_first and runs_channels_first(self.stride, self.W.shape[1])
        if not self.relu or first:
            raise ValueError(
                f"{self.name}.forward_through_pool: the operation must have a fused ReLU and "
                "a channels-last output (channels_first=False, or a convolution that does "
                "not run channels-first)"
            )
        c_out, _, kh, kw = self.W.shape
        oh, ow = output_size(*input_.shape[2:], kh, kw, self.stride, self.pad)
        pool._check_input(np.empty((1, c_out, oh, ow), np.uint8))  # the pool's check, first
        self.input_ = input_
        self._x = to_nhwc(input_)
        self._w = np.ascontiguousarray(self.W.transpose(2, 3, 1, 0))
        self._first = False
        self._y, pooled = conv_pool_forward(
            self._x, self._w, self.B, self.stride, self.pad, pool.size, pool.stride
        )
        self.output = from_nhwc(self._y)
        pool.input_, pool._idx = self.output, None
        pool.output = pooled
        return pooled

    def backward_through_pool(self, pool, pooled_grad: np.ndarray) -> np.ndarray | None:
        """``backward`` of this convolution (with its ReLU) and of the max-pool ``pool`` that
        took its output, from the gradient of the pool's output ``(N, C_out, PH, PW)``, in
        one pass (:mod:`fastdl.kernels.conv_pool`): the same gradients as ``pool.backward``
        and then ``self.backward``, without the gradient of this operation's whole output,
        which is not made (``pool.input_grad`` stays None). Returns this operation's input
        gradient, as ``backward`` does.

        The network calls this for a ``Conv2D`` with ReLU followed by ``MaxPool2D`` (see
        :func:`fastdl.layers.pool.pooled_after`)."""
        if self.output is None or pool.output is None:
            raise RuntimeError(f"{self.name}.backward_through_pool called before forward")
        if not self.relu or self._first or pool.input_ is not self.output:
            raise ValueError(
                f"{self.name}.backward_through_pool: {pool.name} must have pooled this "
                "operation's output, and the operation must have a fused ReLU (and a "
                "channels-last output: channels_first=False)"
            )
        check_same_shape(pool.name, "output_grad", pool.output, pooled_grad)
        need_input_grad = self.needs_input_grad
        dx, dw, db = conv_pool_backward(
            self._x, self._w, self._y, np.ascontiguousarray(pooled_grad), pool.argmax(),
            self.stride, self.pad, pool.size, pool.stride, need_input_grad,
        )  # fmt: skip
        dw = np.ascontiguousarray(dw.transpose(3, 2, 0, 1))
        pool.input_grad = None
        dx = from_nhwc(dx) if need_input_grad else None
        return self._set_gradients(dx, [dw, db], need_input_grad)

    def flops(self) -> tuple[int, int]:
        """``(forward, backward)`` FLOPs for the last input: per image one ``(P, K) @ (K, C_out)``
        product of the patches (zero padding included) with the weights, ``2·P·K·C_out`` FLOPs
        (K = C_in·KH·KW); backward the same again for ``dW`` and, unless skipped, for ``dx``.
        Counted dense: the backward kernel may skip the zeros of a sparse gradient."""
        if self.output is None:
            raise RuntimeError(f"{self.name}.flops called before forward")
        product = 2 * self.output.size * self.W[0].size  # 2 · N·C_out·P · K
        return product, product * (2 if self.needs_input_grad else 1)
