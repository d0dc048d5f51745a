"""fastdl.book's classes in the registries of :mod:`fastdl.saving`, under ``book.`` names, so
that ``net.save(path)`` and ``fd.load(path)`` keep a book network a book network."""

from fastdl import saving
from fastdl.book import layers, losses, network, optimizers

for _cls in (layers.Dense, layers.Conv2D):
    saving.LAYERS[f"book.{_cls.__name__}"] = _cls
for _cls in (losses.MeanSquaredError, losses.SoftmaxCrossEntropy):
    saving.LOSSES[f"book.{_cls.__name__}"] = _cls
saving.NETWORKS["book.NeuralNetwork"] = network.NeuralNetwork
for _cls in (optimizers.SGD, optimizers.SGDMomentum, optimizers.AdaGrad, optimizers.RegularizedSGD):
    saving.OPTIMIZERS[f"book.{_cls.__name__}"] = _cls
