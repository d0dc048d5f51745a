"""Trainer: the book's training loop — shuffle, train in batches, evaluate, stop early.

``Trainer(net, optim)`` binds the optimizer to the network, as in the book, and ``fit`` runs
the loop and returns a :class:`History`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import Optimizer

__all__ = ["Trainer", "History", "TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite during ``Trainer.fit``; the best weights were kept."""


@dataclass
class History:
    """What ``Trainer.fit`` measured, one entry per evaluation.

    Attributes
    ----------
    epoch : list of int
        The epoch (1-based) after which each evaluation ran.
    train_loss : list of float
        Mean training loss over that epoch's batches (weighted by batch size).
    val_loss : list of float
        Loss on the evaluation data (``x_test``, ``y_test``); the training loss when none given.
    val_accuracy : list of float
        Accuracy in [0, 1] on the evaluation data, for ``SoftmaxCrossEntropy`` networks given
        evaluation data; empty otherwise.
    best_epoch : int or None
        Epoch of the lowest ``val_loss`` (whose weights early stopping restores).
    stopped_early : bool
    seconds : float
        Wall time of ``fit``.
    """

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    seconds: float = 0.0


def _check_xy(x: np.ndarray, y: np.ndarray, what: str) -> None:
    for name, arr in (("x_" + what, x), ("y_" + what, y)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"Trainer.fit: {name} must be a numpy array, got {type(arr).__name__}")
        if arr.ndim == 0 or len(arr) == 0:
            raise ValueError(f"Trainer.fit: {name} is empty (shape {arr.shape})")
    if len(x) != len(y):
        raise ValueError(f"Trainer.fit: x_{what} has {len(x)} examples but y_{what} has {len(y)}")


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Trainer.fit: {name} must be a positive int, got {value!r}")
    return int(value)


class Trainer:
    """Train ``net`` with ``optim``.

    Parameters
    ----------
    net : NeuralNetwork
    optim : Optimizer
        Bound to ``net`` here (``optim.bind(net)``), so ``optim.step()`` updates ``net``.
    """

    def __init__(self, net: NeuralNetwork, optim: Optimizer) -> None:
        if not isinstance(net, NeuralNetwork):
            raise TypeError(f"Trainer: net must be a NeuralNetwork, got {type(net).__name__}")
        if not isinstance(optim, Optimizer):
            raise TypeError(
                f"Trainer: optim must be a fastdl Optimizer, got {type(optim).__name__}"
            )
        self.net = net
        self.optim = optim
        optim.bind(net)

    def _evaluate(
        self, x: np.ndarray, y: np.ndarray, batch_size: int
    ) -> tuple[float, float | None]:
        """Mean loss and (for classification) accuracy of the network on ``x``, ``y``."""
        loss_fn = self.net.loss
        total_loss, correct, count = 0.0, 0, 0
        classify = isinstance(loss_fn, SoftmaxCrossEntropy)
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            out = self.net.forward(xb, inference=True)
            weight = out.size // out.shape[-1] if classify else len(xb)
            total_loss += loss_fn.forward(out, yb) * weight
            count += weight
            if classify:
                labels = yb if np.issubdtype(yb.dtype, np.integer) else yb.argmax(axis=-1)
                correct += int((out.argmax(axis=-1) == labels).sum())
        return total_loss / count, (correct / count if classify else None)

    def fit(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_test: np.ndarray | None = None,
        y_test: np.ndarray | None = None,
        epochs: int = 100,
        eval_every: int = 10,
        batch_size: int = 32,
        seed: int = 1,
        restart: bool = True,
        early_stopping: bool = True,
        verbose: int = 1,
        patience: int = 1,
        eval_batch_size: int = 1000,
    ) -> History:
        """Train for ``epochs`` epochs and evaluate every ``eval_every`` epochs.

        Parameters
        ----------
        x_train, y_train : ndarray, shapes (N, ...) and (N, ...)
        x_test, y_test : ndarray, optional
            Evaluation data; without it evaluations report the epoch's training loss.
        epochs, eval_every, batch_size : int
            The last partial batch of an epoch is used, not dropped.
        seed : int
            Seeds the ``numpy.random.Generator`` that shuffles the training data each epoch.
        restart : bool, default True
            Re-initialise the network (reseeded from its own seed) and the optimizer first.
        early_stopping : bool, default True
            Stop when the evaluation loss has not improved for ``patience`` evaluations (the
            book stops at the first), restoring the weights of the best evaluation.
        verbose : int, default 1
            1 prints one line per evaluation; 0 prints nothing.
        patience : int, default 1
        eval_batch_size : int, default 1000
            Batch size of the inference passes that evaluate.

        Returns
        -------
        History

        Raises
        ------
        TrainingDivergedError
            When a batch's loss is NaN or infinite; names the epoch and batch, and restores
            the best weights seen (the initial ones if no evaluation had run).
        """
        _check_xy(x_train, y_train, "train")
        if (x_test is None) != (y_test is None):
            raise ValueError("Trainer.fit: give both x_test and y_test, or neither")
        if x_test is not None:
            _check_xy(x_test, y_test, "test")
        epochs = _positive_int("epochs", epochs)
        eval_every = _positive_int("eval_every", eval_every)
        batch_size = _positive_int("batch_size", batch_size)
        patience = _positive_int("patience", patience)
        eval_batch_size = _positive_int("eval_batch_size", eval_batch_size)

        net, optim = self.net, self.optim
        if restart:
            net.reset()
            optim.reset()
        # One inference pass on a single example sets the layers up (lazily, as in the book)
        # and lets the loss check the labels' range before any training arithmetic.
        net.loss.forward(net.forward(x_train[:1], inference=True), y_train[:1])
        self._check_labels(x_train, y_train, "train")
        if x_test is not None:
            self._check_labels(x_test, y_test, "test")
        optim.setup_decay(epochs)

        history = History()
        rng = np.random.default_rng(seed)
        start_time = time.perf_counter()
        # Overflow and NaN are caught by the finiteness check below, with a message that says
        # where; numpy's own warnings about them would only come first and say less.
        with np.errstate(over="ignore", invalid="ignore"):
            self._loop(
                history,
                x_train,
                y_train,
                x_test,
                y_test,
                epochs,
                eval_every,
                batch_size,
                rng,
                early_stopping,
                verbose,
                patience,
                eval_batch_size,
            )
        history.seconds = time.perf_counter() - start_time
        return history

    def _loop(
        self,
        history,
        x_train,
        y_train,
        x_test,
        y_test,
        epochs,
        eval_every,
        batch_size,
        rng,
        early_stopping,
        verbose,
        patience,
        eval_batch_size,
    ) -> None:
        net, optim = self.net, self.optim
        n = len(x_train)
        start_time = time.perf_counter()
        best_loss, best_weights = math.inf, net.get_weights()
        bad_evals = 0
        for epoch in range(1, epochs + 1):
            order = rng.permutation(n)
            epoch_loss = 0.0
            for batch, start in enumerate(range(0, n, batch_size), start=1):
                idx = order[start : start + batch_size]
                loss = net.train_batch(x_train[idx], y_train[idx])
                if not math.isfinite(loss):
                    net.set_weights(best_weights)
                    raise TrainingDivergedError(
                        f"Trainer.fit: loss is {loss} at epoch {epoch}, batch {batch} "
                        f"(examples {start}..{start + len(idx) - 1} of the shuffled epoch); "
                        "training stopped and the best weights were restored — try a lower "
                        "learning rate or gradient clipping (clip_norm=)"
                    )
                optim.step()
                epoch_loss += loss * len(idx)
            train_loss = epoch_loss / n

            if epoch % eval_every == 0 or epoch == epochs:
                if x_test is not None:
                    val_loss, val_acc = self._evaluate(x_test, y_test, eval_batch_size)
                else:
                    val_loss, val_acc = train_loss, None
                history.epoch.append(epoch)
                history.train_loss.append(train_loss)
                history.val_loss.append(val_loss)
                if val_acc is not None:
                    history.val_accuracy.append(val_acc)
                if verbose:
                    acc = f"  val acc {100 * val_acc:.2f}%" if val_acc is not None else ""
                    print(
                        f"epoch {epoch}/{epochs}  train loss {train_loss:.4f}  "
                        f"val loss {val_loss:.4f}{acc}  ({time.perf_counter() - start_time:.1f} s)",
                        flush=True,
                    )
                if val_loss < best_loss:
                    best_loss, best_weights, history.best_epoch = val_loss, net.get_weights(), epoch
                    bad_evals = 0
                elif early_stopping:
                    bad_evals += 1
                    if bad_evals >= patience:
                        net.set_weights(best_weights)
                        history.stopped_early = True
                        if verbose:
                            print(
                                f"early stopping: loss did not improve; restored the weights of "
                                f"epoch {history.best_epoch} (val loss {best_loss:.4f})",
                                flush=True,
                            )
                        return
            optim.decay_lr()

    def _check_labels(self, x: np.ndarray, y: np.ndarray, what: str) -> None:
        """Check all labels against the network's output size before training starts."""
        if not isinstance(self.net.loss, SoftmaxCrossEntropy) or not np.issubdtype(
            y.dtype, np.integer
        ):
            return
        k = self.net.layers[-1].output.shape[-1]
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= k:
            raise ValueError(
                f"Trainer.fit: y_{what} labels must be in [0, {k}) for the network's {k} outputs, "
                f"got values in [{lo}, {hi}]"
            )
