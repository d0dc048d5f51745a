"""Callback: the hooks ``Trainer.fit`` calls, and the list that calls them in order.

A callback sees the loop, never runs it: each hook receives the trainer (``trainer.net``,
``trainer.optim``) and ``logs``, a plain dict of what just happened. What each hook's
``logs`` hold (every number a plain Python ``int``/``float``):

====================  ==========================================================================
hook                  logs
====================  ==========================================================================
on_train_begin        epochs, epoch (the first to run; > 1 when resumed), batches (per epoch),
                      n_train, batch_size, resumed, unit ("img" for NCHW images, else "ex")
on_epoch_begin        epoch, epochs, batches, done (batches of it done before a resume)
on_batch_begin        epoch, batch (1-based), batches, size (examples in this batch)
on_batch_end          epoch, batch, batches, size, loss, lr, images_per_s (this epoch's
                      examples per second so far), seconds (since the epoch began)
on_evaluate           epoch, train_loss, val_loss, val_accuracy (None unless classifying),
                      improved, best_epoch, best_loss
on_epoch_end          epoch, epochs, train_loss, seconds (its batches, evaluation left
                      out), images_per_s, evaluated, total_seconds (of the run); and, when
                      it evaluated, val_loss and val_accuracy
on_train_end          history (the History), epoch (the last that ran), stopped_early,
                      seconds (wall time of the run)
====================  ==========================================================================

A callback stops the run by setting ``trainer.stop_training = True``: ``fit`` finishes the
batch in progress, evaluates that (possibly partial) epoch, and ends as after early stopping.
A callback that can refuse a run gives ``check(trainer, plan)`` (``plan``: epochs, batches):
``fit`` calls it after checking its data and before anything changes — before a restart
re-initialises the weights or a resume restores a checkpoint — so a refusal loses nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Callback", "CallbackList"]

HOOKS = (
    "on_train_begin",
    "on_epoch_begin",
    "on_batch_begin",
    "on_batch_end",
    "on_evaluate",
    "on_epoch_end",
    "on_train_end",
)


class Callback:
    """Base class: override the hooks you need; each does nothing here.

    Examples
    --------
    >>> import fastdl as fd
    >>> class PrintLoss(fd.Callback):
    ...     def on_batch_end(self, trainer, logs):
    ...         if logs["batch"] % 100 == 0:
    ...             print(logs["epoch"], logs["batch"], round(logs["loss"], 3))
    """

    def on_train_begin(self, trainer, logs: dict) -> None:
        """Before the first batch (after a resume has been restored)."""

    def on_epoch_begin(self, trainer, logs: dict) -> None:
        """Before an epoch's first batch (a resumed epoch: before its next batch)."""

    def on_batch_begin(self, trainer, logs: dict) -> None:
        """Before ``net.train_batch`` on the batch ``logs["batch"]``."""

    def on_batch_end(self, trainer, logs: dict) -> None:
        """After the optimizer's step on that batch."""

    def on_evaluate(self, trainer, logs: dict) -> None:
        """After an evaluation was recorded in the History."""

    def on_epoch_end(self, trainer, logs: dict) -> None:
        """After an epoch (and its evaluation, if one ran)."""

    def on_train_end(self, trainer, logs: dict) -> None:
        """After the loop, once the final weights are in place (not when ``fit`` raises:
        write what must survive a crash in ``on_epoch_end``)."""


class CallbackList:
    """Callbacks called in the order given, each hook on each callback in turn."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)
        for i, cb in enumerate(self.callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(
                    f"Trainer.fit: callbacks[{i}] is {cb!r}, not a fastdl Callback "
                    "(subclass fd.Callback and override its on_* methods)"
                )

    def __iter__(self):
        return iter(self.callbacks)

    def call(self, hook: str, trainer, logs: dict) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(trainer, logs)
