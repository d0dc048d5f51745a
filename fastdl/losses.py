"""Losses: MeanSquaredError and SoftmaxCrossEntropy (from logits, integer or one-hot labels,
optionally with label smoothing).

A loss takes the network's prediction and the target, returns the loss as a Python float
(``forward``), and then the gradient of that same number with respect to the prediction
(``backward``). Both check their input before any arithmetic.
"""

from __future__ import annotations

import abc
import math

import numpy as np

from fastdl._checks import native
from fastdl.kernels.softmax import log_softmax, softmax_ce_backward, softmax_ce_forward
from fastdl.ops.base import check_same_shape, release_attrs

__all__ = ["Loss", "MeanSquaredError", "SoftmaxCrossEntropy"]


class Loss(abc.ABC):
    """Base class: ``forward(prediction, target) -> float``, then ``backward() -> ndarray``."""

    @property
    def name(self) -> str:
        return type(self).__name__

    def get_config(self) -> dict:
        """The constructor's arguments that rebuild this loss."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{self.name}({args})"

    #: What ``forward`` keeps for ``backward``, dropped by :meth:`release`.
    pass_attrs: tuple[str, ...] = ("prediction", "target")

    def release(self, min_bytes: int = 0) -> None:
        """Drop what the last ``forward`` kept (as :meth:`Operation.release
        <fastdl.ops.base.Operation.release>`, ``min_bytes`` as there); ``backward`` then
        raises until the next."""
        release_attrs(self, self.pass_attrs, min_bytes)

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
        if getattr(self, "prediction", None) is None:
            raise RuntimeError(f"{self.name}.backward called before forward")
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


# Label smoothing ε with integer labels, around the kernels' outputs. The smoothed target
# (1−ε)·onehot(y) + ε/K gives
#     L = (1−ε)·CE(y) + ε·U,   U = mean over rows of  −(1/K) Σ_k log p_k = lse − mean_k z_k,
# with lse = log Σ_k exp z_k. The kernel returns CE(y) and p, and lse = max z − log max p
# (p is largest where z is, and max p ≥ 1/K, so its log is well conditioned; p's rounding
# costs ~1e-7 in float32): three reductions instead of a second log-softmax. The gradient is
#     dL/dz = (p − (1−ε)·onehot(y) − ε/K) / M.
# For a (64, 10) float32 batch the forward pass costs ~20 µs more than the kernel alone and
# the backward ~5 µs more: far below a training step of any network.


def _smoothed_forward(z, y, eps: float) -> tuple[float, np.ndarray]:
    """Mean smoothed cross-entropy of logits ``z`` (M, classes) against integer labels
    ``y`` (M,), and ``softmax(z)``."""
    ce, p = softmax_ce_forward(z, y)
    lse_sum = z.max(axis=1).sum(dtype=np.float64) - np.log(p.max(axis=1)).sum(dtype=np.float64)
    uniform = lse_sum / z.shape[0] - z.mean(dtype=np.float64)
    return (1.0 - eps) * ce + eps * float(uniform), p


def _smoothed_backward(p, y, eps: float) -> np.ndarray:
    """d(mean smoothed cross-entropy)/dz ``(M, classes)`` from ``p`` and integer ``y``."""
    m, k = p.shape
    one = p.dtype.type
    grad = p * one(1.0 / m)
    grad -= one(eps / (k * m))
    grad[np.arange(m), y] -= one((1.0 - eps) / m)
    return grad


class SoftmaxCrossEntropy(Loss):
    """Softmax cross-entropy from logits: the mean over examples of ``-log softmax(z)[y]``.

    ``torch.nn.CrossEntropyLoss`` (``reduction="mean"``), label smoothing included.

    With ``M`` the number of examples (``N``, or ``N·T`` for sequences) and ``p = softmax(z)``:
    ``L = -(1/M) Σ_m Σ_k y_mk log p_mk`` and ``dL/dz = (p·Σ_k y_mk - y) / M``, which is
    ``(p - y) / M`` for one-hot labels — the gradient of exactly the number reported (the book reports a different number from the one it differentiates).
    ``log p`` is computed as ``z - max(z) - log Σ exp(z - max(z))``, which cannot overflow.

    Shape
    -----
    - prediction (logits): ``(N, classes)`` or ``(N, T, classes)``.
    - target: integer class ids ``(N,)`` / ``(N, T)`` in ``[0, classes)``, or one-hot (or soft)
      labels of the logits' shape, each row non-negative and summing to 1.

    Parameters
    ----------
    label_smoothing : float, default 0.0
        ε in [0, 1): the target becomes ``(1 − ε)·y + ε/classes`` (for integer labels
        ``y = onehot``, for one-hot or soft labels the given rows), as PyTorch's
        ``CrossEntropyLoss(label_smoothing=ε)`` and Keras's ``CategoricalCrossentropy``. The loss
        reported — in training and in ``Trainer.evaluate`` — is the smoothed one, as theirs
        is; accuracy is unaffected. With integer labels it is computed as
        ``(1 − ε)·CE(y) + ε·mean_k(−log p_k)``, with gradient ``(p − target) / M``.

    Examples
    --------
    >>> import numpy as np
    >>> import fastdl as fd
    >>> loss = fd.SoftmaxCrossEntropy(label_smoothing=0.1)
    >>> round(loss.forward(np.array([[2.0, 0.0, -1.0]]), np.array([0])), 6)
    0.336513
    """

    pass_attrs = (*Loss.pass_attrs, "_probs")

    #: The class's default: a subclass whose ``__init__`` does not call this one's smooths nothing.
    label_smoothing: float = 0.0

    def __init__(self, label_smoothing: float = 0.0) -> None:
        eps = label_smoothing
        if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
            raise TypeError(
                f"SoftmaxCrossEntropy: label_smoothing must be a number, got {label_smoothing!r}"
            )
        if not (math.isfinite(eps) and 0.0 <= eps < 1.0):
            raise ValueError(
                f"SoftmaxCrossEntropy: label_smoothing must be in [0, 1), got {label_smoothing}"
            )
        self.label_smoothing = float(eps)

    def get_config(self) -> dict:
        return {"label_smoothing": self.label_smoothing}

    def __repr__(self) -> str:
        """``SoftmaxCrossEntropy()``, or with ``label_smoothing=ε`` when ε is not 0."""
        return super().__repr__() if self.label_smoothing else f"{self.name}()"

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
        target, eps = self._rows(self.target, z.shape[0]), self.label_smoothing
        if eps and np.issubdtype(target.dtype, np.integer):
            loss, self._probs = _smoothed_forward(z, target, eps)
        else:
            loss, self._probs = _cross_entropy_forward(z, self._smoothed(target))
        return loss

    def _input_grad(self) -> np.ndarray:
        p = self._probs
        target, eps = self._rows(self.target, p.shape[0]), self.label_smoothing
        if eps and np.issubdtype(target.dtype, np.integer):
            grad = _smoothed_backward(p, target, eps)
        else:
            grad = _cross_entropy_backward(p, self._smoothed(target))
        return grad.reshape(self.prediction.shape)

    def _smoothed(self, target: np.ndarray) -> np.ndarray:
        """Soft or one-hot rows ``(M, classes)`` smoothed: ``(1 − ε)·y + ε/classes``
        (integer labels and ε = 0 pass through)."""
        eps = self.label_smoothing
        if not eps or np.issubdtype(target.dtype, np.integer):
            return target
        one = target.dtype.type
        smoothed = target * one(1.0 - eps)
        smoothed += one(eps / target.shape[1])
        return smoothed

    @staticmethod
    def _rows(target: np.ndarray, m: int) -> np.ndarray:
        """Labels as one row per example: ``(M,)`` integers or ``(M, classes)`` floats."""
        return (
            target.reshape(m) if np.issubdtype(target.dtype, np.integer) else target.reshape(m, -1)
        )
