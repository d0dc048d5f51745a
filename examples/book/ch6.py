"""Chapter 6: the book's character models (cells 24, 40, 42, 43 and 44), on fastdl.book.rnn.

The notebook's training cells as they are, with its classes imported from
:mod:`fastdl.book.rnn` instead of defined inline; only the text (Tiny Shakespeare from
``$FASTDL_DATA/text/``, 65 distinct characters, for the book's ``input.txt`` with 62) and
``vocab_size``/``output_size`` (65 for 62) differ. ``np.random.seed(0)`` before each cell
makes the runs repeatable (the book does not seed). Then the speed of cell 43's model is
compared with the same network built from plain fastdl layers (``fd.LSTMLayer`` +
``fd.Dense``, float64), alternating the two in this process::

    python examples/book/ch6.py            # the book's iteration counts, then the comparison
    python examples/book/ch6.py --smoke    # a few iterations of each cell (CI)
    python examples/book/ch6.py --cells 24 43 --compare-rounds 0

The moving-average loss curves go to ``examples/pictures/book_ch6_loss.png``. Losses are the
chapter's: cross-entropy summed over the batch and the time steps (divided by ``B·T`` in the
last panel, nats per character, so the cells can be compared).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import fastdl as fd
from fastdl.book.rnn import (
    SGD,
    AdaGrad,
    GRULayer,
    LSTMLayer,
    RNNLayer,
    RNNModel,
    RNNTrainer,
    SoftmaxCrossEntropy,
)

PICTURE = Path(__file__).resolve().parents[1] / "pictures" / "book_ch6_loss.png"
VOCAB = 65  # the book's input.txt has 62 distinct characters; Tiny Shakespeare has 65


def text_path() -> str:
    """``$FASTDL_DATA/text/tinyshakespeare.txt`` (FASTDL_DATA defaults to /work/shared/data)."""
    home = os.environ.get("FASTDL_DATA") or "/work/shared/data"
    return os.path.join(home, "text", "tinyshakespeare.txt")


# The notebook's cells, vocab_size 62 → 65. Each returns (trainer, num_iterations).


def cell_24(path):
    layers = [RNNLayer(hidden_size=256, output_size=VOCAB)]
    mod = RNNModel(layers=layers, vocab_size=VOCAB, sequence_length=10, loss=SoftmaxCrossEntropy())
    optim = SGD(lr=0.001, gradient_clipping=True)
    return RNNTrainer(path, mod, optim), 1000


def cell_40(path):
    layers1 = [LSTMLayer(hidden_size=256, output_size=VOCAB, weight_scale=0.01)]
    mod = RNNModel(layers=layers1, vocab_size=VOCAB, sequence_length=25, loss=SoftmaxCrossEntropy())
    optim = AdaGrad(lr=0.01, gradient_clipping=True)
    return RNNTrainer(path, mod, optim, batch_size=3), 1000


def cell_42(path):
    layers2 = [RNNLayer(hidden_size=256, output_size=128, weight_scale=0.1),
               LSTMLayer(hidden_size=256, output_size=VOCAB, weight_scale=0.01)]  # fmt: skip
    mod = RNNModel(layers=layers2, vocab_size=VOCAB, sequence_length=25, loss=SoftmaxCrossEntropy())
    optim = AdaGrad(lr=0.01, gradient_clipping=True)
    return RNNTrainer(path, mod, optim, batch_size=32), 2000


def cell_43_layers():
    return [LSTMLayer(hidden_size=256, output_size=128, weight_scale=0.1),
            LSTMLayer(hidden_size=256, output_size=VOCAB, weight_scale=0.01)]  # fmt: skip


def cell_43(path):
    layers2 = cell_43_layers()
    mod = RNNModel(layers=layers2, vocab_size=VOCAB, sequence_length=25, loss=SoftmaxCrossEntropy())
    optim = SGD(lr=0.01, gradient_clipping=True)
    return RNNTrainer(path, mod, optim, batch_size=32), 2000


def cell_44(path):
    layers3 = [GRULayer(hidden_size=256, output_size=128, weight_scale=0.1),
               LSTMLayer(hidden_size=256, output_size=VOCAB, weight_scale=0.01)]  # fmt: skip
    mod = RNNModel(layers=layers3, vocab_size=VOCAB, sequence_length=25, loss=SoftmaxCrossEntropy())
    optim = AdaGrad(lr=0.01, gradient_clipping=True)
    return RNNTrainer(path, mod, optim, batch_size=32), 2000


CELLS = {"24": cell_24, "40": cell_40, "42": cell_42, "43": cell_43, "44": cell_44}
TITLES = {
    "24": "RNN-256; SGD 0.001; B 32, T 10",
    "40": "LSTM-256; AdaGrad 0.01; B 3, T 25",
    "42": "RNN-256 → LSTM-256; AdaGrad 0.01; B 32, T 25",
    "43": "LSTM-256 → LSTM-256; SGD 0.01; B 32, T 25",
    "44": "GRU-256 → LSTM-256; AdaGrad 0.01; B 32, T 25",
}


def run_cells(path, names, smoke):
    results = {}
    for name in names:
        np.random.seed(0)  # noqa: NPY002 (the book draws from the global generator)
        trainer, n_iter = CELLS[name](path)
        if smoke:
            n_iter = 5
        print(f"---- cell {name}: {n_iter} iterations")
        start = time.perf_counter()
        trainer.train(n_iter, sample_every=100)
        seconds = time.perf_counter() - start
        chars = trainer.batch_size * trainer.sequence_length
        first, last = trainer.plot_loss[0], trainer.plot_loss[-1]
        print(
            f"cell {name}: {seconds:.1f} s; moving-average loss {first:.1f} → {last:.1f} "
            f"({first / chars:.3f} → {last / chars:.3f} nats/char)"
        )
        results[name] = (trainer, seconds)
    return results


def compare_speed(path, rounds, iters):
    """Tokens/s of training steps (single_step/train_batch + optim.step) of cell 43's model,
    the book layers against fd.LSTMLayer + fd.Dense, alternated round by round."""
    np.random.seed(0)  # noqa: NPY002 (the book draws from the global generator)
    book = RNNModel(cell_43_layers(), vocab_size=VOCAB, sequence_length=25,
                    loss=SoftmaxCrossEntropy())  # fmt: skip
    trainer = RNNTrainer(path, book, SGD(lr=0.01, gradient_clipping=True), batch_size=32)
    plain = fd.NeuralNetwork(
        [fd.LSTMLayer(256), fd.Dense(128), fd.LSTMLayer(256), fd.Dense(VOCAB)],
        fd.SoftmaxCrossEntropy(), seed=0, dtype=np.float64,
    )  # fmt: skip
    plain_optim = fd.SGD(lr=0.01, clip_value=2.0)
    plain_optim.bind(plain)
    batches = []
    for k in range(iters):
        x, y = trainer._generate_inputs_targets(k * 32)
        batches.append((trainer._generate_one_hot_array(x), trainer._generate_one_hot_array(y)))

    def run(step, optim):
        start = time.perf_counter()
        for x, y in batches:
            step(x, y)
            optim.step()
        return 32 * 25 * len(batches) / (time.perf_counter() - start)

    run(book.single_step, trainer.optim)  # warm up (compilation, first allocations)
    run(plain.train_batch, plain_optim)
    speeds = {"fastdl.book": [], "plain fastdl": []}
    for r in range(rounds):
        order = [("fastdl.book", book.single_step, trainer.optim),
                 ("plain fastdl", plain.train_batch, plain_optim)]  # fmt: skip
        for name, step, optim in order if r % 2 == 0 else order[::-1]:
            speeds[name].append(run(step, optim))
    for name, values in speeds.items():
        print(
            f"{name:>12}: median {np.median(values):8.0f} tokens/s "
            f"(rounds: {', '.join(f'{v:.0f}' for v in values)})"
        )
    ratio = np.median(speeds["fastdl.book"]) / np.median(speeds["plain fastdl"])
    print(f"fastdl.book / plain fastdl = {ratio:.3f}")
    return speeds


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7.5))
    flat = axes.ravel()
    for ax, (name, (trainer, seconds)) in zip(flat, results.items(), strict=False):
        ax.plot(trainer.plot_iter, trainer.plot_loss)
        ax.set_title(f"cell {name}: {TITLES[name]} ({seconds:.0f} s)", fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss (sum over batch × time)")
        ax.grid(alpha=0.3)
        chars = trainer.batch_size * trainer.sequence_length
        flat[-1].plot(trainer.plot_iter, trainer.plot_loss / chars, label=f"cell {name}")
    for ax in flat[len(results) : -1]:
        ax.axis("off")
    flat[-1].set_title("all cells: loss / (B·T), nats per character", fontsize=9)
    flat[-1].set_xlabel("iteration")
    flat[-1].set_ylabel("nats per character")
    flat[-1].legend(fontsize=8)
    flat[-1].grid(alpha=0.3)
    fig.suptitle("Chapter 6 on fastdl.book.rnn: moving average (100 iterations) of the loss")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="5 iterations per cell")
    parser.add_argument("--cells", nargs="*", choices=list(CELLS), default=list(CELLS))
    parser.add_argument("--text", default=text_path(), help="default: %(default)s")
    parser.add_argument("--compare-rounds", type=int, default=None,
                        help="rounds of the speed comparison (default 30, 1 with --smoke)")  # fmt: skip
    parser.add_argument("--picture", type=Path, default=None,
                        help=f"default: {PICTURE} (with --smoke: a temporary file)")  # fmt: skip
    args = parser.parse_args(argv)
    if not os.path.isfile(args.text):
        parser.error(f"no text file at {args.text} (set FASTDL_DATA or pass --text)")
    results = run_cells(args.text, args.cells, args.smoke)
    rounds = args.compare_rounds if args.compare_rounds is not None else (1 if args.smoke else 30)
    if rounds:
        compare_speed(args.text, rounds, iters=3 if args.smoke else 5)
    if results:
        picture = args.picture
        if picture is None:  # a smoke run must not overwrite the full run's picture
            picture = Path(tempfile.mkdtemp()) / PICTURE.name if args.smoke else PICTURE
        plot(results, picture)


if __name__ == "__main__":
    main()
