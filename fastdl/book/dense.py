"""The book's dense operations (``lincoln.dense``): fastdl's ``WeightMultiply`` and ``BiasAdd``.

``WeightMultiply(W)`` computes ``x @ W`` with ``W`` ``(D, H)``; ``BiasAdd(B)`` adds ``B``,
which may be the book's one-row ``(1, H)`` or fastdl's ``(H,)``; its gradient has ``B``'s
shape. Both run through fastdl's matrix-product kernel.
"""

from fastdl.ops.dense import BiasAdd, WeightMultiply

__all__ = ["WeightMultiply", "BiasAdd"]
