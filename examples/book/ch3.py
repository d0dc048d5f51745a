"""Chapter 3, "Deep Learning from Scratch": the notebook's three Boston-housing models.

Linear regression, a network with one hidden layer of 13 sigmoid neurons, and one with two,
trained as the notebook trains them (``SGD(lr=0.01)``, 50 epochs, evaluated every 10, seed
20190501) on fastdl.book, in float64. The data is ``$FASTDL_DATA/boston``; scaling and the
70/30 split are those of scikit-learn's ``StandardScaler`` and
``train_test_split(random_state=80718)``, as the notebook uses::

    python examples/book/ch3.py
    python examples/book/ch3.py --smoke      # 5 epochs
"""

from __future__ import annotations

import argparse

from fastdl.book.activations import Linear, Sigmoid
from fastdl.book.datasets import StandardScaler, load_boston, train_test_split
from fastdl.book.layers import Dense
from fastdl.book.losses import MeanSquaredError
from fastdl.book.network import NeuralNetwork
from fastdl.book.optimizers import SGD
from fastdl.book.train import Trainer
from fastdl.book.utils.np_utils import mae, rmse, to_2d_np

SEED = 20190501

#: The book's printed (mean absolute error, root mean squared error) of each model.
BOOK = {"linear regression": (3.52, 5.01), "one hidden layer": (2.60, 4.03),
        "two hidden layers": (2.45, 3.83)}  # fmt: skip


def models() -> dict:
    """The notebook's three networks."""
    return {
        "linear regression": NeuralNetwork(
            layers=[Dense(neurons=1, activation=Linear())], loss=MeanSquaredError(), seed=SEED
        ),
        "one hidden layer": NeuralNetwork(
            layers=[Dense(neurons=13, activation=Sigmoid()), Dense(neurons=1, activation=Linear())],
            loss=MeanSquaredError(), seed=SEED,
        ),
        "two hidden layers": NeuralNetwork(
            layers=[Dense(neurons=13, activation=Sigmoid()), Dense(neurons=13, activation=Sigmoid()),
                    Dense(neurons=1, activation=Linear())],
            loss=MeanSquaredError(), seed=SEED,
        ),
    }  # fmt: skip


def load_data():
    """``X_train (354, 13), X_test (152, 13), y_train (354, 1), y_test (152, 1)``, as the
    notebook prepares them."""
    boston = load_boston()
    data = StandardScaler().fit_transform(boston.data)
    X_train, X_test, y_train, y_test = train_test_split(
        data, boston.target, test_size=0.3, random_state=80718
    )
    return X_train, X_test, to_2d_np(y_train), to_2d_np(y_test)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="5 epochs")
    args = parser.parse_args(argv)
    X_train, X_test, y_train, y_test = load_data()
    epochs = 5 if args.smoke else 50
    results = {}
    for name, model in models().items():
        print(f"== {name}")
        trainer = Trainer(model, SGD(lr=0.01))
        trainer.fit(X_train, y_train, X_test, y_test, epochs=epochs, eval_every=min(10, epochs),
                    seed=SEED)  # fmt: skip
        preds = model.forward(X_test).reshape(-1, 1)
        results[name] = (mae(preds, y_test), rmse(preds, y_test))
        print(f"\nMean absolute error: {results[name][0]:.2f}\n")
        print(f"Root mean squared error {results[name][1]:.2f}\n")
    print("| model | the book: MAE / RMSE | fastdl.book: MAE / RMSE |\n| --- | --- | --- |")
    for name, (m, r) in results.items():
        print(f"| {name} | {BOOK[name][0]:.2f} / {BOOK[name][1]:.2f} | {m:.2f} / {r:.2f} |")
    return results


if __name__ == "__main__":
    main()
