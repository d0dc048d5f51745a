"""Pictures of the reference MNIST CNN: its first-layer filters, its confusion matrix, its mistakes.

Loads a network written by ``fastdl train mnist-cnn --save FILE`` (or trains one first) and
draws three PNGs into ``--out``:

- ``conv1_filters.png``: the 32 first-layer 3×3 filters, a 4×8 grid on one shared colour scale
  symmetric around 0 (red positive, blue negative), so the filters' strengths can be compared;
- ``confusion_matrix.png``: the 10×10 confusion matrix on the MNIST test set (rows the true
  digit, columns the predicted one), counts in the cells, a logarithmic colour scale so that the
  few errors off the diagonal show;
- ``mistakes.png``: the 16 test images misclassified with the highest confidence.

It also prints the matrix, the accuracy and the three most confused (true, predicted) pairs::

    python examples/cnn_pictures.py --model ref_cnn.npz --out examples/pictures
    python examples/cnn_pictures.py --epochs 1       # trains a network first (1–3 min)
    python examples/cnn_pictures.py --smoke          # seconds: smoke-trained, into a temp dir
"""

from __future__ import annotations

import argparse
import os
import tempfile

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

import fastdl as fd  # noqa: E402
from fastdl.datasets import load_mnist  # noqa: E402
from fastdl.recipes import mnist_cnn  # noqa: E402

PICTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pictures")


def trained_network(args: argparse.Namespace, workdir: str) -> fd.NeuralNetwork:
    """``--model`` loaded, or a network trained now by the mnist-cnn recipe."""
    if args.model:
        return fd.load(args.model)
    path = os.path.join(workdir, "mnist_cnn.npz")
    argv = ["--save", path, "--epochs", str(args.epochs)]
    if args.data:
        argv += ["--data", args.data]
    mnist_cnn.main(argv + (["--smoke"] if args.smoke else []))
    return fd.load(path)


def draw_filters(net: fd.NeuralNetwork, path: str) -> None:
    """The first convolution's filters, one shared colour scale symmetric around 0.

    Conv2D keeps its weights as ``W`` ``(C_out, C_in, KH, KW)`` (PyTorch's layout) and
    computes a cross-correlation: ``y[n, o, i, j] = Σ_c,p,q W[o, c, p, q] · x[n, c, i+p, j+q]
    + B[o]``. So ``W[o, 0]`` drawn with row p down and column q right is filter o as it lies
    on the image (checked once against ``net.layers[0].forward`` with a naive loop; flipping
    the kernel or swapping KH and KW does not reproduce the output).
    """
    w = net.layers[0].params()[0]
    c_out, c_in, kh, kw = w.shape
    if c_in != 1:
        raise ValueError(f"expected a first layer on 1-channel images, got weights {w.shape}")
    cols = 8
    rows = -(-c_out // cols)
    scale = float(np.abs(w).max())
    fig, axes = plt.subplots(rows, cols, figsize=(1.25 * cols + 1.2, 1.35 * rows + 0.9))
    for o, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if o >= c_out:
            ax.axis("off")
            continue
        image = ax.imshow(w[o, 0], cmap="RdBu_r", vmin=-scale, vmax=scale)
        ax.set_title(f"#{o}", fontsize=9, pad=3)
    fig.suptitle(
        f"First conv layer: {c_out} filters {kh}×{kw} (one shared scale, ±{scale:.2f})",
        fontsize=12,
        y=0.97,
    )
    fig.subplots_adjust(left=0.02, right=0.86, bottom=0.03, top=0.88, wspace=0.15, hspace=0.35)
    bar = fig.colorbar(image, cax=fig.add_axes([0.89, 0.1, 0.025, 0.7]))
    bar.set_label("weight")
    fig.savefig(path, dpi=120)
    plt.close(fig)


def confusion(true: np.ndarray, pred: np.ndarray, classes: int = 10) -> np.ndarray:
    """``m[t, p]`` = how many examples of class t were predicted as p."""
    m = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(m, (true, pred), 1)
    return m


def draw_confusion(m: np.ndarray, accuracy: float, path: str) -> None:
    """Counts in the cells on a logarithmic colour scale; empty cells stay white."""
    n = int(m.sum())
    fig, ax = plt.subplots(figsize=(7.6, 6.6))
    norm = LogNorm(vmin=1, vmax=max(int(m.max()), 2))
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("white")
    image = ax.imshow(np.ma.masked_equal(m, 0), cmap=cmap, norm=norm)
    for t in range(m.shape[0]):
        for p in range(m.shape[1]):
            count = int(m[t, p])
            if count:  # light text on the dark low end of viridis, dark on the bright end
                dark = norm(count) < 0.6
                ax.text(p, t, str(count), ha="center", va="center", fontsize=9,
                        color="white" if dark else "black",
                        fontweight="bold" if t == p else "normal")  # fmt: skip
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    ax.set_title(f"Reference CNN on {n:,} MNIST test images: accuracy {100 * accuracy:.2f}%")
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("count (log scale; blank = 0)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def draw_mistakes(images, true, pred, prob, path: str, count: int = 16) -> int:
    """The ``count`` misclassified images with the highest probability on the wrong digit."""
    wrong = np.flatnonzero(pred != true)
    wrong = wrong[np.argsort(-prob[wrong], kind="stable")][:count]
    if not len(wrong):
        return 0
    cols = 4
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.25 * cols, 2.3 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.ravel()[: len(wrong)], wrong, strict=True):
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=255)
        percent = np.floor(1000 * prob[i]) / 10
        ax.set_title(f"#{i}: true {true[i]} → {pred[i]} ({percent:.1f}%)", fontsize=9)
    fig.suptitle(
        f"The {len(wrong)} most confident mistakes: test image #, true → predicted digit "
        "(its probability)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return len(wrong)


def print_confusion(m: np.ndarray, accuracy: float) -> None:
    print("confusion matrix (rows = true digit, columns = predicted):")
    print("true\\pred " + "".join(f"{p:>6d}" for p in range(10)))
    for t in range(10):
        print(f"{t:>9d} " + "".join(f"{c:>6d}" for c in m[t]))
    print(f"accuracy {100 * accuracy:.2f}% ({int(np.trace(m)):,} / {int(m.sum()):,})")
    off = m.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")
    print("most confused (true → predicted):")
    for k in order[:3]:
        t, p = divmod(int(k), 10)
        if off[t, p]:
            print(f"  {t} → {p}: {off[t, p]} of the {m[t].sum():,} test {t}s")
    third = off.flat[order[2]]
    ties = [divmod(int(k), 10) for k in order[3:] if third and off.flat[k] == third]
    if ties:
        print(f"  (as many, {third}: " + ", ".join(f"{t} → {p}" for t, p in ties) + ")")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", metavar="FILE", help="a network saved by mnist-cnn --save")
    parser.add_argument(
        "--out", metavar="DIR",
        help=f"folder for the PNGs (default: {PICTURES}; a temporary folder with --smoke)",
    )  # fmt: skip
    parser.add_argument(
        "--epochs", type=int, default=1, help="epochs to train when no --model (default 1)"
    )
    parser.add_argument("--data", help="folder with the four MNIST files (default: searched)")
    parser.add_argument(
        "--smoke", action="store_true",
        help="seconds: train on the recipe's --smoke data, evaluate on 1,000 test images",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.out:
        out = args.out
    else:  # --smoke in CI writes nothing into the repository
        out = tempfile.mkdtemp(prefix="fastdl-cnn-pictures-") if args.smoke else PICTURES
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fastdl-cnn-model-") as workdir:
        net = trained_network(args, workdir)

    _, (images, labels) = load_mnist(args.data)
    if args.smoke:
        images, labels = images[:1000], labels[:1000]
    logits = net.predict(mnist_cnn.prepare(images), batch_size=500).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    true = labels.astype(np.int64)
    pred = probs.argmax(axis=1)
    m = confusion(true, pred)
    accuracy = float(np.trace(m) / m.sum())
    print_confusion(m, accuracy)

    paths = [os.path.join(out, name) for name in ("conv1_filters.png", "confusion_matrix.png")]
    draw_filters(net, paths[0])
    draw_confusion(m, accuracy, paths[1])
    mistakes = os.path.join(out, "mistakes.png")
    if draw_mistakes(images, true, pred, probs[np.arange(len(pred)), pred], mistakes):
        paths.append(mistakes)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
