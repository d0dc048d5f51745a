"""Losses: MeanSquaredError and SoftmaxCrossEntropy (from logits, integer or one-hot labels).

A loss takes the network's prediction and the target, returns the loss as a Python float
(``forward``), and then the gradient of that same number with respect to the prediction
(``backward``). Both check their input before any arithmetic.
"""

from __future__ import annotations

import abc

import numpy as np

from fastdl._checks import native
from fastdl.kernels.softmax import log_softmax, softmax_ce_backward, softmax_ce_forward
from fastdl.ops.base import check_same_shape

__all__ = ["Loss", "MeanSquaredError", "SoftmaxCrossEntropy"]


class Loss(abc.ABC):
    """Base class: ``forward(prediction, target) -> float``, then ``backward() -> ndarray``."""

    @property
    def name(self) -> str:
        return type(self).__name__

    def get_config(self) -> dict:
        """The constructor's arguments that rebuild this loss ({} for fastdl's own)."""
        return {}

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        """Return the loss of ``prediction`` against ``target`` (validated first)."""
        if not isinstance(prediction, np.ndarray) or not isinstance(target, np.ndarray):
            raise TypeError(f"{self.name}: prediction and target must be numpy arrays")
        if prediction.size == 0:
            raise ValueError(f"{self.name}: got an empty prediction of shape {prediction.shape}")
        self.prediction = native(prediction)
        self.target = self._check_target(self.prediction, native(target))
        return float(self._output())

    def backward(self) -> np.ndarray:
        """Return d(loss)/d(prediction), shaped like the prediction."""
        grad = self._input_grad()
        check_same_shape(self.name, "input_grad", self.prediction, grad)
        return grad

    def _check_target(self, prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Validate ``target`` against ``prediction``; return it in the form ``_output`` uses."""
        check_same_shape(self.name, "target", prediction, target)
        return target

    @abc.abstractmethod
    def _output(self) -> float:
        """The loss from ``self.prediction`` and ``self.target``."""

    @abc.abstractmethod
    def _input_grad(self) -> np.ndarray:
        """d(loss)/d(prediction)."""


class MeanSquaredError(Loss):
    """``L = mean((p - y)²)`` over every element (as PyTorch's ``MSELoss``); ``dL/dp = 2(p - y)/n``.

    The book divides the sum by the batch size only; for one output per example that is the
    same number.

    Shape
    -----
    - prediction: ``(N, ...)``; target: the same shape, or ``(N,)`` when prediction is
      ``(N, 1)`` (a regression target vector is taken as one column).
    """

    def _check_target(self, prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
        if not np.issubdtype(target.dtype, np.number) or np.issubdtype(
            target.dtype, np.complexfloating
        ):
            raise TypeError(
                f"MeanSquaredError: target must be real numbers, got dtype {target.dtype}"
            )
        if target.ndim == 1 and prediction.shape == (target.shape[0], 1):
            target = target.reshape(-1, 1)
        check_same_shape(self.name, "target", prediction, target)
        return target.astype(prediction.dtype, copy=False)

    def _output(self) -> float:
        diff = self.prediction - self.target
        return np.mean(diff * diff)

    def _input_grad(self) -> np.ndarray:
        return (self.prediction - self.target) * (2.0 / self.prediction.size)


# The arithmetic of softmax cross-entropy. Integer labels (the usual case) go through the
# kernels of fastdl.kernels.softmax; soft or one-hot float labels are handled here in NumPy.
# Shapes: logits z (M, classes); labels (M,) integers or (M, classes) floats with rows
# summing to 1; M is N or N·T.


def _cross_entropy_forward(z: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over rows of ``−Σ_k target_k log softmax(z)_k``, and ``softmax(z)`` ``(M, classes)``."""
    if np.issubdtype(target.dtype, np.integer):
        return softmax_ce_forward(z, target)
    log_p = log_softmax(z)
    loss = -(target * log_p).sum(dtype=np.float64) / z.shape[0]
    return float(loss), np.exp(log_p)


def _cross_entropy_backward(p: np.ndarray, target: np.ndarray) -> np.ndarray:
    """d(mean cross-entropy)/dz ``(M, classes)`` from the forward pass's probabilities ``p``."""
    if np.issubdtype(target.dtype, np.integer):
        return softmax_ce_backward(p, target)
    # d/dz of −Σ y log softmax(z) is p·Σy − y: exactly p − y only for rows summing to 1.
    grad = p * target.sum(axis=1, keepdims=True) - target
    grad *= 1.0 / p.shape[0]
    return grad


class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy from logits: the mean over examples of ``-log softmax(z)[y]``.

    With ``M`` the number of examples (``N``, or ``N·T`` for sequences) and ``p = softmax(z)``:
    ``L = -(1/M) Σ_m Σ_k y_mk log p_mk`` and ``dL/dz = (p·Σ_k y_mk - y) / M``, which is
    ``(p - y) / M`` for one-hot labels — the gradient of exactly the number reported (the book reports a different number from the one it differentiates).
    ``log p`` is computed as ``z - max(z) - log Σ exp(z - max(z))``, which cannot overflow.

    Shape
    -----
    - prediction (logits): ``(N, classes)`` or ``(N, T, classes)``.
    - target: integer class ids ``(N,)`` / ``(N, T)`` in ``[0, classes)``, or one-hot (or soft)
      labels of the logits' shape, each row non-negative and summing to 1.
    """

    def _check_target(self, prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
        if prediction.ndim not in (2, 3):
            raise ValueError(
                f"SoftmaxCrossEntropy: expected logits (N, classes) or (N, T, classes), got shape {prediction.shape}"
            )
        k = prediction.shape[-1]
        if np.issubdtype(target.dtype, np.integer):
            if target.shape != prediction.shape[:-1]:
                raise ValueError(
                    f"SoftmaxCrossEntropy: integer labels must have shape {prediction.shape[:-1]} "
                    f"for logits {prediction.shape}, got {target.shape}"
                )
            lo, hi = int(target.min()), int(target.max())
            if lo < 0 or hi >= k:
                raise ValueError(
                    f"SoftmaxCrossEntropy: labels must be in [0, {k}) for {k} classes, "
                    f"got values in [{lo}, {hi}]"
                )
            return target
        if np.issubdtype(target.dtype, np.floating):
            if target.shape != prediction.shape:
                raise ValueError(
                    f"SoftmaxCrossEntropy: one-hot labels must have the logits' shape "
                    f"{prediction.shape}, got {target.shape} (integer labels need an integer dtype)"
                )
            sums = target.sum(axis=-1, dtype=np.float64)
            if not np.all(target >= 0) or not np.allclose(sums, 1.0, atol=1e-3):
                raise ValueError(
                    "SoftmaxCrossEntropy: one-hot labels must be non-negative with rows summing to 1"
                )
            return target.astype(prediction.dtype, copy=False)
        raise TypeError(
            f"SoftmaxCrossEntropy: labels must be integers or floats, got dtype {target.dtype}"
        )

    def _output(self) -> float:
        z = self.prediction.reshape(-1, self.prediction.shape[-1])
        loss, self._probs = _cross_entropy_forward(z, self._rows(self.target, z.shape[0]))
        return loss

    def _input_grad(self) -> np.ndarray:
        p = self._probs
        grad = _cross_entropy_backward(p, self._rows(self.target, p.shape[0]))
        return grad.reshape(self.prediction.shape)

    @staticmethod
    def _rows(target: np.ndarray, m: int) -> np.ndarray:
        """Labels as one row per example: ``(M,)`` integers or ``(M, classes)`` floats."""
        return (
            target.reshape(m) if np.issubdtype(target.dtype, np.integer) else target.reshape(m, -1)
        )
