"""The two parameter operations of a dense layer: WeightMultiply and BiasAdd.

Shapes: input ``(..., D)``; weight ``W`` ``(D, H)``; bias ``B`` ``(H,)`` (or the book's
``(1, H)``); output ``(..., H)``.
A 2-D input ``(N, D)`` is the usual case; a 3-D input ``(N, T, D)`` is mapped on its last axis,
so a dense layer can follow a recurrent one. The products go through
:func:`fastdl.kernels.matmul.matmul`, which splits them over fastdl's threads.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels.matmul import matmul
from fastdl.ops.base import ParamOperation

__all__ = ["WeightMultiply", "BiasAdd"]


class WeightMultiply(ParamOperation):
    """``y = x @ W``.

    Gradients: ``dx = dy @ Wᵀ``; ``dW = Σ xᵀ dy`` over every leading axis of ``x``.

    Parameters
    ----------
    W : ndarray, shape (D, H)
    """

    def _check_input(self, input_: np.ndarray) -> None:
        d = self.param.shape[0]
        if input_.ndim < 1 or input_.shape[-1] != d:
            raise ValueError(
                f"WeightMultiply: expected input (..., {d}) for W {self.param.shape}, got {input_.shape}"
            )

    def _output(self, inference: bool) -> np.ndarray:
        d, h = self.param.shape
        x = self.input_.reshape(-1, d)  # (N, D), or (N·T, D) for sequences
        return matmul(x, self.param, False, False).reshape(*self.input_.shape[:-1], h)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        d, h = self.param.shape
        dx = matmul(output_grad.reshape(-1, h), self.param, False, True)  # dy @ Wᵀ
        return dx.reshape(self.input_.shape)

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        d, h = self.param.shape
        return matmul(self.input_.reshape(-1, d), output_grad.reshape(-1, h), True, False)

    def flops(self) -> tuple[int, int]:
        """``(forward, backward)`` FLOPs for the last input: ``x @ W`` forward, ``xᵀ dy`` and
        (unless skipped) ``dy Wᵀ`` backward; each ``(M, D) @ (D, H)`` with M the rows of
        ``x`` (N, or N·T), ``2·M·D·H`` FLOPs."""
        if self.input_ is None:
            raise RuntimeError(f"{self.name}.flops called before forward")
        d, h = self.param.shape
        product = 2 * (self.input_.size // d) * d * h
        return product, product * (2 if self.needs_input_grad else 1)


class BiasAdd(ParamOperation):
    """``y = x + B``, broadcast over every leading axis.

    Gradients: ``dx = dy``; ``dB = Σ dy`` over every leading axis, shaped like ``B``.

    Parameters
    ----------
    B : ndarray, shape (H,) or (1, H)
        The book writes its biases as one row, ``(1, H)``; fastdl's layers use ``(H,)``.
    """

    def __init__(self, B: np.ndarray) -> None:
        if not isinstance(B, np.ndarray) or not (B.ndim == 1 or (B.ndim == 2 and B.shape[0] == 1)):
            shape = B.shape if isinstance(B, np.ndarray) else type(B).__name__
            raise ValueError(f"BiasAdd: expected a bias of shape (H,) or (1, H), got {shape}")
        super().__init__(B)

    def _check_input(self, input_: np.ndarray) -> None:
        h = self.param.shape[-1]
        if input_.ndim < 1 or input_.shape[-1] != h:
            raise ValueError(
                f"BiasAdd: expected input (..., {h}) for B {self.param.shape}, got {input_.shape}"
            )

    def _output(self, inference: bool) -> np.ndarray:
        return self.input_ + self.param

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return output_grad.reshape(-1, self.param.shape[-1]).sum(axis=0).reshape(self.param.shape)
