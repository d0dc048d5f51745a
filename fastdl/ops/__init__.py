"""Operations: the book's smallest units, each a forward pass with its backward beside it."""

from fastdl.ops.activations import Identity, LeakyReLU, Linear, ReLU, Sigmoid, Tanh
from fastdl.ops.base import Operation, ParamOperation, check_same_shape
from fastdl.ops.batchnorm import BatchNormOp
from fastdl.ops.conv import Conv2DOp
from fastdl.ops.conv_transpose import Conv2DTransposeOp
from fastdl.ops.dense import BiasAdd, WeightMultiply
from fastdl.ops.dropout import Dropout
from fastdl.ops.embedding import EmbeddingLookup
from fastdl.ops.pool import MaxPool2DOp
from fastdl.ops.recurrent import GRULoop, LSTMLoop, RNNLoop
from fastdl.ops.reshape import Flatten

__all__ = [
    "Operation",
    "ParamOperation",
    "check_same_shape",
    "Identity",
    "Linear",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "WeightMultiply",
    "BiasAdd",
    "Dropout",
    "Flatten",
    "Conv2DOp",
    "Conv2DTransposeOp",
    "MaxPool2DOp",
    "BatchNormOp",
    "EmbeddingLookup",
    "RNNLoop",
    "GRULoop",
    "LSTMLoop",
]
