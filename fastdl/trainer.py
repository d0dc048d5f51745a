"""Trainer: the book's training loop — shuffle, train in batches, evaluate, stop early.

``Trainer(net, optim)`` binds the optimizer to the network, as in the book, and ``fit`` runs
the loop and returns a :class:`History`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from fastdl._checks import positive_int
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


@dataclass
class _Run:
    """Bookkeeping of one ``fit``: the best evaluation so far and its weights."""

    history: History
    best_loss: float
    best_weights: list
    bad_evals: int
    start: float


def _check_xy(x: np.ndarray, y: np.ndarray, what: str) -> None:
    for name, arr in (("x_" + what, x), ("y_" + what, y)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"Trainer.fit: {name} must be a numpy array, got {type(arr).__name__}")
        if arr.ndim == 0 or len(arr) == 0:
            raise ValueError(f"Trainer.fit: {name} is empty (shape {arr.shape})")
        if np.issubdtype(arr.dtype, np.inexact) and not np.isfinite(arr).all():
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(
                f"Trainer.fit: {name} holds {bad} NaN or infinite value(s); "
                "a network cannot learn from them (and the loss would report a divergence)"
            )
    if len(x) != len(y):
        raise ValueError(f"Trainer.fit: x_{what} has {len(x)} examples but y_{what} has {len(y)}")


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
            self.net.reset_state()  # each batch holds other sequences than the one before
            out = self.net.forward(xb, inference=True)
            weight = out.size // out.shape[-1] if classify else len(xb)
            total_loss += loss_fn.forward(out, yb) * weight
            count += weight
            if classify:
                labels = yb if np.issubdtype(yb.dtype, np.integer) else yb.argmax(axis=-1)
                correct += int((out.argmax(axis=-1) == labels).sum())
        self.net.reset_state()
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
            Examples are shuffled every epoch, so batches are independent: stateful
            recurrent layers start every batch (training and evaluation) from zero state.
            For truncated backpropagation through time over long streams, call
            ``net.train_batch`` in your own loop (see :mod:`fastdl.recipes.char_lstm`).
        x_test, y_test : ndarray, optional
            Evaluation data; without it evaluations report the epoch's training loss (see
            ``early_stopping`` for ``use_ema``).
        epochs, eval_every, batch_size : int
            The last partial batch of an epoch is used, not dropped.
        seed : int
            Seeds the ``numpy.random.Generator`` that shuffles the training data each epoch.
        restart : bool, default True
            Re-initialise the network (reseeded from its own seed) and the optimizer first.
        early_stopping : bool, default True
            Stop when the evaluation loss has not improved for ``patience`` evaluations (the
            book stops at the first). Either way, training ends on the weights of the best
            evaluation (as Keras's ``EarlyStopping(restore_best_weights=True)``). With
            ``use_ema`` on the optimizer, evaluations use (and training ends on) the moving
            average of the weights; without test data they then evaluate the average on the
            training data (an extra inference pass), since the epoch's loss belongs to the raw
            weights. A later ``fit(restart=False)`` continues from the weights ``fit`` ended
            on, with the optimizer's velocities kept and a new average.
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
            When a batch's loss, an evaluation loss or the weights become NaN or infinite;
            names the epoch (and batch), and restores the best weights seen (the initial ones
            if no evaluation had run).
        """
        _check_xy(x_train, y_train, "train")
        if (x_test is None) != (y_test is None):
            raise ValueError("Trainer.fit: give both x_test and y_test, or neither")
        if x_test is not None:
            _check_xy(x_test, y_test, "test")
        epochs = positive_int("Trainer.fit", "epochs", epochs)
        eval_every = positive_int("Trainer.fit", "eval_every", eval_every)
        batch_size = positive_int("Trainer.fit", "batch_size", batch_size)
        patience = positive_int("Trainer.fit", "patience", patience)
        eval_batch_size = positive_int("Trainer.fit", "eval_batch_size", eval_batch_size)

        net, optim = self.net, self.optim
        if restart:
            net.reset()
            optim.reset()
        # One inference pass on a single example of each set sets the layers up (lazily, as in
        # the book) and lets the network and loss check shapes before any training arithmetic.
        net.reset_state()  # state an earlier fit or predict left would not fit a batch of one
        net.loss.forward(net.forward(x_train[:1], inference=True), y_train[:1])
        self._check_labels(y_train, "train")
        if x_test is not None:
            net.loss.forward(net.forward(x_test[:1], inference=True), y_test[:1])
            self._check_labels(y_test, "test")
        net.reset_state()  # the checking passes must not leave state in stateful layers
        optim.setup_decay(epochs)

        history = History()
        run = _Run(history, math.inf, net.get_weights(), 0, time.perf_counter())
        rng = np.random.default_rng(seed)
        # Overflow and NaN are caught by the finiteness checks, with a message that says where;
        # numpy's own warnings about them would only come first and say less.
        with np.errstate(over="ignore", invalid="ignore"):
            for epoch in range(1, epochs + 1):
                train_loss = self._train_epoch(x_train, y_train, batch_size, rng, epoch, run)
                if epoch % eval_every == 0 or epoch == epochs:
                    # With use_ema the averaged weights are the ones evaluated and kept; the
                    # raw weights go back in afterwards and training continues from them.
                    raw = net.get_weights() if optim.use_ema else None
                    if raw is not None:
                        optim.apply_ema()
                    if x_test is not None:
                        val_loss, val_acc = self._evaluate(x_test, y_test, eval_batch_size)
                    elif raw is not None:  # the averaged weights were not the ones trained
                        val_loss, _ = self._evaluate(x_train, y_train, eval_batch_size)
                        val_acc = None
                    else:
                        val_loss, val_acc = train_loss, None
                    if not math.isfinite(val_loss):
                        self._diverged(run, f"evaluation loss is {val_loss} after epoch {epoch}")
                    self._record(run, epoch, epochs, train_loss, val_loss, val_acc, verbose)
                    improved = val_loss < run.best_loss
                    if improved:
                        run.best_loss, run.best_weights = val_loss, net.get_weights()
                        history.best_epoch, run.bad_evals = epoch, 0
                    if raw is not None:
                        net.set_weights(raw)
                    if not improved and early_stopping:
                        run.bad_evals += 1
                        if run.bad_evals >= patience:
                            history.stopped_early = True
                            break
                if epoch < epochs:
                    optim.decay_lr()
        if optim.use_ema:
            optim.apply_ema()  # the weights of the last evaluation: no step has come since
            optim.restart_ema()
        if (
            early_stopping
            and history.best_epoch is not None
            and history.best_epoch != history.epoch[-1]
        ):
            net.set_weights(run.best_weights)
            if verbose:
                why = "loss did not improve" if history.stopped_early else "end of training"
                print(
                    f"early stopping ({why}): restored the weights of epoch {history.best_epoch} "
                    f"(val loss {run.best_loss:.4f})",
                    flush=True,
                )
        net.reset_state()  # what training carried belongs to no sequence a caller has
        history.seconds = time.perf_counter() - run.start
        return history

    def _train_epoch(
        self, x, y, batch_size: int, rng: np.random.Generator, epoch: int, run
    ) -> float:
        """One pass over the shuffled data; returns the mean training loss."""
        net, optim = self.net, self.optim
        n = len(x)
        order = rng.permutation(n)
        total = 0.0
        for batch, start in enumerate(range(0, n, batch_size), start=1):
            idx = order[start : start + batch_size]
            net.reset_state()  # shuffled batches hold unrelated sequences: no state carries over
            loss = net.train_batch(x[idx], y[idx])
            if not math.isfinite(loss):
                self._diverged(
                    run,
                    f"loss is {loss} at epoch {epoch}, batch {batch} "
                    f"(examples {start}..{start + len(idx) - 1} of the shuffled epoch)",
                )
            optim.step()
            total += loss * len(idx)
        if not all(np.isfinite(p).all() for p in net.params()):
            self._diverged(
                run, f"the weights became NaN or infinite in the last update of epoch {epoch}"
            )
        return total / n

    def _diverged(self, run, where: str) -> None:
        self.net.set_weights(run.best_weights)
        self.net.reset_state()
        self.optim.restart_ema()
        raise TrainingDivergedError(
            f"Trainer.fit: {where}; training stopped and the best weights were restored — "
            "try a lower learning rate or gradient clipping (clip_norm=)"
        )

    @staticmethod
    def _record(run, epoch, epochs, train_loss, val_loss, val_acc, verbose) -> None:
        history = run.history
        history.epoch.append(epoch)
        history.train_loss.append(train_loss)
        history.val_loss.append(val_loss)
        if val_acc is not None:
            history.val_accuracy.append(val_acc)
        if verbose:
            acc = f"  val acc {100 * val_acc:.2f}%" if val_acc is not None else ""
            print(
                f"epoch {epoch}/{epochs}  train loss {train_loss:.4f}  val loss {val_loss:.4f}{acc}"
                f"  ({time.perf_counter() - run.start:.1f} s)",
                flush=True,
            )

    def _check_labels(self, y: np.ndarray, what: str) -> None:
        """Check all labels against the network's output before training starts.

        The checking pass saw one example; here every target is checked, as the loss would
        check it batch by batch (one-hot rows non-negative and summing to 1, shapes), so a
        bad row late in the data cannot stop training halfway with the weights changed.
        """
        out = self.net.layers[-1].output  # of the one-example checking pass
        if not (
            isinstance(self.net.loss, SoftmaxCrossEntropy) and np.issubdtype(y.dtype, np.integer)
        ):
            whole = np.broadcast_to(np.zeros((), out.dtype), (len(y), *out.shape[1:]))
            try:
                self.net.loss._check_target(whole, y)
            except ValueError as error:
                raise ValueError(f"Trainer.fit: y_{what}: {error}") from None
            return
        k = out.shape[-1]
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= k:
            raise ValueError(
                f"Trainer.fit: y_{what} labels must be in [0, {k}) for the network's {k} outputs, "
                f"got values in [{lo}, {hi}]"
            )
