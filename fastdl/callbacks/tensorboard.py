"""TensorBoard: a callback that writes a run's scalars and histograms for TensorBoard to show.

``fd.callbacks.TensorBoard(log_dir)`` writes TensorBoard event files with tensorboardX's
``SummaryWriter`` (``pip install 'fastdl[tensorboard]'``, which also installs the
``tensorboard`` server). Watch a run live, as PyTorch and Keras users do::

    tensorboard --logdir runs/cnn

What is written, and at which step (the global step: training batches done in the whole run,
a resumed run continuing the numbering of the run it resumes):

===========================  =======================  =======================================
tag                          when                     value
===========================  =======================  =======================================
``loss/train``               every training batch     the batch's loss
``lr``                       every training batch     the learning rate of the step
``images_per_s``             every training batch     the epoch's examples per second so far
``loss/train_epoch``         every evaluation         the epoch's mean training loss
``loss/val``                 every evaluation         ``History.val_loss`` (the training loss
                                                      when ``fit`` had no evaluation data)
``accuracy/val``             every evaluation         ``History.val_accuracy`` (classifiers)
``<i>_<Layer>/<name>``       every epoch (histogram)  each parameter of layer ``i``
``<i>_<Layer>/<name>_grad``  every epoch (histogram)  its gradient from the last batch
===========================  =======================  =======================================

Parameter names follow the layers' docstrings: ``weights``, ``bias`` (``Dense``, ``Conv2D``,
``Conv2DTranspose``), ``weights`` (``Embedding``), ``W_ih``, ``W_hh``, ``bias`` (``RNNLayer``,
``LSTMLayer``), ``W_ih``, ``W_hh``, ``b_ih``, ``b_hh`` (``GRULayer``); a layer of your own gets
``param_0``, ``param_1``, ...
"""

from __future__ import annotations

import os
import time

from fastdl._checks import positive_int
from fastdl.callbacks.base import Callback

__all__ = ["TensorBoard"]

#: Readable names of the built-in layers' parameters, in the order of ``layer.params()``.
PARAM_NAMES = {
    "Dense": ("weights", "bias"),
    "Conv2D": ("weights", "bias"),
    "Conv2DTranspose": ("weights", "bias"),
    "Embedding": ("weights",),
    "RNNLayer": ("W_ih", "W_hh", "bias"),
    "LSTMLayer": ("W_ih", "W_hh", "bias"),
    "GRULayer": ("W_ih", "W_hh", "b_ih", "b_hh"),
    "BatchNorm1D": ("gamma", "beta"),
    "BatchNorm2D": ("gamma", "beta"),
}


def param_tags(net) -> list[str]:
    """One tag per array of ``net.params()``, in that order: ``"<i>_<Layer>/<name>"``.

    Parameters
    ----------
    net : NeuralNetwork

    Returns
    -------
    list of str
        E.g. ``["0_Dense/weights", "0_Dense/bias", "1_Dense/weights", "1_Dense/bias"]``.
    """
    tags = []
    for i, layer in enumerate(net.layers):
        n = len(layer.params())
        names = PARAM_NAMES.get(layer.name, ())
        if len(names) != n:
            names = tuple(f"param_{j}" for j in range(n))
        tags.extend(f"{i}_{layer.name}/{name}" for name in names)
    return tags


def _count(where: str, what: str, value) -> int:
    """``value`` as an int >= 0 (0 turns the thing off); bools are refused."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: {what} must be an int >= 0 (0: never), got {value!r}")
    return value


class TensorBoard(Callback):
    """Write training and evaluation scalars and weight histograms for TensorBoard.

    Parameters
    ----------
    log_dir : str or path
        Folder of the event files (created if missing); point ``tensorboard --logdir`` at it
        or at its parent (each subfolder is one run).
    batch_every : int, default 1
        Write the per-batch scalars (``loss/train``, ``lr``, ``images_per_s``) every this many
        global steps; 0 writes none.
    histogram_every : int, default 1
        Write the parameter and gradient histograms every this many epochs; 0 writes none.
    flush_secs : int, default 10
        The writer also flushes to disk at least this often, so TensorBoard shows a run live
        within an epoch. Files are flushed at every epoch's end too.

    Raises
    ------
    ImportError
        When tensorboardX is not installed: ``pip install 'fastdl[tensorboard]'``.

    Notes
    -----
    The global step counts the run's training batches (``(epoch - 1) * batches + batch``), so
    the curves of an interrupted run and of its resumption (``fit(resume=...)``) join up: the
    resumed run's event file tells TensorBoard to drop what the interrupted one wrote after
    the checkpoint (tensorboardX's ``purge_step``), which the resumed run writes again. A
    second, not resumed ``fit`` given the same callback continues after the last step it
    wrote. Evaluations and histograms are written at the step of the epoch's last batch, so
    every curve shares the training loss's axis.

    Each ``fit`` writes one event file, opened at its first batch and closed when it ends. A
    ``fit`` that raises leaves it open with everything up to the last epoch's end on disk (and
    the rest within ``flush_secs``); ``close()``, ``with TensorBoard(...) as tb:``, the next
    ``fit`` or the interpreter's exit closes it.

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> from fastdl.callbacks.tensorboard import TensorBoard
    >>> net = fd.NeuralNetwork([fd.Dense(8, fd.Tanh()), fd.Dense(2)], fd.SoftmaxCrossEntropy())
    >>> x = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> history = fd.Trainer(net, fd.SGD(0.1)).fit(  # doctest: +SKIP
    ...     x, y, x, y, epochs=3, eval_every=1, verbose=0, callbacks=[TensorBoard("runs/toy")]
    ... )
    """

    def __init__(
        self,
        log_dir: str | os.PathLike,
        batch_every: int = 1,
        histogram_every: int = 1,
        flush_secs: int = 10,
    ) -> None:
        try:
            from tensorboardX import SummaryWriter
        except ImportError as err:
            raise ImportError(
                "TensorBoard needs tensorboardX (and the tensorboard server to watch a run): "
                "pip install 'fastdl[tensorboard]'"
            ) from err
        self._summary_writer = SummaryWriter
        self.log_dir = os.fspath(log_dir)
        self.batch_every = _count("TensorBoard", "batch_every", batch_every)
        self.histogram_every = _count("TensorBoard", "histogram_every", histogram_every)
        self.flush_secs = positive_int("TensorBoard", "flush_secs", flush_secs)
        self.writer = None  # the SummaryWriter of the fit in progress (one event file per fit)
        self.step = 0  # the global step of the last training batch seen
        self._offset = 0  # steps of earlier fits given this callback (not resumed)
        self._batches = 0  # training batches per epoch of the fit in progress
        self._batch_epoch = None  # the epoch whose batch set ``step`` (None: none this fit)
        self._resumed = False

    # -- the hooks ----------------------------------------------------------------------------

    def on_train_begin(self, trainer, logs: dict) -> None:
        """Fix the step numbering: a resumed run continues its checkpoint's, a new one ours."""
        self.close()  # a writer left open by a fit that raised
        self._resumed = bool(logs.get("resumed"))
        self._offset = 0 if self._resumed else self.step
        self._batches = int(logs["batches"])
        self._batch_epoch = None
        self.step = self._offset + (int(logs["epoch"]) - 1) * self._batches

    def on_batch_end(self, trainer, logs: dict) -> None:
        """Write the batch's loss, learning rate and examples per second."""
        self.step = self._offset + (logs["epoch"] - 1) * logs["batches"] + logs["batch"]
        self._batch_epoch = logs["epoch"]
        writer = self._writer(self.step)  # opened at the fit's first batch, written or not
        if self.batch_every and self.step % self.batch_every == 0:
            writer.add_scalar("loss/train", logs["loss"], self.step)
            writer.add_scalar("lr", logs["lr"], self.step)
            writer.add_scalar("images_per_s", logs["images_per_s"], self.step)

    def on_evaluate(self, trainer, logs: dict) -> None:
        """Write the evaluation's losses and accuracy at the step of the epoch's last batch."""
        step = self._epoch_step(logs["epoch"])
        writer = self._writer(step + 1)  # only a resumed fit that ran no batch opens it here
        writer.add_scalar("loss/train_epoch", logs["train_loss"], step)
        writer.add_scalar("loss/val", logs["val_loss"], step)
        if logs.get("val_accuracy") is not None:
            writer.add_scalar("accuracy/val", logs["val_accuracy"], step)

    def on_epoch_end(self, trainer, logs: dict) -> None:
        """Write the histograms of every parameter and its last gradient, then flush."""
        epoch = logs["epoch"]
        if self.histogram_every and epoch % self.histogram_every == 0:
            step = self._epoch_step(epoch)
            writer = self._writer(step + 1)
            net = trainer.net
            tags = param_tags(net)
            for tag, p in zip(tags, net.params(), strict=True):
                writer.add_histogram(tag, p, step)
            for tag, g in zip(tags, net.param_grads(), strict=True):
                if g is not None:  # no backward pass has reached it yet
                    writer.add_histogram(tag + "_grad", g, step)
        self.flush()

    def on_train_end(self, trainer, logs: dict) -> None:
        """Flush and close the event file."""
        self.close()

    # -- the writer ---------------------------------------------------------------------------

    def _epoch_step(self, epoch: int) -> int:
        """The global step of ``epoch``'s last batch (its end, when none ran in this fit)."""
        if self._batch_epoch == epoch:
            return self.step
        return self._offset + epoch * self._batches

    def _writer(self, first_new_step: int):
        """The fit's writer, opened at its first write. A resumed fit's writer tells
        TensorBoard to drop what the interrupted run wrote from ``first_new_step`` on (its
        batches after the checkpoint, which the resumed run writes again)."""
        if self.writer is None:
            purge = first_new_step if self._resumed else None
            # tensorboardX names a file by the second it opens (``wb``: a second writer in the
            # same second would truncate the first one's file); the nanoseconds keep each fit's
            # file apart and in the order TensorBoard reads them.
            self.writer = self._summary_writer(
                self.log_dir,
                flush_secs=self.flush_secs,
                purge_step=purge,
                filename_suffix=f".{time.time_ns():020d}",
            )
        return self.writer

    def flush(self) -> None:
        """Write what is buffered to disk."""
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file (the next ``fit`` opens a new one)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def __enter__(self) -> TensorBoard:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"TensorBoard({self.log_dir!r}, batch_every={self.batch_every}, "
            f"histogram_every={self.histogram_every})"
        )
