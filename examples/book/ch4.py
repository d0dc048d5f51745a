"""Chapter 4, "Extensions": the notebook's 14 experiments on fastdl.book, beside the book's results.

Each experiment is the notebook's cell with ``lincoln`` replaced by ``fastdl.book`` in the
imports: the same layers, losses, optimizers, seeds and epochs, in float64. The lesson of the
chapter — each technique fixes the previous one's failure — shows in the accuracies::

    python examples/book/ch4.py                  # all 14, about 25 minutes on 2 cores
    python examples/book/ch4.py --only momentum_tanh,glorot_linear
    python examples/book/ch4.py --smoke          # seconds: 2,000 images, 1 epoch each
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _mnist  # noqa: E402

from fastdl.book.activations import Linear, ReLU, Sigmoid, Tanh  # noqa: E402
from fastdl.book.layers import Dense  # noqa: E402
from fastdl.book.losses import MeanSquaredError, SoftmaxCrossEntropy  # noqa: E402
from fastdl.book.network import NeuralNetwork  # noqa: E402
from fastdl.book.optimizers import SGD, SGDMomentum  # noqa: E402
from fastdl.book.train import Trainer  # noqa: E402

SEED = 20190119


def two_layer(activation, output, loss, init="standard", dropout=1.0):
    """The chapter's 784 → 89 → 10 network."""
    return NeuralNetwork(
        layers=[Dense(neurons=89, activation=activation, weight_init=init, dropout=dropout),
                Dense(neurons=10, activation=output, weight_init=init)],
        loss=loss, seed=SEED,
    )  # fmt: skip


def three_layer(dropout):
    """The chapter's deeper 784 → 178 → 46 → 10 network, Glorot (the book's scale)."""
    return NeuralNetwork(
        layers=[Dense(neurons=178, activation=Tanh(), weight_init="glorot", dropout=dropout),
                Dense(neurons=46, activation=Tanh(), weight_init="glorot", dropout=dropout),
                Dense(neurons=10, activation=Linear(), weight_init="glorot")],
        loss=SoftmaxCrossEntropy(), seed=SEED,
    )  # fmt: skip


def exp_decay():
    return SGDMomentum(0.2, momentum=0.9, final_lr=0.05, decay_type="exponential")


def lin_decay():
    return SGDMomentum(0.15, momentum=0.9, final_lr=0.05, decay_type="linear")


#: name → (the book's printed accuracy, network, optimizer, epochs, eval_every)
EXPERIMENTS = {
    "mse": (72.80, lambda: two_layer(Tanh(), Sigmoid(), MeanSquaredError(normalize=False)),
            lambda: SGD(0.1), 50, 10),
    "mse_normalize": (41.73, lambda: two_layer(Tanh(), Sigmoid(), MeanSquaredError(normalize=True)),
                      lambda: SGD(0.1), 50, 10),
    "sce_sigmoid": (91.04, lambda: two_layer(Sigmoid(), Linear(), SoftmaxCrossEntropy()),
                    lambda: SGD(0.1), 130, 1),
    "sce_relu": (71.84, lambda: two_layer(ReLU(), Linear(), SoftmaxCrossEntropy()),
                 lambda: SGD(0.1), 50, 10),
    "sce_tanh": (90.92, lambda: two_layer(Tanh(), Linear(), SoftmaxCrossEntropy()),
                 lambda: SGD(0.1), 50, 10),
    "momentum_sigmoid": (91.97, lambda: two_layer(Sigmoid(), Linear(), SoftmaxCrossEntropy()),
                         lambda: SGDMomentum(0.1, momentum=0.9), 50, 1),
    "momentum_tanh": (95.36, lambda: two_layer(Tanh(), Linear(), SoftmaxCrossEntropy()),
                      lambda: SGDMomentum(0.1, momentum=0.9), 50, 10),
    "linear_decay": (95.98, lambda: two_layer(Tanh(), Linear(), SoftmaxCrossEntropy()),
                     lin_decay, 50, 10),
    "exponential_decay": (95.75, lambda: two_layer(Tanh(), Linear(), SoftmaxCrossEntropy()),
                          exp_decay, 50, 10),
    "glorot_linear": (96.69, lambda: two_layer(Tanh(), Linear(), SoftmaxCrossEntropy(), "glorot"),
                      lin_decay, 50, 10),
    "glorot_exponential": (96.48,
                           lambda: two_layer(Tanh(), Linear(), SoftmaxCrossEntropy(), "glorot"),
                           exp_decay, 50, 10),
    "dropout": (96.77,
                lambda: two_layer(Tanh(), Linear(), SoftmaxCrossEntropy(), "glorot", dropout=0.8),
                exp_decay, 50, 10),
    "deep_dropout": (97.34, lambda: three_layer(0.8), exp_decay, 100, 10),
    "deep": (96.08, lambda: three_layer(1.0), exp_decay, 100, 10),
}  # fmt: skip


def run(name: str, data, smoke: bool = False) -> tuple[float, float, int]:
    """Train one experiment; returns (accuracy %, seconds, epochs trained)."""
    X_train, train_labels, X_test, test_labels, y_test = data
    _book, make_net, make_optim, epochs, eval_every = EXPERIMENTS[name]
    if smoke:
        epochs, eval_every = 1, 1
    model = make_net()
    trainer = Trainer(model, make_optim())
    start = time.perf_counter()
    history = trainer.fit(X_train, train_labels, X_test, test_labels, epochs=epochs,
                          eval_every=eval_every, seed=SEED, batch_size=60)  # fmt: skip
    seconds = time.perf_counter() - start
    trained = history.epoch[-1] if history.epoch else epochs
    return _mnist.accuracy(model, X_test, y_test), seconds, trained


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", help="comma-separated experiment names: " + ", ".join(EXPERIMENTS)
    )
    parser.add_argument("--smoke", action="store_true", help="2,000 images, 1 epoch each")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(EXPERIMENTS)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        parser.error(f"unknown experiments {unknown}; choose from {', '.join(EXPERIMENTS)}")
    data = _mnist.load(smoke=args.smoke)
    results = {}
    for name in names:
        print(f"== {name}", flush=True)
        results[name] = run(name, data, args.smoke)
        acc, seconds, trained = results[name]
        print(f"The model validation accuracy is: {acc:.2f}%  ({trained} epochs, {seconds:.0f} s)",
              flush=True)  # fmt: skip
    print("\n| experiment | the book | fastdl.book | epochs trained | seconds |")
    print("| --- | --- | --- | --- | --- |")
    for name, (acc, seconds, trained) in results.items():
        print(f"| {name} | {EXPERIMENTS[name][0]:.2f}% | {acc:.2f}% | {trained} | {seconds:.0f} |")
    return results


if __name__ == "__main__":
    main()
