"""Trainer: the book's training loop — shuffle, train in batches, evaluate, stop early.

``Trainer(net, optim)`` binds the optimizer to the network, as in the book, and ``fit`` runs
the loop and returns a :class:`History`. Everything around the loop — early stopping,
checkpoints, the progress display, a user's own hooks — is a :class:`~fastdl.Callback`
that ``fit`` composes (:mod:`fastdl.callbacks`); the loop itself is::

    for epoch in epochs:
        for batch in batches (shuffled, or in order for stateful streams):
            loss = net.train_batch(x[batch], y[batch]);  optim.step()
        every eval_every epochs: evaluate, keep the best weights
        optim.decay_lr()
    end on the best weights
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fastdl import _data_parallel as dp
from fastdl import checkpoint as ckpt
from fastdl._checks import positive_int
from fastdl._fit_settings import check_rows, check_xy, fit_settings, try_augment
from fastdl.callbacks.base import Callback, CallbackList
from fastdl.callbacks.checkpointing import Checkpointing
from fastdl.callbacks.early_stopping import EarlyStopping
from fastdl.callbacks.progress import Progress
from fastdl.history import History
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import Optimizer

__all__ = ["Trainer", "History", "TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite during ``Trainer.fit``; the best weights were kept."""


@dataclass
class _Run:
    """Bookkeeping of one ``fit``: where the loop is, and the best evaluation so far.

    Everything here (with the network, the optimizer, their generators and the callbacks'
    ``state_dict``) is what a checkpoint holds, so a resumed run continues bit for bit.
    """

    history: History
    best_loss: float
    best_weights: list
    start: float
    shuffle: np.random.Generator
    epoch: int = 1  # the epoch in progress (1-based)
    batch: int = 0  # its batches done
    order: np.ndarray | None = None  # its order of examples (None before it starts)
    total: float = 0.0  # the sum of its batches' loss × batch size so far
    seen: int = 0  # its examples trained on so far
    seconds_before: float = 0.0  # wall time of the runs this one resumes
    stopped: bool = False  # the run has ended (early stopping or a callback): resume ends too
    augment: Callable | None = None  # fit's augment (a checkpoint records it in the settings)

    def elapsed(self) -> float:
        return self.seconds_before + time.perf_counter() - self.start


@contextlib.contextmanager
def _deferred_interrupt(trainer):
    """While the block runs, a first Ctrl-C only sets ``trainer.interrupted`` (the loop stops
    at a consistent point); a second raises at once. Only in the main thread, where Python
    delivers signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if trainer.interrupted:
            raise KeyboardInterrupt
        trainer.interrupted = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _Hooks(CallbackList):
    """The callbacks of one ``fit``; notes which one set ``trainer.stop_training``."""

    def call(self, hook: str, trainer, logs: dict) -> None:
        for cb in self.callbacks:
            was = trainer.stop_training
            getattr(cb, hook)(trainer, logs)
            if trainer.stop_training and not was and trainer._stopped_by is None:
                trainer._stopped_by = type(cb).__name__


class Trainer:
    """Train ``net`` with ``optim``.

    Parameters
    ----------
    net : NeuralNetwork
    optim : Optimizer
        Bound to ``net`` here (``optim.bind(net)``), so ``optim.step()`` updates ``net``.
    distributed : Communicator, optional
        From :func:`fastdl.distributed.init`: data-parallel training over its processes
        (:mod:`fastdl._data_parallel`). ``fit``'s ``batch_size`` is then the global batch;
        each process trains its rows of every batch, and the processes' gradients are summed
        before every step, so the weights are those of one process training the global
        batch. Only process 0 prints and writes checkpoints; every process can resume from
        one. Callbacks run in every process (check ``trainer.distributed.rank``).

    Attributes
    ----------
    stop_training : bool
        A callback sets it to end ``fit`` after the batch in progress.
    """

    def __init__(self, net: NeuralNetwork, optim: Optimizer, distributed=None) -> None:
        if not isinstance(net, NeuralNetwork):
            raise TypeError(f"Trainer: net must be a NeuralNetwork, got {type(net).__name__}")
        if not isinstance(optim, Optimizer):
            raise TypeError(
                f"Trainer: optim must be a fastdl Optimizer, got {type(optim).__name__}"
            )
        if distributed is not None:
            from fastdl.distributed import Communicator

            if not isinstance(distributed, Communicator):
                raise TypeError(
                    "Trainer: distributed must be a communicator from fd.distributed.init(), "
                    f"got {type(distributed).__name__}"
                )
        self.net = net
        self.optim = optim
        self.distributed = distributed
        # data parallelism only with more than one process: one process runs the plain loop
        self._comm = distributed if distributed is not None and distributed.size > 1 else None
        self.stop_training = False
        self.interrupted = False  # Ctrl-C seen during fit: stop after the batch in progress
        self._stopped_by = None
        optim.bind(net)

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(
        self, x: np.ndarray, y: np.ndarray, batch_size: int = 1000, stateful: bool = False
    ) -> dict:
        """Loss (and accuracy, for ``SoftmaxCrossEntropy``) of the network on ``x``, ``y``.

        Parameters
        ----------
        x, y : ndarray, shapes (N, ...) and (N, ...)
        batch_size : int, default 1000
        stateful : bool, default False
            Carry stateful layers' state from each batch to the next (streams laid out as
            for ``fit(stateful=True)``, ``batch_size`` streams); otherwise every batch starts
            from zero state.

        Returns
        -------
        dict
            ``{"loss": float}``, plus ``"accuracy"`` (a fraction) when classifying. The
            loss is averaged over examples (over every time step for sequences).
        """
        check_xy(x, y, "", "Trainer.evaluate")
        batch_size = positive_int("Trainer.evaluate", "batch_size", batch_size)
        loss, acc = self._evaluate(x, y, batch_size, stateful)
        return {"loss": loss} if acc is None else {"loss": loss, "accuracy": acc}

    def _evaluate(
        self, x: np.ndarray, y: np.ndarray, batch_size: int, stateful: bool = False
    ) -> tuple[float, float | None]:
        """Mean loss and (for classification) accuracy of the network on ``x``, ``y``."""
        loss_fn = self.net.loss
        total_loss, correct, count = 0.0, 0, 0
        classify = isinstance(loss_fn, SoftmaxCrossEntropy)
        self.net.reset_state()
        comm = self._comm
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            if comm is not None:  # this process's rows of the batch
                lo, hi = dp.shard(len(xb), comm.rank, comm.size)
                if hi == lo:
                    continue
                xb, yb = xb[lo:hi], yb[lo:hi]
            if not stateful:
                self.net.reset_state()  # each batch holds other sequences than the one before
            out = self.net.forward(xb, inference=True)
            weight = out.size // out.shape[-1] if classify else len(xb)
            total_loss += loss_fn.forward(out, yb) * weight
            count += weight
            if classify:
                labels = yb if np.issubdtype(yb.dtype, np.integer) else yb.argmax(axis=-1)
                correct += int((out.argmax(axis=-1) == labels).sum())
        self.net.reset_state()
        if comm is not None:
            total_loss, correct, count = comm.allreduce_sum([total_loss, correct, count])
        return total_loss / count, (correct / count if classify else None)

    # -- the loop -----------------------------------------------------------------------------

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
        eval_batch_size: int | None = None,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        resume: str | os.PathLike | None = None,
        callbacks: list[Callback] | None = None,
        shuffle: bool = True,
        stateful: bool = False,
        validation_split: float | None = None,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    ) -> History:
        """Train for ``epochs`` epochs and evaluate every ``eval_every`` epochs.

        Parameters
        ----------
        x_train, y_train : ndarray, shapes (N, ...) and (N, ...)
            Shuffled every epoch (``shuffle=True``), so batches are independent: stateful
            recurrent layers then start every batch from zero state.
        x_test, y_test : ndarray, optional
            Evaluation data; without it (and without ``validation_split``) evaluations
            report the epoch's training loss (see ``early_stopping`` for ``use_ema``).
        epochs, eval_every, batch_size : int
            The last partial batch of an epoch is used, not dropped.
        seed : int
            Seeds the ``numpy.random.Generator`` that shuffles the training data each epoch.
        restart : bool, default True
            Re-initialise the network (reseeded from its own seed) and the optimizer first,
            as the book's ``Trainer`` does (a Keras ``fit`` continues instead: pass
            ``restart=False``). When this discards trained weights, ``fit`` says so.
        early_stopping : bool, default True
            Stop when the evaluation loss has not improved for ``patience`` evaluations (the
            book stops at the first; :class:`~fastdl.callbacks.EarlyStopping`). Either way,
            training ends on the weights of the best evaluation (as Keras's
            ``restore_best_weights=True``). With ``use_ema`` on the optimizer, evaluations
            use (and training ends on) the moving average of the weights; without
            evaluation data they then evaluate the average on the training data (an extra
            inference pass), since the epoch's loss belongs to the raw weights. A later
            ``fit(restart=False)`` continues from the weights ``fit`` ended on, with the
            optimizer's velocities kept and a new average.
        verbose : {0, 1, 2}, default 1
            1: a progress bar per epoch (plain lines when the output is not a terminal)
            and a line per epoch; 2: the line per epoch only; 0: nothing
            (:mod:`fastdl.callbacks.progress`; ``FASTDL_PROGRESS=0`` turns bars off).
        patience : int, default 1
        eval_batch_size : int, optional
            Batch size of the inference passes that evaluate: 1000 by default;
            ``batch_size`` (the number of streams) with ``stateful=True``.
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
            The settings, network, optimizer and stateful callbacks must be those of that
            run (checked); ``restart`` does not apply.
        callbacks : list of Callback, optional
            Called in this order, before fit's own (early stopping, progress, checkpoint);
            see :mod:`fastdl.callbacks.base` for the hooks and their ``logs``. A callback
            with ``state_dict()``/``load_state_dict()`` has its state kept in checkpoints.
        shuffle : bool, default True
            False: batches in the order of the data, every epoch.
        stateful : bool, default False
            Truncated backpropagation through time over streams (needs ``shuffle=False``
            and a layer built with ``stateful=True``): batch ``b`` is examples
            ``b·batch_size … (b+1)·batch_size − 1``, and row ``i`` of each batch continues
            row ``i`` of the batch before, so ``N`` must be a multiple of ``batch_size``
            (:func:`fastdl.datasets.stream_windows` lays a text out so). The recurrent
            state is carried from batch to batch (gradients stop at the batch boundary)
            and reset at each epoch; evaluation runs the same way over its data.
        validation_split : float, optional
            Hold out the last fraction of ``x_train``, ``y_train`` — taken before any
            shuffling, as Keras does — as the evaluation data (not with ``x_test``). With
            ``stateful=True`` both parts are whole batches.
        augment : callable, optional
            ``augment(x, rng)`` → a new batch of ``x``'s shape, such as
            :class:`fastdl.augment.RandomTranslate`: applied to every training batch, never
            to evaluation data (``x_test``, the ``validation_split``, or the training data
            evaluated when there is none). ``rng`` is fit's own generator, the one that
            shuffles, so the same ``seed`` gives the same run bit for bit, and a checkpoint
            keeps its state (a resumed run continues bit for bit; resuming with another
            ``augment`` is refused — compared by class and ``get_config()``, or by name for
            a plain function). Needs float images ``(N, C, H, W)``; fit calls it once on one
            image, with a generator of its own, to check it before training. Over several
            processes every process augments the whole global batch with the same draws
            and trains its rows of it, so any ``augment`` trains as one process would.

        Ctrl-C (``KeyboardInterrupt``) stops after the batch in progress: the checkpoint is
        written if one is configured, the network ends on the best weights seen (the initial
        ones before any evaluation), and the interrupt is raised again. A second Ctrl-C
        interrupts at once. A callback that sets ``trainer.stop_training`` ends the run after
        the batch in progress: that (partial) epoch is evaluated, and the run ends as after
        early stopping.

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
        net, optim = self.net, self.optim
        settings, data, checkpoint_every = fit_settings(
            self.net, x_train, y_train, x_test, y_test, epochs=epochs, eval_every=eval_every,
            batch_size=batch_size, seed=seed, early_stopping=early_stopping, verbose=verbose,
            patience=patience, eval_batch_size=eval_batch_size, checkpoint=checkpoint,
            checkpoint_every=checkpoint_every, shuffle=shuffle, stateful=stateful,
            validation_split=validation_split, augment=augment,
        )  # fmt: skip
        x_train, y_train, x_test, y_test = data
        epochs, batch_size = settings["epochs"], settings["batch_size"]
        comm = self._comm
        check_rows(net, len(x_train), batch_size, 1 if comm is None else comm.size)
        if comm is not None:
            if stateful and batch_size < comm.size:
                raise ValueError(
                    f"Trainer.fit: stateful=True over {comm.size} processes needs at least one "
                    f"stream per process; batch_size={batch_size} streams are too few"
                )
            if comm.rank != 0:  # process 0 speaks and writes for all
                verbose, checkpoint = 0, None
        user = CallbackList(callbacks or ())
        saved = ckpt.read(resume) if resume is not None else None

        # One inference pass on a single example of each set sets the layers up (lazily, as in
        # the book) and lets the network and loss check shapes and every label before any
        # training arithmetic, and before restart discards any trained weights.
        progress = Progress(verbose) if verbose else None
        if progress is not None:
            progress.notice_compiling()  # before the checking passes below compile anything
        net.reset_state()  # state an earlier fit or predict left would not fit a batch of one
        with contextlib.nullcontext() if comm is None else dp.first_on_each_machine(comm):
            net.loss.forward(net.forward(x_train[:1], inference=True), y_train[:1])
            self._check_labels(y_train, "train")
            if augment is not None:
                try_augment(augment, x_train)
            if x_test is not None:
                net.loss.forward(net.forward(x_test[:1], inference=True), y_test[:1])
                self._check_labels(y_test, "test")
        net.reset_state()  # the checking passes must not leave state in stateful layers
        batches = -(-len(x_train) // batch_size)
        for callback in user:  # a callback may refuse the run while nothing has changed yet
            check = getattr(callback, "check", None)
            if check is not None:
                check(self, {"epochs": epochs, "batches": batches})
        if restart and saved is None:
            if progress is not None and net.params() and optim.iterations:
                progress.note("fit: restart=True re-initialises the trained weights "
                              "(restart=False continues from them)")  # fmt: skip
            net.reset()
            optim.reset()
            net.forward(x_train[:1], inference=True)  # set the fresh layers up
            net.reset_state()
        optim.setup_decay(epochs)
        if comm is not None:
            dp.broadcast_params(net, comm)

        history = History()
        run = _Run(history, math.inf, net.get_weights(), time.perf_counter(),
                   np.random.default_rng(seed), augment=augment)  # fmt: skip
        own = [EarlyStopping(settings["patience"])] if early_stopping else []
        if progress is not None:
            own.append(progress)
        if checkpoint is not None:
            own.append(Checkpointing(lambda: ckpt.write(checkpoint, self, run, settings, hooks),
                                     checkpoint_every))  # fmt: skip
        hooks = _Hooks([*user, *own])
        self.stop_training, self.interrupted, self._stopped_by = False, False, None
        if saved is not None:
            ckpt.restore(self, *saved, run, settings, resume, hooks)
            if comm is not None:
                dp.broadcast_params(net, comm)
        hooks.call("on_train_begin", self, {
            "epochs": epochs, "epoch": run.epoch, "batches": batches, "n_train": len(x_train),
            "batch_size": batch_size, "resumed": saved is not None,
            "unit": "img" if x_train.ndim == 4 else "ex",
        })  # fmt: skip
        # Overflow and NaN are caught by the finiteness checks, with a message that says where;
        # numpy's own warnings about them would only come first and say less.
        with np.errstate(over="ignore", invalid="ignore"), _deferred_interrupt(self):
            while run.epoch <= epochs and not run.stopped:
                self._epoch(run, data, settings, hooks, progress)
        self._finish(run, early_stopping, progress)
        hooks.call("on_train_end", self, {
            "history": history, "epoch": history.epoch[-1] if history.epoch else 0,
            "stopped_early": history.stopped_early, "seconds": history.seconds,
        })  # fmt: skip
        return history

    def _epoch(self, run, data, settings, hooks, progress) -> None:
        """Train the rest of epoch ``run.epoch``, evaluate it when due, and move on."""
        x_train, y_train, x_test, y_test = data
        epoch, epochs = run.epoch, settings["epochs"]
        batches = -(-len(x_train) // settings["batch_size"])
        hooks.call("on_epoch_begin", self, {"epoch": epoch, "epochs": epochs,
                                            "batches": batches, "done": run.batch})  # fmt: skip
        epoch_start, seen_before = time.perf_counter(), run.seen
        train_loss = self._train_epoch(x_train, y_train, run, settings, hooks)
        seconds = time.perf_counter() - epoch_start
        logs = {"epoch": epoch, "epochs": epochs, "train_loss": train_loss, "seconds": seconds,
                "images_per_s": (run.seen - seen_before) / max(seconds, 1e-12),
                "evaluated": False}  # fmt: skip
        cut = self.stop_training and not self.interrupted  # a callback ends the run here
        if cut or epoch % settings["eval_every"] == 0 or epoch == epochs:
            val_loss, val_acc = self._evaluation(run, epoch, train_loss, data, settings, hooks)
            logs.update(evaluated=True, val_loss=val_loss, val_accuracy=val_acc)
        if epoch < epochs:
            self.optim.decay_lr()
        run.epoch, run.batch, run.order, run.total, run.seen = epoch + 1, 0, None, 0.0, 0
        self._mark_stopped(run)
        logs["total_seconds"] = run.elapsed()
        hooks.call("on_epoch_end", self, logs)
        self._agree(run)
        self._mark_stopped(run)  # a callback's on_epoch_end may end the run too
        self._stop_if_interrupted(run)

    def _mark_stopped(self, run) -> None:
        if self.stop_training and not run.stopped:
            run.stopped = True
            run.history.stopped_early = self._stopped_by == "EarlyStopping"
            run.history.stopped_by = self._stopped_by

    def _agree(self, run) -> None:
        """With several processes: a stop or a Ctrl-C seen by one is seen by all (each
        process's callbacks and signals are its own; the loop must end everywhere at once)."""
        if self._comm is not None:
            stop, interrupted = dp.any_flag(self._comm, self.stop_training, self.interrupted)
            if stop and not self.stop_training:
                self.stop_training, self._stopped_by = True, self._stopped_by or "another process"
            self.interrupted = interrupted

    def _finish(self, run, early_stopping, progress) -> None:
        """End on the best weights, with nothing carried; record the wall time."""
        net, optim, history = self.net, self.optim, run.history
        if optim.use_ema:
            optim.apply_ema()  # the weights of the last evaluation: no step has come since
            optim.restart_ema()
        if (
            early_stopping
            and history.best_epoch is not None
            and history.best_epoch != history.epoch[-1]
        ):
            net.set_weights(run.best_weights)
            if progress is not None:
                why = "loss did not improve" if history.stopped_early else "end of training"
                progress.note(
                    f"early stopping ({why}): restored the weights of epoch "
                    f"{history.best_epoch} (val loss {run.best_loss:.4f})"
                )
        net.reset_state()  # what training carried belongs to no sequence a caller has
        history.seconds = run.elapsed()

    def _evaluation(self, run, epoch, train_loss, data, settings, hooks):
        """Evaluate after ``epoch``, record it, keep the best weights; returns the loss and
        accuracy (None unless classifying with evaluation data)."""
        net, optim, history = self.net, self.optim, run.history
        x_train, y_train, x_test, y_test = data
        size, stateful = settings["eval_batch_size"], settings["stateful"]
        extra = {"stateful": True} if stateful else {}
        # With use_ema the averaged weights are the ones evaluated and kept; the raw weights
        # go back in afterwards and training continues from them.
        raw = net.get_weights() if optim.use_ema else None
        if raw is not None:
            optim.apply_ema()
        if x_test is not None:
            val_loss, val_acc = self._evaluate(x_test, y_test, size, **extra)
        elif raw is not None:  # the averaged weights were not the ones trained
            val_loss, _ = self._evaluate(x_train, y_train, size, **extra)
            val_acc = None
        else:
            val_loss, val_acc = train_loss, None
        if not math.isfinite(val_loss):
            self._diverged(run, f"evaluation loss is {val_loss} after epoch {epoch}")
        history.epoch.append(epoch)
        history.train_loss.append(train_loss)
        history.val_loss.append(val_loss)
        if val_acc is not None:
            history.val_accuracy.append(val_acc)
        improved = val_loss < run.best_loss
        if improved:
            run.best_loss, run.best_weights = val_loss, net.get_weights()
            history.best_epoch = epoch
        if raw is not None:
            net.set_weights(raw)
        hooks.call("on_evaluate", self, {
            "epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
            "val_accuracy": val_acc, "improved": improved, "best_epoch": history.best_epoch,
            "best_loss": run.best_loss,
        })  # fmt: skip
        return val_loss, val_acc

    def _stop_if_interrupted(self, run) -> None:
        """After a Ctrl-C: end on the best weights seen and raise ``KeyboardInterrupt``."""
        if not self.interrupted:
            return
        self.net.set_weights(run.best_weights)
        self.net.reset_state()
        self.optim.restart_ema()
        which = "initial" if run.history.best_epoch is None else "best"
        raise KeyboardInterrupt(f"Trainer.fit interrupted; the {which} weights were restored")

    def _train_epoch(self, x, y, run, settings, hooks) -> float:
        """The rest of the epoch ``run.epoch`` (all of it, unless resumed partway); returns
        its mean training loss (over the examples trained on, if a callback cut it short)."""
        net, optim = self.net, self.optim
        n, batch_size = len(x), settings["batch_size"]
        if run.order is None:
            run.order = run.shuffle.permutation(n) if settings["shuffle"] else np.arange(n)
        stateful = settings["stateful"]
        if stateful and run.batch == 0:
            net.reset_state()  # each epoch starts the streams afresh
        starts = range(0, n, batch_size)
        epoch_start, seen_before = time.perf_counter(), run.seen
        for batch in range(run.batch + 1, len(starts) + 1):
            start = starts[batch - 1]
            idx = run.order[start : start + batch_size]
            logs = {"epoch": run.epoch, "batch": batch, "batches": len(starts), "size": len(idx)}
            hooks.call("on_batch_begin", self, logs)
            if not stateful:
                net.reset_state()  # shuffled batches hold unrelated sequences: no carried state
            xb = x[idx] if run.augment is None else self._augmented(run, x[idx])
            loss = self._train_batch(xb, y[idx], first=run.seen == 0 and batch == 1)
            if not math.isfinite(loss):
                self._diverged(
                    run,
                    f"loss is {loss} at epoch {run.epoch}, batch {batch} "
                    f"(examples {start}..{start + len(idx) - 1} of the "
                    f"{'shuffled ' if settings['shuffle'] else ''}epoch)",
                )
            optim.step()
            run.total += loss * len(idx)
            run.seen += len(idx)
            run.batch = batch
            seconds = time.perf_counter() - epoch_start
            logs.update(loss=float(loss), lr=float(optim.lr), seconds=seconds,
                        images_per_s=(run.seen - seen_before) / max(seconds, 1e-12))  # fmt: skip
            hooks.call("on_batch_end", self, logs)
            self._agree(run)
            self._stop_if_interrupted(run)
            if self.stop_training:
                break
        if not all(np.isfinite(p).all() for p in net.params()):
            self._diverged(
                run, f"the weights became NaN or infinite in the last update of epoch {run.epoch}"
            )
        return run.total / max(run.seen, 1)

    @staticmethod
    def _augmented(run, xb: np.ndarray) -> np.ndarray:
        """The training batch ``xb`` through fit's ``augment``, drawing from the generator
        that shuffles (over several processes: the global batch, the same draws in each)."""
        out = run.augment(xb, run.shuffle)
        if not isinstance(out, np.ndarray) or out.shape != xb.shape:
            got = f"shape {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
            raise ValueError(f"Trainer.fit: augment(x, rng) must return an array of x's shape "
                             f"{xb.shape}, got {got}")  # fmt: skip
        return out

    def _train_batch(self, x, y, first: bool) -> float:
        """``net.train_batch`` on a batch, or, over several processes, this process's rows of
        it with the processes' gradients summed. The first batch of a run compiles the
        backward kernels: one process per machine compiles them into numba's cache first,
        and the others then load them, rather than all compiling at once."""
        if self._comm is None:
            return self.net.train_batch(x, y)
        return dp.train_batch(self.net, self._comm, x, y, stagger=first)

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
