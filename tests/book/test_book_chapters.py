"""The book's chapter experiments on real data, through fastdl.book, against the book's printed
numbers; and, where fastdl.book fixes a bug of the book's code, the proof that the bug is
why the book printed what it did: the same run with the book's formula put back (here, in
the test, never in the library) lands on the book's number."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from fastdl.book.activations import Linear, Sigmoid, Tanh
from fastdl.book.base import Operation
from fastdl.book.layers import Dense
from fastdl.book.losses import MeanSquaredError, SoftmaxCrossEntropy
from fastdl.book.network import NeuralNetwork
from fastdl.book.optimizers import SGD
from fastdl.book.train import Trainer

EXAMPLES = Path(__file__).parents[2] / "examples" / "book"


def load_example(name):
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"book_{name}", EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


@pytest.fixture(scope="module")
def mnist():
    return load_example("_mnist").load()


# The book's printed validation losses of chapter 3's three models (epochs 10, 20, ..., 50).
CH3_BOOK_LOSSES = {
    "linear regression": ["30.293", "28.469", "26.293", "25.541", "25.087"],
    "one hidden layer": ["27.435", "21.839", "18.918", "17.195", "16.215"],
    "two hidden layers": ["44.143", "25.278", "22.339", "16.500", "14.655"],
}


def test_chapter3_reproduces_the_book(capsys):
    """Same initial weights, same shuffles, same split: every validation loss the notebook
    printed is printed again, digit for digit, and the errors match the book's."""
    ch3 = load_example("ch3")
    results = ch3.main([])
    out = capsys.readouterr().out
    printed = [line.split()[-1] for line in out.splitlines() if line.startswith("Validation loss")]
    assert printed == [v for losses in CH3_BOOK_LOSSES.values() for v in losses]
    for name, (mae, rmse) in results.items():
        book_mae, book_rmse = ch3.BOOK[name]
        assert abs(mae - book_mae) <= 0.15 and abs(rmse - book_rmse) <= 0.15, name


class BookReLU(Operation):
    """The book's ReLU, as its code has it: the backward mask is ``output >= 0``."""

    def _output(self, inference):
        return np.clip(self.input_, 0, None)

    def _input_grad(self, output_grad):
        return output_grad * (self.output >= 0)


class BookNormalizedMSE(MeanSquaredError):
    """The book's ``MeanSquaredError(normalize=True)``: the gradient of the normalised rows,
    returned as if it were the gradient of the prediction."""

    def __init__(self):
        super().__init__(normalize=True)

    def _input_grad(self):
        return 2.0 * (self._q - self.target) / self._q.shape[0]


def chapter4_run(mnist, activation, output, loss, epochs=50, eval_every=10):
    X_train, train_labels, X_test, test_labels, y_test = mnist
    model = NeuralNetwork([Dense(89, activation), Dense(10, output)], loss, seed=20190119)
    Trainer(model, SGD(0.1)).fit(X_train, train_labels, X_test, test_labels, epochs=epochs,
                                 eval_every=eval_every, seed=20190119, batch_size=60)  # fmt: skip
    predictions = model.predict(X_test)
    return float(np.mean(np.argmax(predictions, axis=1) == y_test) * 100)


# Chapter 4's runs are chaotic (SGD at lr 0.1, early stopping on a validation loss): the last
# bits of numpy's float64 math routines (exp, log, ...), which differ between its AVX2 and
# AVX-512 versions, move them. The ReLU run with the book's mask lands on 72.63% with AVX2 (as with
# NPY_DISABLE_CPU_FEATURES="X86_V4 AVX512_ICL") and on 75.79% with AVX-512; the momentum run
# stops after epoch 4 at 92.13%, or after epoch 6 at 93.30%. So the bands below are wide
# enough for both, and far from what the fixed code gives (92.93% for ReLU).
AVX_BAND = 5.0


def test_books_relu_mask_passes_every_gradient():
    """The book's mask ``output >= 0`` is true everywhere after a ReLU: backward is the
    identity, so the hidden layer trains as if it were linear."""
    relu = BookReLU()
    x = np.random.default_rng(0).standard_normal((6, 5))
    relu.forward(x)
    dy = np.random.default_rng(1).standard_normal((6, 5))
    np.testing.assert_array_equal(relu.backward(dy), dy)


def test_chapter4_relu_row_comes_from_the_books_relu_mask(mnist):
    """The book's 71.84% for ReLU: with its backward mask put back, the run lands there
    (within the band above), far below the 92.93% of the fixed mask."""
    acc = chapter4_run(mnist, BookReLU(), Linear(), SoftmaxCrossEntropy())
    assert abs(acc - 71.84) <= AVX_BAND, acc


def test_chapter4_normalized_mse_row_comes_from_the_books_gradient(mnist):
    """The book's 41.73% for normalised MSE: with its gradient put back, the run lands there."""
    acc = chapter4_run(mnist, Tanh(), Sigmoid(), BookNormalizedMSE())
    assert abs(acc - 41.73) <= 1.5, acc


def test_chapter5_cnn_beats_the_books_wrong_gradients(capsys):
    """The book's one-epoch CNN printed 90.31% with its wrong convolution gradients; the same
    run on fastdl's convolution does better, printing what the notebook printed."""
    acc = load_example("ch5").main([])
    out = capsys.readouterr().out.splitlines()
    progress = [line for line in out if line.startswith("Validation accuracy after")]
    assert [int(line.split()[3]) for line in progress] == list(range(100, 1000, 100))
    assert sum(line.startswith("batch ") for line in out) == 100  # batches 0, 10, ..., 990
    assert acc >= 90.31, acc


def test_chapter4_momentum_sigmoid_row(mnist):
    """Chapter 4's shortest run (the book's stops after 4 epochs; see the band above):
    within 1.5 points of the book."""
    from fastdl.book.optimizers import SGDMomentum

    X_train, train_labels, X_test, test_labels, y_test = mnist
    model = NeuralNetwork([Dense(89, Sigmoid()), Dense(10, Linear())], SoftmaxCrossEntropy(),
                          seed=20190119)  # fmt: skip
    history = Trainer(model, SGDMomentum(0.1, momentum=0.9)).fit(
        X_train, train_labels, X_test, test_labels, epochs=50, eval_every=1, seed=20190119,
        batch_size=60)  # fmt: skip
    acc = float(np.mean(np.argmax(model.predict(X_test), axis=1) == y_test) * 100)
    assert history.stopped_early and history.epoch[-1] in (4, 5, 6)  # the book's: 4
    assert abs(acc - 91.97) <= 1.5, acc


class BookDropout(Operation):
    """The book's dropout: a 0/1 mask (NumPy's global generator) while training, and the
    input times ``keep_prob`` at inference — not inverted."""

    def __init__(self, keep_prob):
        super().__init__()
        self.keep_prob = keep_prob

    def _output(self, inference):
        if inference:
            return self.input_ * self.keep_prob
        self.mask = np.random.binomial(1, self.keep_prob, size=self.input_.shape)
        return self.input_ * self.mask

    def _input_grad(self, output_grad):
        return output_grad * self.mask


class DenseWithBookDropout(Dense):
    def _setup_layer(self, x):
        super()._setup_layer(x)
        if self.dropout < 1.0:  # the last operation is fastdl's inverted dropout
            self.operations[-1] = BookDropout(self.dropout)


def test_chapter4_deep_dropout_row_comes_from_the_books_dropout(mnist):
    """The book's 97.34% for the deeper network with dropout: fastdl.book's inverted dropout
    ends at 95.20% (after the same initial weights the layers behind a dropout see inputs
    1.25× larger, so they move faster at the same learning rate, and early stopping fires at
    epoch 50). With the book's dropout put back the run lands on the book's number."""
    from fastdl.book.optimizers import SGDMomentum

    X_train, train_labels, X_test, test_labels, y_test = mnist
    model = NeuralNetwork(
        [DenseWithBookDropout(178, Tanh(), weight_init="glorot", dropout=0.8),
         DenseWithBookDropout(46, Tanh(), weight_init="glorot", dropout=0.8),
         Dense(10, Linear(), weight_init="glorot")],
        SoftmaxCrossEntropy(), seed=20190119,
    )  # fmt: skip
    optim = SGDMomentum(0.2, momentum=0.9, final_lr=0.05, decay_type="exponential")
    Trainer(model, optim).fit(X_train, train_labels, X_test, test_labels, epochs=100,
                              eval_every=10, seed=20190119, batch_size=60)  # fmt: skip
    acc = float(np.mean(np.argmax(model.predict(X_test), axis=1) == y_test) * 100)
    assert abs(acc - 97.34) <= 1.5, acc
