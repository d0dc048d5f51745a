"""EmbeddingLookup: token ids ``(N, T)`` to vectors ``(N, T, E)`` by a row gather.

Forward ``y = W[ids]``; backward ``dW[v] = Σ dy`` over the positions holding id ``v`` (a
scatter-add). Token ids have no gradient: ``backward`` returns None.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels.embedding import embedding_backward, embedding_forward
from fastdl.ops.base import ParamOperation, check_same_shape

__all__ = ["EmbeddingLookup"]


class EmbeddingLookup(ParamOperation):
    """``y = W[ids]``.

    Parameters
    ----------
    W : ndarray, shape (V, E)

    Shape: ids ``S`` (integer, in ``[0, V)``) → ``S + (E,)``.
    """

    def _output(self, inference: bool) -> np.ndarray:
        return embedding_forward(self.param, self.input_)

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise RuntimeError("EmbeddingLookup: token ids have no gradient (the layer skips it)")

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return embedding_backward(self.input_, output_grad, self.param.shape[0])

    def backward(self, output_grad: np.ndarray) -> None:
        """Set ``param_grad``; return None (integer input has no gradient)."""
        if self.output is None:
            raise RuntimeError(f"{self.name}.backward called before forward")
        check_same_shape(self.name, "output_grad", self.output, output_grad)
        self.input_grad = None
        self.param_grad = self._param_grad(np.ascontiguousarray(output_grad))
        return None
