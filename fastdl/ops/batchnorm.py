"""BatchNormOp: batch normalisation over one channel axis, with running statistics.

Shapes: input ``x`` ``(N, C, H, W)`` (channel axis 1: ``BatchNorm2D``) or ``(N, D)`` /
``(N, T, D)`` (channel axis last: ``BatchNorm1D``); parameters ``gamma`` and ``beta`` ``(C,)``;
buffers ``running_mean``, ``running_var`` ``(C,)`` and ``num_batches_tracked`` (an int64
0-d array); output of the input's shape. The formulas and the kernels' ``(A, C, B)`` view
are in :mod:`fastdl.kernels.batchnorm`.

Memory layout: an NCHW input stored channels-last (``Conv2D``'s output) is normalised as
the rows of its ``(N·H·W, C)`` memory, a C-ordered one as its ``(N, C, H·W)`` planes, both
without a copy, and the output has the input's layout (so the next convolution or pooling
reads a channels-last output without a copy); other inputs are copied channels-last once.
The output gradient is brought to the input's layout (a copy only if it has another one).
"""

from __future__ import annotations

import math

import numpy as np

from fastdl.kernels.batchnorm import batchnorm_backward, batchnorm_forward, batchnorm_inference
from fastdl.ops.base import Operation

__all__ = ["BatchNormOp", "values_per_channel"]


def values_per_channel(shape: tuple[int, ...], channel_axis: int) -> int:
    """M: how many values each channel's statistics are taken over (all axes but the
    channel axis)."""
    return math.prod(shape) // shape[channel_axis]


def _kernel_view(x: np.ndarray, channel_axis: int, layout: str | None = None):
    """``x`` as the kernels' C-contiguous ``(A, C, B)`` array, its layout (``"rows"`` or
    ``"planes"``) and a function from such an array back to ``x``'s shape in that layout.

    ``layout`` forces one (the backward pass brings ``dy`` to the forward input's layout).
    """
    if channel_axis != 1 or x.ndim == 2:  # features last: (N, D) or (N, T, D)
        c = x.shape[-1]
        shape = x.shape
        return np.ascontiguousarray(x).reshape(-1, c, 1), "rows", lambda r: r.reshape(shape)
    n, c, h, w = x.shape
    nhwc = x.transpose(0, 2, 3, 1)
    if layout is None:
        layout = "planes" if x.flags.c_contiguous and not nhwc.flags.c_contiguous else "rows"
    if layout == "rows":
        rows = np.ascontiguousarray(nhwc).reshape(n * h * w, c, 1)
        return rows, "rows", lambda r: r.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    planes = np.ascontiguousarray(x).reshape(n, c, h * w)
    return planes, "planes", lambda r: r.reshape(n, c, h, w)


class BatchNormOp(Operation):
    """``y = γ · (x − μ) / √(σ² + ε) + β`` per channel (then ReLU, if fused).

    Training (``inference=False``) normalises with the batch's mean μ and biased variance σ²
    and moves the running statistics towards them, as PyTorch's ``BatchNorm``::

        running_mean = (1 − m) · running_mean + m · μ
        running_var  = (1 − m) · running_var  + m · σ² · M / (M − 1)   (unbiased)

    (``m`` the momentum; ``momentum=None`` is the cumulative average, ``m = 1 /
    num_batches_tracked``); inference normalises with the running statistics. Gradients:
    ``dβ = Σ dz``, ``dγ = Σ dz · x̂``, and ``dx`` through the batch statistics in training
    (:mod:`fastdl.kernels.batchnorm`), ``dx = γ / √(σ²_run + ε) · dz`` after an inference
    pass.

    Parameters
    ----------
    gamma, beta : ndarray, shape (C,)
        γ (scale) and β (shift), the learnt parameters.
    running_mean, running_var : ndarray, shape (C,)
        Updated in place by every training pass.
    num_batches_tracked : ndarray, shape (), int64
        Training passes so far, counted in place.
    momentum : float or None, default 0.1
    eps : float, default 1e-5
    channel_axis : {1, -1}, default 1
        1 for NCHW images, -1 for ``(N, D)`` and ``(N, T, D)`` features.
    relu : bool, default False
        Fuse a ReLU after the normalisation.
    """

    pass_attrs = (*Operation.pass_attrs, "_x", "_y", "_mean", "_var")

    def __init__(
        self,
        gamma: np.ndarray,
        beta: np.ndarray,
        running_mean: np.ndarray,
        running_var: np.ndarray,
        num_batches_tracked: np.ndarray,
        momentum: float | None = 0.1,
        eps: float = 1e-5,
        channel_axis: int = 1,
        relu: bool = False,
    ) -> None:
        super().__init__()
        self.gamma = gamma
        self.beta = beta
        self.running_mean = running_mean
        self.running_var = running_var
        self.num_batches_tracked = num_batches_tracked
        self.momentum = None if momentum is None else float(momentum)
        self.eps = float(eps)
        self.channel_axis = int(channel_axis)
        self.relu = bool(relu)
        self._x = self._y = self._mean = self._var = None  # kernel layout, for backward
        self._layout: str | None = None
        self._batch_stats = True

    def params(self) -> list[np.ndarray]:
        return [self.gamma, self.beta]

    def buffers(self) -> list[np.ndarray]:
        return [self.running_mean, self.running_var, self.num_batches_tracked]

    def _check_input(self, input_: np.ndarray) -> None:
        c = self.gamma.shape[0]
        if self.channel_axis == 1:
            ok, expected = input_.ndim == 4 and input_.shape[1] == c, f"(N, {c}, H, W)"
        else:
            ok, expected = (
                input_.ndim in (2, 3) and input_.shape[-1] == c,
                f"(N, {c}) or (N, T, {c})",
            )
        if not ok:
            raise ValueError(
                f"{self.name}: expected input {expected} for {c} channels, got {input_.shape}"
            )

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        """As :meth:`Operation.forward`; training refuses a batch with one value per
        channel, whose variance is undefined (and whose unbiased variance divides by 0)."""
        self._check_input(input_)
        if not inference and values_per_channel(input_.shape, self.channel_axis) < 2:
            raise ValueError(
                f"{self.name}: expected more than 1 value per channel when training, got input "
                f"shape {input_.shape}"
            )
        return super().forward(input_, inference)

    def _output(self, inference: bool) -> np.ndarray:
        x, self._layout, back = _kernel_view(self.input_, self.channel_axis)
        self._x = x
        self._batch_stats = not inference
        if inference:
            inv_std = 1.0 / np.sqrt(self.running_var + self.eps)
            scale = self.gamma * inv_std
            shift = self.beta - self.running_mean * scale
            self._mean, self._var = self.running_mean.copy(), self.running_var.copy()
            self._y = batchnorm_inference(x, scale, shift, self.relu)
            return back(self._y)
        self._y, self._mean, self._var = batchnorm_forward(
            x, self.gamma, self.beta, self.eps, self.relu
        )
        self._update_running(x.shape[0] * x.shape[2])
        return back(self._y)

    def _update_running(self, m: int) -> None:
        """Move the running statistics towards the batch's (PyTorch's update)."""
        self.num_batches_tracked += 1
        f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = self._var * (m / (m - 1))
        self.running_mean[...] = (1 - f) * self.running_mean + f * self._mean
        self.running_var[...] = (1 - f) * self.running_var + f * unbiased

    def _gradients(
        self, output_grad: np.ndarray, need_input_grad: bool
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """``dx`` (None when not needed) and ``[dγ, dβ]`` from one kernel call."""
        dy, _, back = _kernel_view(output_grad, self.channel_axis, self._layout)
        dx, dgamma, dbeta = batchnorm_backward(
            self._x, self._y, dy, self.gamma, self._mean, self._var, self.eps, self.relu,
            self._batch_stats, need_input_grad,
        )  # fmt: skip
        return (back(dx) if need_input_grad else None), [dgamma, dbeta]
