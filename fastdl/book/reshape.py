"""The book's ``Flatten`` operation (``lincoln.reshape``): ``(N, ...) → (N, -1)``, fastdl's."""

from fastdl.ops.reshape import Flatten

__all__ = ["Flatten"]
