"""Checkpointing: write ``fit``'s whole state at the end of every epoch, and every N batches."""

from __future__ import annotations

from fastdl.callbacks.base import Callback

__all__ = ["Checkpointing"]


class Checkpointing(Callback):
    """``fit(checkpoint=path, checkpoint_every=N)`` adds one, last, so every other callback
    has updated its state when the checkpoint is written (see :mod:`fastdl.checkpoint`).

    Parameters
    ----------
    save : callable
        Writes the checkpoint (``fit`` binds the path, the loop's state and its settings).
    every : int, optional
        Also after every this many training batches.
    """

    def __init__(self, save, every: int | None = None) -> None:
        self.save = save
        self.every = every

    def on_batch_end(self, trainer, logs: dict) -> None:
        last = logs["batch"] == logs["batches"]  # the epoch's end writes it anyway
        if not last and (
            (self.every is not None and logs["batch"] % self.every == 0) or trainer.interrupted
        ):
            self.save()

    def on_epoch_end(self, trainer, logs: dict) -> None:
        self.save()
