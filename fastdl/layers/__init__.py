"""Layers: sequences of operations that own their parameters and set themselves up lazily."""

from fastdl.layers.base import Layer
from fastdl.layers.dense import Dense
from fastdl.layers.flatten import Flatten

__all__ = ["Layer", "Dense", "Flatten"]
