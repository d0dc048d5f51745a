"""Operations: the book's smallest units, each a forward pass with its backward beside it."""

from fastdl.ops.activations import LeakyReLU, Linear, ReLU, Sigmoid, Tanh
from fastdl.ops.base import Operation, ParamOperation, check_same_shape
from fastdl.ops.dense import BiasAdd, WeightMultiply
from fastdl.ops.dropout import Dropout
from fastdl.ops.reshape import Flatten

__all__ = [
    "Operation",
    "ParamOperation",
    "check_same_shape",
    "Linear",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "WeightMultiply",
    "BiasAdd",
    "Dropout",
    "Flatten",
]
