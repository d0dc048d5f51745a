"""Chapter 5, "Convolutional neural networks": the notebook's one-epoch MNIST CNN.

16 filters of 5×5 with tanh (Glorot, the book's scale), flattened, keep probability 0.8,
then a dense layer of 10 and softmax cross-entropy, trained one epoch with
``SGDMomentum(lr=0.1, momentum=0.9)``, batches of 60, seed 20190402, printing as the
notebook does (``conv_testing=True``). The book's convolution gradients were wrong and it
reported 90.31%; fastdl.book runs the same network on fastdl's compiled, gradient-checked
convolution::

    python examples/book/ch5.py
    python examples/book/ch5.py --smoke      # 2,000 images
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _mnist  # noqa: E402

from fastdl.book.activations import Linear, Tanh  # noqa: E402
from fastdl.book.layers import Conv2D, Dense  # noqa: E402
from fastdl.book.losses import SoftmaxCrossEntropy  # noqa: E402
from fastdl.book.network import NeuralNetwork  # noqa: E402
from fastdl.book.optimizers import SGDMomentum  # noqa: E402
from fastdl.book.train import Trainer  # noqa: E402

SEED = 20190402
BOOK_ACCURACY = 90.31


def model() -> NeuralNetwork:
    return NeuralNetwork(
        layers=[Conv2D(out_channels=16, param_size=5, dropout=0.8, weight_init="glorot",
                       flatten=True, activation=Tanh()),
                Dense(neurons=10, activation=Linear())],
        loss=SoftmaxCrossEntropy(), seed=SEED,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2,000 images")
    args = parser.parse_args(argv)
    X_train, train_labels, X_test, test_labels, y_test = _mnist.load(smoke=args.smoke)
    X_train_conv, X_test_conv = X_train.reshape(-1, 1, 28, 28), X_test.reshape(-1, 1, 28, 28)
    net = model()
    trainer = Trainer(net, SGDMomentum(lr=0.1, momentum=0.9))
    start = time.perf_counter()
    trainer.fit(X_train_conv, train_labels, X_test_conv, test_labels, epochs=1, eval_every=1,
                seed=SEED, batch_size=60, conv_testing=True)  # fmt: skip
    seconds = time.perf_counter() - start
    acc = _mnist.accuracy(net, X_test_conv, y_test)
    print(f"The model validation accuracy is: {acc:.2f}%  (the book: {BOOK_ACCURACY:.2f}%; "
          f"{seconds:.1f} s)")  # fmt: skip
    return acc


if __name__ == "__main__":
    main()
