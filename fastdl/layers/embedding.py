"""Embedding: integer token ids ``(N, T)`` to learned vectors ``(N, T, E)``."""

from __future__ import annotations

import numpy as np

from fastdl._checks import positive_int
from fastdl.layers.base import Layer
from fastdl.layers.init import check_weight_init, init_weights
from fastdl.ops.embedding import EmbeddingLookup

__all__ = ["Embedding"]


class Embedding(Layer):
    """A lookup table of ``vocab_size`` vectors of size ``dim``: ``y = W[ids]``.

    Beyond the book, which feeds one-hot vectors to the first layer: ``Embedding(V, E)`` on
    ids equals a bias-free ``Dense(E)`` on their one-hot rows, without the multiplications.
    Token ids have no gradient, so ``backward`` returns None; this layer comes first.

    Parameters
    ----------
    vocab_size : int
        V; ids must lie in ``[0, V)``.
    dim : int
        ``E``.
    weight_init : {"standard", "glorot", "he"}, default "standard"
        ``"standard"`` draws N(0, 1), as PyTorch's ``nn.Embedding``.

    Shape
    -----
    - Input: integer ids of any shape ``S``, usually ``(N, T)``.
    - Output: ``S + (E,)``.
    - Parameters: ``W`` ``(V, E)``.

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> fd.Embedding(65, 16).forward(np.zeros((2, 5), np.int64)).shape
    (2, 5, 16)
    """

    float_input = False

    def __init__(self, vocab_size: int, dim: int, weight_init: str = "standard") -> None:
        super().__init__()
        self.vocab_size = positive_int("Embedding", "vocab_size", vocab_size)
        self.dim = positive_int("Embedding", "dim", dim)
        self.weight_init = check_weight_init("Embedding", weight_init)
        self.skip_input_grad = True

    def get_config(self) -> dict:
        return {"vocab_size": self.vocab_size, "dim": self.dim, "weight_init": self.weight_init}

    def _check_input(self, x: np.ndarray) -> None:
        super()._check_input(x)
        if not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"Embedding: expected integer token ids, got dtype {x.dtype}")
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= self.vocab_size:
            raise ValueError(
                f"Embedding: token ids must lie in [0, {self.vocab_size}), "
                f"got values in [{lo}, {hi}]"
            )

    def _setup_layer(self, x: np.ndarray) -> None:
        v, e = self.vocab_size, self.dim
        w = init_weights(self.rng, (v, e), v, e, self.weight_init, self.dtype)
        self.operations = [EmbeddingLookup(w)]

    def forward(self, x: np.ndarray, inference: bool = False) -> np.ndarray:
        """Ids ``S`` → vectors ``S + (E,)``."""
        return super().forward(np.ascontiguousarray(x), inference)

    def set_skip_input_grad(self, skip: bool) -> None:
        """Ids never have a gradient: the input gradient is always skipped."""
        super().set_skip_input_grad(True)
