"""Layers: sequences of operations that own their parameters and set themselves up lazily."""

from fastdl.layers.base import Layer
from fastdl.layers.conv import Conv2D
from fastdl.layers.dense import Dense
from fastdl.layers.embedding import Embedding
from fastdl.layers.flatten import Flatten
from fastdl.layers.pool import MaxPool2D
from fastdl.layers.recurrent import GRULayer, LSTMLayer, RNNLayer

__all__ = [
    "Layer",
    "Dense",
    "Flatten",
    "Conv2D",
    "MaxPool2D",
    "Embedding",
    "RNNLayer",
    "GRULayer",
    "LSTMLayer",
]
