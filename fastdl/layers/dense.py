"""Dense: a fully connected layer, ``y = activation(x @ W + B)``, with optional dropout."""

from __future__ import annotations

import numpy as np

from fastdl._checks import check_activation, check_keep_prob, positive_int
from fastdl.layers.base import Layer
from fastdl.layers.init import check_weight_init, init_weights
from fastdl.ops.base import Operation
from fastdl.ops.dense import BiasAdd, WeightMultiply
from fastdl.ops.dropout import Dropout

__all__ = ["Dense"]


class Dense(Layer):
    """Fully connected layer: ``y = activation(x @ W + B)``, then dropout while training.

    Parameters
    ----------
    neurons : int
        Output features H.
    activation : Operation, default ``Linear()``
        Applied after the bias (Keras's default is linear too; the book's is ``Sigmoid()``).
    dropout : float, default 1.0
        Keep probability, as in the book (1.0 = no dropout); inverted scaling while training.
    weight_init : {"glorot", "he", "standard"}, default "glorot"
        See :mod:`fastdl.layers.init`. Biases start at zero (as in Keras).

    Shape
    -----
    - Input: ``(N, D)``, or ``(N, T, D)`` (mapped on the last axis).
    - Output: ``(N, H)`` or ``(N, T, H)``.
    - Parameters: ``W`` ``(D, H)``, ``B`` ``(H,)``.

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> layer = fd.Dense(neurons=4, activation=fd.Tanh())
    >>> layer.forward(np.ones((2, 3), dtype=np.float32)).shape
    (2, 4)
    """

    def __init__(
        self,
        neurons: int,
        activation: Operation | None = None,
        dropout: float = 1.0,
        weight_init: str = "glorot",
    ) -> None:
        super().__init__()
        self.neurons = positive_int("Dense", "neurons", neurons)
        self.dropout = check_keep_prob("Dense", "dropout", dropout)
        self.activation = check_activation("Dense", activation)
        self.weight_init = check_weight_init("Dense", weight_init)
        self.in_features: int | None = None

    def get_config(self) -> dict:
        return {"neurons": self.neurons, "activation": self.activation,
                "dropout": self.dropout, "weight_init": self.weight_init}  # fmt: skip

    def _check_input(self, x: np.ndarray) -> None:
        super()._check_input(x)
        if x.ndim not in (2, 3):
            raise ValueError(f"Dense: expected input (N, D) or (N, T, D), got shape {x.shape}")
        if self.in_features is not None and x.shape[-1] != self.in_features:
            raise ValueError(
                f"Dense: expected {self.in_features} input features (last axis), "
                f"got shape {x.shape}"
            )

    def _setup_layer(self, x: np.ndarray) -> None:
        d = x.shape[-1]
        self.in_features = d
        w = init_weights(self.rng, (d, self.neurons), d, self.neurons, self.weight_init, self.dtype)
        b = np.zeros(self.neurons, dtype=self.dtype)
        self.operations = [WeightMultiply(w), BiasAdd(b), self.activation]
        if self.dropout < 1.0:
            self.operations.append(Dropout(self.dropout, rng=self.rng))

    def reset(self) -> None:
        super().reset()
        self.in_features = None
