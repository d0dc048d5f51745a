"""Chapters 4 and 5's MNIST preparation, as the notebooks write it (shared by ch4.py, ch5.py).

One-hot labels ``(N, 10)``; pixels centred on the training mean and divided by the training
standard deviation (the notebooks' two cells, in float64).
"""

import numpy as np

from fastdl.book.utils import mnist


def load(smoke: bool = False):
    """``X_train (N, 784), train_labels (N, 10), X_test, test_labels, y_test (labels)``; with
    ``smoke`` the first 2,000 training and 1,000 test examples."""
    X_train, y_train, X_test, y_test = mnist.load()
    if smoke:
        X_train, y_train, X_test, y_test = (
            X_train[:2000],
            y_train[:2000],
            X_test[:1000],
            y_test[:1000],
        )
    train_labels = np.zeros((len(y_train), 10))
    train_labels[np.arange(len(y_train)), y_train] = 1
    test_labels = np.zeros((len(y_test), 10))
    test_labels[np.arange(len(y_test)), y_test] = 1
    # The notebooks' two cells: both right-hand sides use the training set's statistics.
    X_train, X_test = X_train - np.mean(X_train), X_test - np.mean(X_train)
    X_train, X_test = X_train / np.std(X_train), X_test / np.std(X_train)
    return X_train, train_labels, X_test, test_labels, y_test


def accuracy(model, X_test, y_test) -> float:
    """Percentage of test examples whose largest output is the label (the notebooks'
    ``calc_accuracy_model``)."""
    predictions = model.predict(X_test)  # forward(X_test, inference=True), 1,000 at a time
    return float(np.equal(np.argmax(predictions, axis=1), y_test).sum() * 100.0 / X_test.shape[0])
