"""History: what ``Trainer.fit`` measured, one entry per evaluation, and its picture."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from fastdl import _plotting

__all__ = ["History"]


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
        Loss on the evaluation data (``x_test``, ``y_test``, or the ``validation_split``);
        the training loss when there is none.
    val_accuracy : list of float
        Accuracy in [0, 1] on the evaluation data, for ``SoftmaxCrossEntropy`` networks given
        evaluation data; empty otherwise.
    best_epoch : int or None
        Epoch of the lowest ``val_loss`` (whose weights early stopping restores).
    stopped_early : bool
        Early stopping ended the run (the loss stopped improving).
    stopped_by : str or None
        The callback class that ended the run by setting ``trainer.stop_training``
        (``"EarlyStopping"`` when ``stopped_early``), or None when all epochs ran.
    seconds : float
        Wall time of ``fit``.
    """

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    stopped_by: str | None = None
    seconds: float = 0.0

    @property
    def history(self) -> dict[str, list]:
        """The curves as Keras's ``History.history``: ``loss``, ``val_loss`` and (when
        classifying) ``val_accuracy``, plus ``epoch``; new lists, one entry per evaluation."""
        out = {"epoch": list(self.epoch), "loss": list(self.train_loss),
               "val_loss": list(self.val_loss)}  # fmt: skip
        if self.val_accuracy:
            out["val_accuracy"] = list(self.val_accuracy)
        return out

    def plot(self, path: str | os.PathLike | None = None, title: str | None = None):
        """Draw the loss curves (and accuracy, when recorded) against the epoch.

        Parameters
        ----------
        path : path, optional
            Write a PNG there (the figure is then closed); without it, draw into the current
            matplotlib figure (for notebooks) and return it.
        title : str, optional

        Returns
        -------
        matplotlib.figure.Figure
            The figure (closed when written to ``path``).

        Raises
        ------
        ImportError
            matplotlib is missing: ``pip install 'fastdl[plot]'``.
        ValueError
            Nothing to draw (no evaluation was recorded).
        """
        if not self.epoch:
            raise ValueError("History.plot: no evaluation was recorded, so there is no curve")
        plt = _plotting.pyplot("History.plot", path)
        from matplotlib.ticker import MaxNLocator

        panels = 2 if self.val_accuracy else 1
        fig = _plotting.new_figure(plt, path)
        fig.set_size_inches(5.5 * panels, 4.0)
        ax = fig.add_subplot(1, panels, 1)
        marker = "o" if len(self.epoch) <= 30 else None
        ax.plot(self.epoch, self.train_loss, marker=marker, label="training (epoch mean)")
        ax.plot(self.epoch, self.val_loss, marker=marker, label="validation")
        if self.best_epoch is not None:
            ax.axvline(self.best_epoch, color="0.6", linestyle=":", label="best epoch")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("loss")
        ax.legend()
        ax.grid(alpha=0.3)
        if self.val_accuracy:
            ax2 = fig.add_subplot(1, panels, 2)
            ax2.plot(self.epoch, [100 * a for a in self.val_accuracy], marker=marker,
                     color="C1")  # fmt: skip
            ax2.set_xlabel("epoch")
            ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax2.set_ylabel("validation accuracy (%)")
            ax2.grid(alpha=0.3)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        _plotting.finish(plt, fig, path)
        return fig
