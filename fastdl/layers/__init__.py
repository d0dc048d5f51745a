"""Layers: sequences of operations that own their parameters and set themselves up lazily."""

from fastdl.layers.base import Layer
from fastdl.layers.batchnorm import BatchNorm1D, BatchNorm2D
from fastdl.layers.conv import Conv2D
from fastdl.layers.conv_transpose import Conv2DTranspose
from fastdl.layers.dense import Dense
from fastdl.layers.embedding import Embedding
from fastdl.layers.flatten import Flatten
from fastdl.layers.pool import MaxPool2D
from fastdl.layers.recurrent import GRULayer, LSTMLayer, RNNLayer
from fastdl.layers.reshape import Reshape

__all__ = [
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
]
