"""EmbeddingLookup: token ids ``(N, T)`` to vectors ``(N, T, E)`` by a row gather.

Forward ``y = W[ids]``; backward ``dW[v] = Σ dy`` over the positions holding id ``v`` (a
scatter-add). Token ids have no gradient: ``backward`` returns None.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels.embedding import embedding_backward, embedding_forward
from fastdl.ops.base import ParamOperation

__all__ = ["EmbeddingLookup"]


class EmbeddingLookup(ParamOperation):
    """``y = W[ids]``.

    Parameters
    ----------
    W : ndarray, shape (V, E)

    Shape: ids ``S`` (integer, in ``[0, V)``) → ``S + (E,)``.
    """

    integer_input = True

    def _output(self, inference: bool) -> np.ndarray:
        return embedding_forward(self.param, self.input_)

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return embedding_backward(
            self.input_, np.ascontiguousarray(output_grad), self.param.shape[0]
        )
