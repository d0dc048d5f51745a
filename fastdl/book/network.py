"""The book's ``NeuralNetwork(layers, loss, seed=1)`` (``lincoln.network``), fastdl's network.

Book defaults: the network computes in float64 (as the book's NumPy code does; fastdl's
default is float32), ``loss`` defaults to the book's ``MeanSquaredError()``, and ``seed``
(default 1) is handed to every layer as ``layer.seed``, which the book's ``Dense`` uses to
reseed NumPy's global generator before drawing its weights. The same seed also seeds the
network's own ``numpy.random.Generator``, which draws the dropout masks.

Everything else is :class:`fastdl.NeuralNetwork`: the same passes, shape checks, ``save``,
``summary`` and kernels. The book's extra methods are here: ``forward_loss``,
``train_batch(..., inference=False)`` and iteration over the layers.
"""

from __future__ import annotations

import numpy as np

from fastdl import network as _fd
from fastdl.book.losses import Loss, MeanSquaredError

__all__ = ["NeuralNetwork"]


class NeuralNetwork(_fd.NeuralNetwork):
    """The layers, run in order, then a loss; float64 by default.

    Parameters
    ----------
    layers : list of Layer
    loss : Loss, default ``MeanSquaredError()``
        An instance; a Loss class (the book's default was the class) is instantiated.
    seed : int or None, default 1
        Set as ``layer.seed`` on every layer, and seeds the network's generator (dropout).
    dtype : float64 (default) or float32
    """

    def __init__(self, layers, loss=None, seed: int | None = 1, dtype=np.float64) -> None:
        if loss is None:
            loss = MeanSquaredError()
        elif isinstance(loss, type) and issubclass(loss, Loss):
            loss = loss()
        super().__init__(layers, loss, seed=seed, dtype=dtype)
        if seed is not None:
            for layer in self.layers:
                layer.seed = seed

    def __iter__(self):
        return iter(self.layers)

    def forward_loss(
        self, X_batch: np.ndarray, y_batch: np.ndarray, inference: bool = False
    ) -> float:
        """The loss of the network's prediction for ``X_batch`` against ``y_batch``."""
        return self.loss.forward(self.forward(X_batch, inference), y_batch)

    def train_batch(self, X_batch: np.ndarray, y_batch: np.ndarray, inference: bool = False,
                    after_layer=None) -> float:  # fmt: skip
        """Forward, loss and backward on a batch; returns the loss (the book's
        ``inference=True`` runs the forward pass without dropout)."""
        if not inference:
            return super().train_batch(X_batch, y_batch, after_layer)
        loss = self.forward_loss(X_batch, y_batch, inference=True)
        self.backward(self.loss.backward(), after_layer)
        return loss
