"""fastdl: the library of *Deep Learning from Scratch* (Seth Weidman), fast and proven correct.

The book's design — Operation → Layer → NeuralNetwork + Loss → Optimizer → Trainer — with the
hot paths compiled by numba, each beside a pure-NumPy twin (``FASTDL_PURE=1`` runs only the
twins).

Dimension symbols used in every docstring
-----------------------------------------
=======  =====================================
N        batch size (examples)
C_in     input channels
C_out    output channels
H, W     image height and width
KH, KW   kernel height and width
OH, OW   output height and width
T        time steps of a sequence
D        input features
H_hid    hidden units of a recurrent layer
M, K     rows and inner dimension of a matrix
         product ``(M, K) @ (K, N)``; for a
         convolution K = KH·KW·C_in (one patch)
P        output positions of a convolution, OH·OW
classes  classes (logits per example)
V, E     vocabulary size, embedding width
=======  =====================================
"""

from fastdl import augment, autodiff, book, callbacks, config, datasets, distributed, schedules
from fastdl.callbacks import Callback
from fastdl.config import set_num_threads
from fastdl.layers import (
    BatchNorm1D,
    BatchNorm2D,
    Conv2D,
    Conv2DTranspose,
    Dense,
    Embedding,
    Flatten,
    GRULayer,
    Layer,
    LSTMLayer,
    MaxPool2D,
    Reshape,
    RNNLayer,
)
from fastdl.losses import Loss, MeanSquaredError, SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.ops import (
    BiasAdd,
    Dropout,
    Identity,
    LeakyReLU,
    Linear,
    Operation,
    ParamOperation,
    ReLU,
    Sigmoid,
    Tanh,
    WeightMultiply,
)
from fastdl.optimizers import SGD, Adadelta, AdaGrad, Adam, AdamW, Optimizer, RMSprop, SGDMomentum
from fastdl.saving import ModelFileError, load, load_with_optimizer, register_layer
from fastdl.trainer import History, Trainer, TrainingDivergedError

__version__ = "0.1.0"

__all__ = [
    "augment",
    "autodiff",
    "book",
    "callbacks",
    "Callback",
    "config",
    "datasets",
    "distributed",
    "schedules",
    "set_num_threads",
    "Operation",
    "ParamOperation",
    "Identity",
    "Linear",
    "Sigmoid",
    "Tanh",
    "ReLU",
    "LeakyReLU",
    "WeightMultiply",
    "BiasAdd",
    "Dropout",
    "Layer",
    "Dense",
    "Flatten",
    "Reshape",
    "Conv2D",
    "Conv2DTranspose",
    "MaxPool2D",
    "BatchNorm1D",
    "BatchNorm2D",
    "Embedding",
    "RNNLayer",
    "GRULayer",
    "LSTMLayer",
    "Loss",
    "MeanSquaredError",
    "SoftmaxCrossEntropy",
    "NeuralNetwork",
    "Optimizer",
    "SGD",
    "SGDMomentum",
    "AdaGrad",
    "RMSprop",
    "Adam",
    "AdamW",
    "Adadelta",
    "Trainer",
    "History",
    "TrainingDivergedError",
    "load",
    "load_with_optimizer",
    "register_layer",
    "ModelFileError",
]
