"""Training on the NumPy twins and on the numba kernels gives the same loss curve."""

from __future__ import annotations

import numpy as np
import pytest

import fastdl as fd
from fastdl import config
from fastdl.layers.conv import Conv2D
from fastdl.layers.pool import MaxPool2D

STEPS = 300


def toy_images(n, seed):
    """8×8 grey images of a bright 3×3 square in one of three corners; the label is which."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(0.0, 1.0, (n, 1, 8, 8)).astype(np.float32)
    corners = [(0, 0), (0, 5), (5, 2)]
    for i, label in enumerate(y):
        r, c = corners[label]
        x[i, 0, r : r + 3, c : c + 3] += 0.6
    return x, y


def loss_curve(pure):
    x, y = toy_images(16 * STEPS, 0)
    net = fd.NeuralNetwork(
        layers=[
            Conv2D(4, 3, activation=fd.ReLU()),
            Conv2D(6, 3, padding=0, activation=fd.ReLU()),
            MaxPool2D(2, dropout=0.75),
            fd.Flatten(),
            fd.Dense(3),
        ],
        loss=fd.SoftmaxCrossEntropy(),
        seed=0,
    )
    optim = fd.SGDMomentum(lr=0.05, momentum=0.9)
    fd.Trainer(net, optim)
    losses = []
    with config.use_pure(pure):
        for i in range(STEPS):
            losses.append(net.train_batch(x[16 * i : 16 * (i + 1)], y[16 * i : 16 * (i + 1)]))
            optim.step()
    return np.array(losses)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twins unavailable")
def test_pure_and_numba_training_give_the_same_loss_curve():
    pure, compiled = loss_curve(True), loss_curve(False)
    assert pure[-50:].mean() < 0.75 * pure[:10].mean()  # it learns
    np.testing.assert_allclose(compiled, pure, rtol=1e-4, atol=1e-5)  # float32 rounding
