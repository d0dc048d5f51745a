"""EarlyStopping: end ``fit`` when the evaluation loss stops improving."""

from __future__ import annotations

from fastdl._checks import positive_int
from fastdl.callbacks.base import Callback

__all__ = ["EarlyStopping"]


class EarlyStopping(Callback):
    """Stop after ``patience`` evaluations in a row without a new lowest loss.

    ``fit(early_stopping=True, patience=p)`` adds one; ``fit`` itself keeps the best
    evaluation's weights and ends on them (as Keras's ``restore_best_weights=True``).

    Parameters
    ----------
    patience : int, default 1
        The book stops at the first evaluation that does not improve.
    """

    def __init__(self, patience: int = 1) -> None:
        self.patience = positive_int("EarlyStopping", "patience", patience)
        self.bad_evals = 0

    def on_train_begin(self, trainer, logs: dict) -> None:
        if not logs["resumed"]:
            self.bad_evals = 0

    def on_evaluate(self, trainer, logs: dict) -> None:
        if logs["improved"]:
            self.bad_evals = 0
            return
        self.bad_evals += 1
        if self.bad_evals >= self.patience:
            trainer.stop_training = True

    def state_dict(self) -> dict:
        """What a checkpoint keeps of this callback."""
        return {"bad_evals": self.bad_evals}

    def load_state_dict(self, state: dict) -> None:
        self.bad_evals = int(state["bad_evals"])
