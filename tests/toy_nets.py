"""A small classifier and its data, shared by the core tests."""

import numpy as np

import fastdl as fd


def toy_data(rng, n=64):
    """``n`` examples of 4 features, labelled by the sign of the first: ``(n, 4)``, ``(n,)``."""
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def toy_net(seed=0, dropout=1.0):
    """Dense(8, tanh) → Dense(2) with softmax cross-entropy."""
    return fd.NeuralNetwork(
        [fd.Dense(8, fd.Tanh(), dropout=dropout), fd.Dense(2)], fd.SoftmaxCrossEntropy(), seed=seed
    )


def toy_initial_weights(seed=0):
    """The weights :func:`toy_net` starts from with this seed."""
    net = toy_net(seed)
    net.forward(np.zeros((1, 4), dtype=np.float32))
    return net.get_weights()


def same_weights(a, b):
    """True when two lists of arrays are equal bit for bit."""
    return all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
