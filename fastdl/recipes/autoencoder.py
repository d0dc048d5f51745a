"""The book's chapter-7 convolutional autoencoder on MNIST (``fastdl train autoencoder``).

The book (its ``07_PyTorch_Unsupervised`` notebook) builds the autoencoder in PyTorch: two
5×5 convolutions and a dense layer encode a 28×28 digit to 28 numbers, a dense layer and two
convolutions decode it, every layer with a tanh; pixels scaled to [-1, 1] (the book
standardises them and then min-max scales to [-1, 1], which is ``x / 127.5 - 1``), mean
squared error, SGD with momentum 0.9 at lr 0.01, batch 60, one epoch: test MSE **0.069**.

fastdl's version keeps the code (28 numbers, tanh everywhere, the same scaling, loss,
optimizer, batch and single epoch) and makes the spatial path strided, so the decoder is what
the chapter is about — transposed convolutions that learn to upsample::

    encoder  Conv2D 16@5×5 stride 2 → 16×14×14 → Conv2D 32@5×5 stride 2 → 32×7×7
             → Flatten → Dense 28                                   (the code)
    decoder  Dense 32·7·7 → Reshape (32, 7, 7)
             → Conv2DTranspose 16@5×5 stride 2 → 16×14×14
             → Conv2DTranspose 1@5×5 stride 2 → 1×28×28

(padding 2 and output padding 1, so each transposed convolution doubles H and W exactly).
The learning rate is 0.1, not the book's 0.01: with fastdl's Glorot initialisation and this
smaller network, lr 0.01 ends the epoch at a test MSE of 0.234 (a blurred average digit),
0.05 at 0.070, 0.1 at 0.051 and 0.2 at 0.048 (seed 20190325, measured; ``--lr`` to try).
Prints the test MSE after each epoch, and at the end the test MSE, training images/s and the
wall time. ``--pictures DIR`` draws two PNGs there (matplotlib, ``pip install
'fastdl[plot]'``): ``autoencoder_reconstructions.png`` (test digits above their
reconstructions) and ``autoencoder_codes.png`` (the 28-number codes of the test set projected
on their first two principal components, coloured by digit).

    fastdl train autoencoder                          # 1 epoch, as the book
    fastdl train autoencoder --pictures examples/pictures
    fastdl train autoencoder --smoke                  # seconds: 2,048 images
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import fastdl as fd
from fastdl.datasets import load_mnist, to_nchw
from fastdl.recipes.arguments import positive_float
from fastdl.recipes.training_flags import (
    TrainingTime,
    add_training_flags,
    announce,
    finish,
    fit_options,
    running,
)

#: The code's size, as the book's ``hidden_dim``.
CODE = 28
#: Layers ``[:ENCODER]`` of :func:`build` are the encoder.
ENCODER = 3


def build(seed: int = 0, code: int = CODE) -> fd.NeuralNetwork:
    """The autoencoder: ``(N, 1, 28, 28)`` in [-1, 1] → the same shape, tanh output."""
    t = fd.Tanh
    up = {"stride": 2, "padding": 2, "output_padding": 1}
    return fd.NeuralNetwork(
        layers=[
            fd.Conv2D(16, 5, stride=2, padding="same", activation=t()),
            fd.Conv2D(32, 5, stride=2, padding="same", activation=t(), flatten=True),
            fd.Dense(code, activation=t()),
            fd.Dense(32 * 7 * 7, activation=t()),
            fd.Reshape((32, 7, 7)),
            fd.Conv2DTranspose(16, 5, activation=t(), **up),
            fd.Conv2DTranspose(1, 5, activation=t(), **up),
        ],
        loss=fd.MeanSquaredError(),
        seed=seed,
    )


def prepare(images: np.ndarray) -> np.ndarray:
    """uint8 ``(N, 28, 28)`` → float32 ``(N, 1, 28, 28)`` in [-1, 1], as the book scales."""
    return to_nchw(images.astype(np.float32) / np.float32(127.5) - np.float32(1.0))


def encode(net: fd.NeuralNetwork, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """The codes ``(N, code)`` of images ``x`` ``(N, 1, 28, 28)``: the encoder's layers only."""
    codes = []
    for i in range(0, len(x), batch_size):
        out = x[i : i + batch_size]
        for layer in net.layers[:ENCODER]:
            out = layer.forward(out, inference=True)
        codes.append(out)
    return np.concatenate(codes)


def principal_components(codes: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Project ``codes`` ``(N, D)`` on their first ``k`` principal components.

    Returns the projections ``(N, k)`` and the fraction of the variance each component
    explains ``(k,)`` (centre, then the SVD of the centred data: its right singular vectors
    are the components, its squared singular values the variances).
    """
    centred = codes - codes.mean(axis=0)
    _, s, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    return centred @ vt[:k].T, (s[:k] ** 2) / np.sum(s**2)


def draw_pictures(net, x_test, y_test, folder: str) -> list[str]:
    """The two PNGs (see the module docstring); returns their paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    os.makedirs(folder, exist_ok=True)
    # Reconstructions: the first test image of each digit, originals above.
    picks = [int(np.flatnonzero(y_test == d)[0]) for d in range(10)]
    originals = x_test[picks]
    rebuilt = net.predict(originals)
    mse = np.mean((rebuilt - originals) ** 2, axis=(1, 2, 3))
    fig, axes = plt.subplots(2, 10, figsize=(10, 2.6))
    for j in range(10):
        for row, images in enumerate((originals, rebuilt)):
            ax = axes[row, j]
            ax.imshow(images[j, 0], cmap="gray", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[1, j].set_xlabel(f"{mse[j]:.3f}", fontsize=8)
    axes[0, 0].set_ylabel("original", fontsize=9)
    axes[1, 0].set_ylabel("rebuilt", fontsize=9)
    fig.suptitle("Test digits and their reconstructions from 28 numbers (per-image MSE below)")
    fig.tight_layout()
    recon_path = os.path.join(folder, "autoencoder_reconstructions.png")
    fig.savefig(recon_path, dpi=110)
    plt.close(fig)
    # Codes: the test set's codes on their first two principal components.
    points, explained = principal_components(encode(net, x_test))
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    colours = plt.get_cmap("tab10")
    order = np.random.default_rng(0).permutation(len(points))  # no digit drawn over the rest
    ax.scatter(points[order, 0], points[order, 1], s=2, alpha=0.5,
               c=colours(y_test[order] % 10))  # fmt: skip
    for d in range(10):
        ax.scatter([], [], s=12, color=colours(d), label=str(d))
    ax.set_xlabel(f"principal component 1 ({100 * explained[0]:.0f}% of the variance)")
    ax.set_ylabel(f"principal component 2 ({100 * explained[1]:.0f}% of the variance)")
    ax.set_title(f"Codes of the {len(x_test):,} test digits, projected to 2-D")
    ax.legend(title="digit", loc="best", fontsize=8)
    fig.tight_layout()
    codes_path = os.path.join(folder, "autoencoder_codes.png")
    fig.savefig(codes_path, dpi=110)
    plt.close(fig)
    return [recon_path, codes_path]


def main(argv: list[str] | None = None) -> float:
    """Run the recipe; returns the final test MSE."""
    parser = argparse.ArgumentParser(
        prog="fastdl train autoencoder", description=__doc__.splitlines()[0]
    )
    add_training_flags(parser, epochs=1, batch_size=60, lr=0.1, seed=20190325)
    parser.add_argument("--momentum", type=positive_float, default=0.9, help="%(default)s")
    parser.add_argument("--data", help="folder with the four MNIST files (default: searched)")
    parser.add_argument("--pictures", metavar="DIR", help="draw the two PNGs into DIR")
    parser.add_argument(
        "--smoke", action="store_true", help="a few seconds: 2,048 training images, 1 epoch"
    )
    args = parser.parse_args(argv)
    options = fit_options(args)
    if args.pictures:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("autoencoder: --pictures needs matplotlib (pip install 'fastdl[plot]'); "
                  "training without drawing", flush=True)  # fmt: skip
            args.pictures = None
    (x_train, _), (x_test, y_test) = load_mnist(args.data)
    if args.smoke:
        x_train, x_test, y_test = x_train[:2048], x_test[:1000], y_test[:1000]
        args.epochs = 1
    x_train, x_test = prepare(x_train), prepare(x_test)

    with running(args):
        net = build(args.seed)
        optim = fd.SGDMomentum(lr=args.lr, momentum=args.momentum)
        announce("autoencoder", len(x_train), args.batch_size, args.epochs)
        clock = TrainingTime()
        wall = time.perf_counter()
        history = fd.Trainer(net, optim).fit(
            x_train, x_train, x_test, x_test, epochs=args.epochs, eval_every=1,
            batch_size=args.batch_size, seed=args.seed, early_stopping=False,
            callbacks=[clock], **options,
        )  # fmt: skip
        wall = time.perf_counter() - wall
        mse = history.val_loss[-1]
        finish(args, "autoencoder", history, net, optim)
        if args.pictures:
            for path in draw_pictures(net, x_test, y_test.astype(np.int64), args.pictures):
                print(f"drawn: {path}", flush=True)
    rate = clock.images / clock.seconds if clock.seconds else float("nan")
    print(
        f"test MSE {mse:.4f} (the book's PyTorch run: 0.069)  |  training {rate:,.0f} "
        f"images/s  |  wall time {wall:.1f} s"
    )
    return mse


if __name__ == "__main__":
    main()
