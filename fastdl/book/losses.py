"""The book's losses (``lincoln.losses``): ``Loss``, ``MeanSquaredError``, ``SoftmaxCrossEntropy``.

``Loss`` is fastdl's base class, which already has the book's protocol (``forward(prediction,
target)`` returns the loss, ``backward()`` its gradient; subclasses write ``_output()`` and
``_input_grad()`` from ``self.prediction`` and ``self.target``), so a chapter-3 style loss
subclass works as written.

``MeanSquaredError(normalize=False)`` is the book's: the squared errors are *summed* over
the outputs and divided by the batch size, ``L = Σ (p − y)² / N``, ``dL/dp = 2(p − y)/N``
(fastdl's ``fd.MeanSquaredError`` takes the mean over outputs too, as PyTorch's does: with
10 outputs its gradients are 10× smaller). With ``normalize=True`` each prediction row is
divided by its sum first, as in the book — and, unlike the book, the gradient goes through
that division (the book returns the gradient with respect to the normalised row, as if the
division were not there).

``SoftmaxCrossEntropy(eps=1e-9)`` reports the true cross-entropy, ``−Σ y log softmax(z) / N``,
whose gradient is the ``(softmax(z) − y) / N`` the book also uses; the book's reported value
adds ``−Σ (1 − y) log(1 − softmax(z)) / N``, a term its gradient leaves out (so its printed
validation losses are larger than the cross-entropy). ``eps`` is accepted and not needed:
fastdl computes the log-softmax exactly instead of clipping probabilities to
``[eps, 1 − eps]``.
"""

from __future__ import annotations

import numpy as np

from fastdl import losses as _fd

__all__ = ["Loss", "MeanSquaredError", "SoftmaxCrossEntropy"]

Loss = _fd.Loss


class MeanSquaredError(_fd.MeanSquaredError):
    """The book's squared error: ``Σ (q − y)² / N`` with ``q = p`` or ``p / Σ_row p``.

    Parameters
    ----------
    normalize : bool, default False
        Divide each prediction row by its sum first (for positive outputs, e.g. sigmoids).

    Shape
    -----
    - prediction ``(N, K)``; target the same shape (or ``(N,)`` when K = 1).
    """

    def __init__(self, normalize: bool = False) -> None:
        if not isinstance(normalize, (bool, np.bool_)):
            raise TypeError(f"MeanSquaredError: normalize must be True or False, got {normalize!r}")
        self.normalize = bool(normalize)

    def get_config(self) -> dict:
        return {"normalize": self.normalize}

    def _output(self) -> float:
        p = self.prediction
        self._sums = None
        if self.normalize:
            sums = p.sum(axis=1, keepdims=True)
            if not np.all(sums != 0):
                raise ValueError(
                    "MeanSquaredError(normalize=True): a prediction row sums to 0 and cannot be "
                    "normalised (use positive outputs, e.g. Sigmoid)"
                )
            self._sums = sums
            p = p / sums
        self._q = p
        diff = p - self.target
        return float(np.sum(diff * diff)) / p.shape[0]

    def _input_grad(self) -> np.ndarray:
        q = self._q
        grad = (q - self.target) * (2.0 / q.shape[0])  # d L / d q
        if self._sums is not None:  # q = p / s: dL/dp_j = (dL/dq_j − Σ_k dL/dq_k · q_k) / s
            grad = (grad - (grad * q).sum(axis=1, keepdims=True)) / self._sums
        return grad


class SoftmaxCrossEntropy(_fd.SoftmaxCrossEntropy):
    """Softmax cross-entropy from logits (:class:`fastdl.SoftmaxCrossEntropy`), the book's
    signature.

    Parameters
    ----------
    eps : float, default 1e-9
        The book's probability clip; accepted, not needed (the log-softmax is exact).

    Shape
    -----
    - prediction (logits) ``(N, classes)``; target one-hot ``(N, classes)`` or labels ``(N,)``.
    """

    def __init__(self, eps: float = 1e-9) -> None:
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < 0.5:
            raise ValueError(f"SoftmaxCrossEntropy: eps must be a number in (0, 0.5), got {eps!r}")
        super().__init__()
        self.eps = float(eps)

    def get_config(self) -> dict:
        return {"eps": self.eps}
