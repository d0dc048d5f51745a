"""The book's convolution operation, ``Conv2D_Op(W)`` (``lincoln.conv``), on fastdl's kernels.

The book's convolution has no bias, stride 1, and pads ``K // 2`` zeros on every side; its
parameter is laid out ``(C_in, C_out, K, K)`` (fastdl's and PyTorch's layout is
``(C_out, C_in, K, K)``). ``Conv2D_Op`` keeps the book's parameter and layout and computes
with fastdl's compiled convolution (:class:`fastdl.ops.conv.Conv2DOp`) on a transposed view
of it, so the optimizer's in-place updates of ``param`` are what the kernel sees.

The book's own gradients disagree with finite differences — by more than the gradient's own
size, even with one channel: its ``_input_grad`` correlates the output gradient with the
kernel unflipped, and its ``_param_grad`` reshapes the patches ``(P, N, ...)`` to rows in
another order than the output gradient ``(N, P, ...)``. fastdl's are proven by gradient
checks (``tests/book/``).

Shapes: input ``(N, C_in, H, W)``; ``param`` ``(C_in, C_out, K, K)``; output
``(N, C_out, OH, OW)`` with ``OH = H + 2·(K // 2) − K + 1`` (``H`` for an odd ``K``).
"""

from __future__ import annotations

import numpy as np

from fastdl.ops.conv import Conv2DOp

__all__ = ["Conv2D_Op"]


class Conv2D_Op(Conv2DOp):  # noqa: N801 (the book's name)
    """The book's bias-free, stride-1, ``K // 2``-padded convolution.

    Parameters
    ----------
    W : ndarray, shape (C_in, C_out, K, K)
        The book's layout; kept as ``self.param`` and updated in place by optimizers.
    relu : bool, default False
        Fuse a ReLU after the convolution (as fastdl's ``Conv2D`` does with a ReLU).
    """

    def __init__(self, W: np.ndarray, relu: bool = False) -> None:
        if not isinstance(W, np.ndarray) or W.ndim != 4 or W.shape[2] != W.shape[3]:
            shape = W.shape if isinstance(W, np.ndarray) else type(W).__name__
            raise ValueError(
                f"Conv2D_Op: expected a parameter (C_in, C_out, K, K) with a square kernel, "
                f"got {shape}"
            )
        self.param = W
        self.param_size = W.shape[2]
        self.param_pad = self.param_size // 2
        pad = (self.param_pad,) * 4
        # fastdl's operation computes with W (C_out, C_in, K, K): a view of the book's array.
        super().__init__(W.transpose(1, 0, 2, 3), np.zeros(W.shape[1], W.dtype), 1, pad, relu)

    @property
    def param_grad(self) -> np.ndarray | None:
        """The gradient with respect to ``param`` ``(C_in, C_out, K, K)``."""
        return self.param_grads()[0]

    def params(self) -> list[np.ndarray]:
        return [self.param]

    def _gradients(self, output_grad, need_input_grad):
        input_grad, (dw, _db) = super()._gradients(output_grad, need_input_grad)
        return input_grad, [np.ascontiguousarray(dw.transpose(1, 0, 2, 3))]
