"""TimeLimit: end ``fit`` once the training batches have taken a time budget."""

from __future__ import annotations

import math
import time

from fastdl.callbacks.base import Callback

__all__ = ["TimeLimit"]


class TimeLimit(Callback):
    """Stop after ``seconds`` of training batches (evaluations and checkpoints not counted).

    The clock runs from each batch's ``on_batch_begin`` to its ``on_batch_end``, so the
    budget is the time spent learning and does not depend on how often a run evaluates; a
    checkpoint keeps it, so a resumed run spends only what is left.

    Parameters
    ----------
    seconds : float
        The budget, > 0.

    Attributes
    ----------
    used : float
        Seconds of training so far.
    """

    def __init__(self, seconds: float) -> None:
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not (math.isfinite(seconds) and seconds > 0)
        ):
            raise ValueError(f"TimeLimit: seconds must be a positive number, got {seconds!r}")
        self.seconds = float(seconds)
        self.used = 0.0
        self._t0 = None

    @property
    def fraction(self) -> float:
        """How much of the budget is spent, in [0, 1]."""
        return min(self.used / self.seconds, 1.0)

    def on_train_begin(self, trainer, logs: dict) -> None:
        if not logs["resumed"]:
            self.used = 0.0

    def on_batch_begin(self, trainer, logs: dict) -> None:
        self._t0 = time.perf_counter()

    def on_batch_end(self, trainer, logs: dict) -> None:
        self.used += time.perf_counter() - self._t0
        if self.used >= self.seconds:
            trainer.stop_training = True

    def state_dict(self) -> dict:
        """What a checkpoint keeps of this callback."""
        return {"used": self.used}

    def load_state_dict(self, state: dict) -> None:
        self.used = float(state["used"])
