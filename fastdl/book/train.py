"""The book's ``Trainer`` (``lincoln.train``): its training loop, on fastdl's network.

``Trainer(net, optim).fit(X_train, y_train, X_test, y_test, epochs=100, eval_every=10,
batch_size=32, seed=1, single_output=False, restart=True, early_stopping=True,
conv_testing=False)`` runs the book's loop, printing what the book prints:

- ``np.random.seed(seed)`` first, then every epoch ``permute_data`` (NumPy's global
  generator) and batches of ``batch_size`` in order, the last one partial;
- every ``eval_every`` epochs the loss on ``X_test`` (in inference mode), printed as
  ``Validation loss after {e} epochs is {loss:.3f}``; with ``early_stopping``, the first
  evaluation that does not improve stops training;
- with ``conv_testing=True``, every 10 batches the batch's loss in inference mode, and every
  100 batches the accuracy on ``X_test``;
- the learning rate decays after every epoch when the optimizer has ``final_lr``.

Deliberate differences, each fixing a bug of the book's loop:

- **Early stopping restores the weights it names.** The book deep-copies the network at the
  start of each evaluation epoch and, when the loss does not improve, puts that copy —
  the weights one epoch before the evaluation, not those of the last good evaluation its
  message names — into ``trainer.net`` only, so the caller's ``model`` keeps the weights
  that did worse. Here the weights of the best evaluation are copied back into the network
  itself (``trainer.net is model`` stays true), as the printed message says.
- ``restart=True`` also resets the optimizer (the book keeps velocities shaped for the old
  weights) and the learning rate.
- A NaN or infinite validation loss counts as "not improved" (the book compares it and moves
  on); without early stopping it raises :class:`fastdl.TrainingDivergedError`, with the best
  weights restored — nothing trained is lost.
- Evaluation runs in batches of 1000 examples (same numbers, bounded memory).
- The book's dropout draws its masks from NumPy's global generator, between the epochs'
  permutations; fastdl.book's draws them from the network's generator, so with dropout the
  permutations after the first epoch differ from the book's (without dropout they are the
  book's, draw for draw).
- Early stopping compares the true cross-entropy (:mod:`fastdl.book.losses`), so it may stop
  at another evaluation than the book's, which compared its larger reported value.

``single_output`` is accepted and unused, as in the book. ``fit`` returns a
:class:`fastdl.History` of the evaluations (the book returns None).
"""

from __future__ import annotations

import math
import time

import numpy as np

from fastdl import trainer as _fd
from fastdl._checks import positive_int
from fastdl.book.utils.np_utils import permute_data
from fastdl.history import History

__all__ = ["Trainer"]


class Trainer(_fd.Trainer):
    """Trains a network with an optimizer, in the book's loop (see the module docstring).

    Parameters
    ----------
    net : NeuralNetwork
    optim : Optimizer
        Bound to ``net`` (the book's ``setattr(optim, "net", net)``).
    """

    def __init__(self, net, optim) -> None:
        super().__init__(net, optim)
        self.best_loss = 1e9

    def generate_batches(self, X: np.ndarray, y: np.ndarray, size: int = 32):
        """Yield ``(X[i:i+size], y[i:i+size])`` for ``i = 0, size, 2·size, …``."""
        if X.shape[0] != y.shape[0]:
            raise ValueError(
                f"Trainer.generate_batches: features and target must have the same number of "
                f"rows, instead features has {X.shape[0]} and target has {y.shape[0]}"
            )
        for ii in range(0, X.shape[0], size):
            yield X[ii : ii + size], y[ii : ii + size]

    def fit(
        self, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
        epochs: int = 100, eval_every: int = 10, batch_size: int = 32, seed: int = 1,
        single_output: bool = False, restart: bool = True, early_stopping: bool = True,
        conv_testing: bool = False,
    ) -> History:  # fmt: skip
        """Train with the book's loop; returns the evaluations as a ``History``.

        Shapes: ``X_train`` ``(N, ...)`` as the first layer takes, ``y_train`` ``(N, ...)``
        as the loss takes (one-hot rows for ``SoftmaxCrossEntropy``); the same for the test
        data. Everything is checked before any training arithmetic.
        """
        net, optim = self.net, self.optim
        epochs = positive_int("Trainer.fit", "epochs", epochs)
        eval_every = positive_int("Trainer.fit", "eval_every", eval_every)
        batch_size = positive_int("Trainer.fit", "batch_size", batch_size)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"Trainer.fit: seed must be an int, got {seed!r}")
        for name, x, y in (("train", X_train, y_train), ("test", X_test, y_test)):
            if not isinstance(x, np.ndarray) or not isinstance(y, np.ndarray):
                raise TypeError(f"Trainer.fit: X_{name} and y_{name} must be numpy arrays")
            if len(x) == 0 or len(x) != len(y):
                raise ValueError(
                    f"Trainer.fit: X_{name} has {len(x)} rows and y_{name} {len(y)}; expected "
                    "the same number, at least one"
                )
        # One inference pass on one example of each set checks the shapes and labels before
        # anything changes. Layers it sets up are set up again where the book sets them up,
        # and NumPy's global generator (which a book Dense reseeds) is put back as it was.
        fresh = [layer for layer in net.layers if layer.first]
        global_state = np.random.get_state()
        try:
            for name, x, y in (("train", X_train, y_train), ("test", X_test, y_test)):
                try:
                    net.loss.forward(net.forward(x[:1], inference=True), y[:1])
                    self._check_labels(y, name)
                except (ValueError, TypeError) as err:
                    raise type(err)(
                        f"Trainer.fit: X_{name} {x.shape}, y_{name} {y.shape}: {err}"
                    ) from None
        except BaseException:
            for layer in fresh:
                layer.reset()
            raise
        finally:
            np.random.set_state(global_state)
        for layer in fresh:
            layer.first = True
        labels = y_test if y_test.ndim == 1 else np.argmax(y_test, axis=1)  # conv_testing's

        np.random.seed(seed)
        if restart:
            for layer in net.layers:
                layer.first = True
            optim.reset()
            self.best_loss = 1e9
        optim.setup_decay(epochs)
        history, start = History(), time.perf_counter()
        best_weights = None  # those of the best evaluation (the initial ones before it)
        with np.errstate(over="ignore", invalid="ignore"):
            for e in range(epochs):
                X_train, y_train = permute_data(X_train, y_train)
                total = 0.0
                for ii, (X_batch, y_batch) in enumerate(
                    self.generate_batches(X_train, y_train, batch_size)
                ):
                    total += net.train_batch(X_batch, y_batch) * len(X_batch)
                    if best_weights is None:  # the initial weights (set up by that batch)
                        best_weights = net.get_weights()
                    optim.step()
                    if conv_testing:
                        self._conv_testing(ii, X_batch, y_batch, X_test, labels)
                if (e + 1) % eval_every == 0:
                    loss = net.loss.forward(net.predict(X_test), y_test)
                    history.epoch.append(e + 1)
                    history.train_loss.append(total / len(X_train))
                    history.val_loss.append(loss)
                    improved = loss < self.best_loss  # False for NaN
                    if improved or not early_stopping:
                        if not math.isfinite(loss):
                            net.set_weights(best_weights)
                            raise _fd.TrainingDivergedError(
                                f"Trainer.fit: validation loss is {loss} after epoch {e + 1}; "
                                "the weights of the best evaluation were restored"
                            )
                        print(f"Validation loss after {e + 1} epochs is {loss:.3f}")
                    if improved:
                        self.best_loss, best_weights = loss, net.get_weights()
                        history.best_epoch = e + 1
                    elif early_stopping:
                        print()
                        print(f"Loss increased after epoch {e + 1}, final loss was "
                              f"{self.best_loss:.3f},", f"\nusing the model from epoch "
                              f"{history.best_epoch or 0}")  # fmt: skip
                        net.set_weights(best_weights)
                        history.stopped_early = True
                        break
                if optim.final_lr:
                    optim.decay_lr()
        history.seconds = time.perf_counter() - start
        return history

    def _conv_testing(self, ii, X_batch, y_batch, X_test, labels) -> None:
        """The book's ``conv_testing`` prints: the batch's loss (inference mode) every 10
        batches, the test accuracy (against the class ``labels`` ``(N_test,)``) every 100."""
        net = self.net
        if ii % 10 == 0:
            batch_loss = net.loss.forward(net.forward(X_batch, inference=True), y_batch)
            print("batch", ii, "loss", batch_loss)
        if ii % 100 == 0 and ii > 0:
            hits = np.equal(np.argmax(net.predict(X_test), axis=1), labels)
            print("Validation accuracy after", ii, "batches is",
                  f"{hits.sum() * 100.0 / X_test.shape[0]:.2f}%")  # fmt: skip
