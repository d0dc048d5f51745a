"""Trainer: the book's training loop — shuffle, train in batches, evaluate, stop early.

``Trainer(net, optim)`` binds the optimizer to the network, as in the book, and ``fit`` runs
the loop and returns a :class:`History`.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from fastdl import checkpoint as ckpt
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
    """Bookkeeping of one ``fit``: where the loop is, and the best evaluation so far.

    Everything here (with the network, the optimizer and their generators) is what a
    checkpoint holds, so a resumed run continues bit for bit.
    """

    history: History
    best_loss: float
    best_weights: list
    bad_evals: int
    start: float
    shuffle: np.random.Generator
    epoch: int = 1  # the epoch in progress (1-based)
    batch: int = 0  # its batches done
    order: np.ndarray | None = None  # its shuffled order (None before it starts)
    total: float = 0.0  # the sum of its batches' loss × batch size so far
    seconds_before: float = 0.0  # wall time of the runs this one resumes
    interrupted: bool = False  # Ctrl-C seen: stop after the batch in progress

    def elapsed(self) -> float:
        return self.seconds_before + time.perf_counter() - self.start


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


@contextlib.contextmanager
def _deferred_interrupt(run):
    """While the block runs, a first Ctrl-C only sets ``run.interrupted`` (the loop stops at
    a consistent point); a second raises at once. Only in the main thread, where Python
    delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if run.interrupted:
            raise KeyboardInterrupt
        run.interrupted = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        resume: str | os.PathLike | None = None,
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
        checkpoint : path, optional
            Write the loop's whole state there (see :mod:`fastdl.checkpoint`), atomically, at
            the end of every epoch and every ``checkpoint_every`` training batches.
        checkpoint_every : int, optional
            Also checkpoint after every this many training batches. Counted in batches, not
            seconds, so the positions do not depend on the machine's speed (and a test can
            name them); one checkpoint of the reference CNN takes milliseconds.
        resume : path, optional
            Continue the run that wrote this checkpoint: the final weights are bit for bit
            those of the uninterrupted run (same data, same settings, same thread count).
            The settings, network and optimizer must be those of that run (checked);
            ``restart`` does not apply.

        Ctrl-C (``KeyboardInterrupt``) stops after the batch in progress: the checkpoint is
        written if one is configured, the network ends on the best weights seen (the initial
        ones before any evaluation), and the interrupt is raised again. A second Ctrl-C
        interrupts at once.

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
        if checkpoint_every is not None:
            checkpoint_every = positive_int("Trainer.fit", "checkpoint_every", checkpoint_every)
            if checkpoint is None:
                raise ValueError("Trainer.fit: checkpoint_every needs checkpoint= (a path)")
        saved = ckpt.read(resume) if resume is not None else None
        settings = {
            "epochs": epochs, "eval_every": eval_every, "batch_size": batch_size,
            "seed": seed, "early_stopping": bool(early_stopping), "patience": patience,
            "eval_batch_size": eval_batch_size, "n_train": len(x_train),
            "n_test": None if x_test is None else len(x_test),
        }  # fmt: skip

        net, optim = self.net, self.optim
        # One inference pass on a single example of each set sets the layers up (lazily, as in
        # the book) and lets the network and loss check shapes and every label before any
        # training arithmetic, and before restart discards any trained weights.
        net.reset_state()  # state an earlier fit or predict left would not fit a batch of one
        net.loss.forward(net.forward(x_train[:1], inference=True), y_train[:1])
        self._check_labels(y_train, "train")
        if x_test is not None:
            net.loss.forward(net.forward(x_test[:1], inference=True), y_test[:1])
            self._check_labels(y_test, "test")
        net.reset_state()  # the checking passes must not leave state in stateful layers
        if restart and saved is None:
            if verbose and net.params() and optim.iterations:
                print("fit: restart=True re-initialises the trained weights "
                      "(restart=False continues from them)", flush=True)  # fmt: skip
            net.reset()
            optim.reset()
            net.forward(x_train[:1], inference=True)  # set the fresh layers up
            net.reset_state()
        optim.setup_decay(epochs)

        history = History()
        run = _Run(history, math.inf, net.get_weights(), 0, time.perf_counter(),
                   np.random.default_rng(seed))  # fmt: skip
        if saved is not None:
            ckpt.restore(self, *saved, run, settings, resume)
        save = (lambda: ckpt.write(checkpoint, self, run, settings)) if checkpoint else None
        # Overflow and NaN are caught by the finiteness checks, with a message that says where;
        # numpy's own warnings about them would only come first and say less.
        with np.errstate(over="ignore", invalid="ignore"), _deferred_interrupt(run):
            while run.epoch <= epochs and not history.stopped_early:
                epoch = run.epoch
                train_loss = self._train_epoch(x_train, y_train, batch_size, run,
                                               checkpoint_every, save)  # fmt: skip
                if epoch % eval_every == 0 or epoch == epochs:
                    self._evaluation(run, epoch, epochs, train_loss, x_test, y_test,
                                     x_train, y_train, eval_batch_size, verbose,
                                     early_stopping, patience)  # fmt: skip
                if epoch < epochs:
                    optim.decay_lr()
                run.epoch, run.batch, run.order, run.total = epoch + 1, 0, None, 0.0
                if save is not None:
                    save()
                self._stop_if_interrupted(run)
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
        history.seconds = run.elapsed()
        return history

    def _evaluation(self, run, epoch, epochs, train_loss, x_test, y_test, x_train, y_train,
                    eval_batch_size, verbose, early_stopping, patience) -> None:  # fmt: skip
        """Evaluate after ``epoch``, record it, keep the best weights, decide early stopping."""
        net, optim, history = self.net, self.optim, run.history
        # With use_ema the averaged weights are the ones evaluated and kept; the raw weights
        # go back in afterwards and training continues from them.
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

    def _stop_if_interrupted(self, run) -> None:
        """After a Ctrl-C: end on the best weights seen and raise ``KeyboardInterrupt``."""
        if not run.interrupted:
            return
        self.net.set_weights(run.best_weights)
        self.net.reset_state()
        self.optim.restart_ema()
        which = "initial" if run.history.best_epoch is None else "best"
        raise KeyboardInterrupt(f"Trainer.fit interrupted; the {which} weights were restored")

    def _train_epoch(self, x, y, batch_size: int, run, checkpoint_every, save) -> float:
        """The rest of the epoch ``run.epoch`` (all of it, unless resumed partway); returns
        its mean training loss. Checkpoints every ``checkpoint_every`` batches."""
        net, optim = self.net, self.optim
        n = len(x)
        if run.order is None:
            run.order = run.shuffle.permutation(n)
        starts = range(0, n, batch_size)
        for batch in range(run.batch + 1, len(starts) + 1):
            start = starts[batch - 1]
            idx = run.order[start : start + batch_size]
            net.reset_state()  # shuffled batches hold unrelated sequences: no state carries over
            loss = net.train_batch(x[idx], y[idx])
            if not math.isfinite(loss):
                self._diverged(
                    run,
                    f"loss is {loss} at epoch {run.epoch}, batch {batch} "
                    f"(examples {start}..{start + len(idx) - 1} of the shuffled epoch)",
                )
            optim.step()
            run.total += loss * len(idx)
            run.batch = batch
            if save is not None and (
                (checkpoint_every is not None and batch % checkpoint_every == 0)
                or (run.interrupted and batch < len(starts))
            ):
                save()
            self._stop_if_interrupted(run)
        if not all(np.isfinite(p).all() for p in net.params()):
            self._diverged(
                run, f"the weights became NaN or infinite in the last update of epoch {run.epoch}"
            )
        return run.total / n

    def _diverged(self, run, where: str) -> None:
        self.net.set_weights(run.best_weights)
        self.net.reset_state()
        self.optim.restart_ema()
        which = (
            "the initial weights (no evaluation had run yet)"
            if run.history.best_epoch is None
            else f"the best weights (epoch {run.history.best_epoch})"
        )
        raise TrainingDivergedError(
            f"Trainer.fit: {where}; training stopped and {which} were restored — "
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
