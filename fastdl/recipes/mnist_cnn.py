"""Train the reference CNN of PyTorch's MNIST example on MNIST (``fastdl train mnist-cnn``).

The network, as in PyTorch's ``examples/mnist/main.py``::

    Conv2D 32@3×3 (valid) → ReLU → Conv2D 64@3×3 (valid) → ReLU → MaxPool 2×2
    → Dropout keep 0.75 → Flatten → Dense 128 → ReLU → Dropout keep 0.5 → Dense 10

trained with softmax cross-entropy and Adadelta (lr 1.0, decayed by 0.7 per epoch as
PyTorch's ``StepLR(gamma=0.7)``), batch 64, on pixels scaled to [0, 1] and normalised with
MNIST's mean 0.1307 and standard deviation 0.3081, by ``Trainer.fit``. Prints progress during
each epoch, the test accuracy after each, and at the end the test accuracy, training
images/s (evaluations left out) and wall time. The shared flags (``--plot``, ``--save``,
``--checkpoint``, ``--resume``, ...) are :mod:`fastdl.recipes.training_flags`'.

    fastdl train mnist-cnn                  # 5 epochs (reaches ≥ 99.0%)
    fastdl train mnist-cnn --smoke          # seconds: 2,048 images, 1 epoch
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastdl as fd
from fastdl.datasets import load_mnist, scale_images, to_nchw
from fastdl.recipes.arguments import positive_float
from fastdl.recipes.training_flags import (
    TrainingTime,
    add_training_flags,
    announce,
    finish,
    fit_options,
    running,
)

MEAN, STD = 0.1307, 0.3081


def build(seed: int = 0, dropout: bool = True) -> fd.NeuralNetwork:
    """The reference CNN; ``dropout=False`` leaves both dropouts out (for benchmarks)."""
    keep1, keep2 = (0.75, 0.5) if dropout else (1.0, 1.0)
    return fd.NeuralNetwork(
        layers=[
            fd.Conv2D(out_channels=32, param_size=3, padding=0, activation=fd.ReLU()),
            fd.Conv2D(out_channels=64, param_size=3, padding=0, activation=fd.ReLU()),
            fd.MaxPool2D(2, dropout=keep1),
            fd.Flatten(),
            fd.Dense(neurons=128, activation=fd.ReLU(), dropout=keep2),
            fd.Dense(neurons=10, activation=fd.Linear()),
        ],
        loss=fd.SoftmaxCrossEntropy(),
        seed=seed,
    )


def prepare(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` → normalised float32 ``(N, 1, 28, 28)``."""
    x = to_nchw(scale_images(images))
    x -= np.float32(MEAN)
    x /= np.float32(STD)
    return x


def accuracy(net: fd.NeuralNetwork, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(net.predict(x, batch_size=1000).argmax(axis=1) == y))


def main(argv: list[str] | None = None) -> float:
    """Run the recipe; returns the final test accuracy (a fraction)."""
    parser = argparse.ArgumentParser(
        prog="fastdl train mnist-cnn", description=__doc__.splitlines()[0]
    )
    add_training_flags(parser, epochs=5, batch_size=64, lr=1.0, seed=1)
    parser.add_argument(
        "--gamma", type=positive_float, default=0.7, help="learning-rate decay per epoch"
    )
    parser.add_argument("--data", help="folder with the four MNIST files (default: searched)")
    parser.add_argument(
        "--smoke", action="store_true", help="a few seconds: 2,048 training images, 1 epoch"
    )
    args = parser.parse_args(argv)
    options = fit_options(args)
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data)
    if args.smoke:
        x_train, y_train = x_train[:2048], y_train[:2048]
        x_test, y_test = x_test[:1000], y_test[:1000]
        args.epochs = 1
    x_train, x_test = prepare(x_train), prepare(x_test)
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)

    with running(args):
        net = build(args.seed)
        decay = {}
        if args.epochs > 1 and args.gamma != 1.0:
            decay = {"final_lr": args.lr * args.gamma ** (args.epochs - 1),
                     "decay_type": "exponential"}  # fmt: skip
        optim = fd.Adadelta(lr=args.lr, **decay)
        announce("mnist-cnn", len(x_train), args.batch_size, args.epochs)
        clock = TrainingTime()
        wall = time.perf_counter()
        # As PyTorch's example: evaluate after every epoch, end on the last epoch's weights.
        history = fd.Trainer(net, optim).fit(
            x_train, y_train, x_test, y_test, epochs=args.epochs, eval_every=1,
            batch_size=args.batch_size, seed=args.seed, early_stopping=False,
            callbacks=[clock], **options,
        )  # fmt: skip
        wall = time.perf_counter() - wall
    acc = history.val_accuracy[-1]
    finish(args, "mnist-cnn", history, net, optim)
    rate = clock.images / clock.seconds if clock.seconds else float("nan")
    print(
        f"test accuracy {100 * acc:.2f}%  |  training {rate:,.0f} images/s  |  "
        f"wall time {wall:.1f} s"
    )
    return acc


if __name__ == "__main__":
    main()
