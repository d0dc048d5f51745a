"""Chapter 6's ``RNNTrainer``: the book's character batches, sampling and training loop.

Re-exported by :mod:`fastdl.book.rnn` (which lists the differences from the book's code).
"""

from __future__ import annotations

import os
from collections import deque
from copy import deepcopy

import numpy as np

from fastdl import _plotting
from fastdl._checks import positive_int
from fastdl.datasets import load_text
from fastdl.network import NeuralNetwork
from fastdl.optimizers import Optimizer

__all__ = ["RNNTrainer"]


class RNNTrainer:
    """Train a character model on a text file, printing samples as it goes (the book's).

    Parameters
    ----------
    text_file : str or os.PathLike
        Read by :func:`fastdl.datasets.load_text`; the characters are ``sorted(set(text))``.
    model : RNNModel
        Its ``vocab_size`` must be the number of distinct characters of the text.
    optim : fastdl Optimizer
        Bound to ``model`` here (``optim.bind(model)``), as the book's ``setattr``.
    batch_size : int, default 32
        B, the rows of a batch.

    Attributes
    ----------
    data : str
        The text. ``chars``, ``char_to_idx``, ``idx_to_char`` and ``vocab_size`` as the book's.
    codes : ndarray of int64, shape (L,)
        The text as character indices.
    plot_iter, plot_loss : ndarray
        After :meth:`train`: the iteration numbers and the moving average (over the last 100
        iterations) of the loss, the curve the book plots. ``losses`` holds each iteration's
        loss.

    Batches: iteration k reads from ``start_pos`` (0, then ``B`` more each iteration, back to
    0 when ``start_pos + T + B + 1`` passes the end of the text); row ``i`` is the window
    ``codes[start_pos + i : start_pos + i + T]`` and its target the window one character on,
    one-hot encoded as ``(B, T, V)`` float64.
    """

    def __init__(self, text_file, model, optim, batch_size: int = 32) -> None:
        if not isinstance(model, NeuralNetwork) or not hasattr(model, "vocab_size"):
            raise TypeError(
                f"RNNTrainer: model must be an RNNModel (with vocab_size and sequence_length), "
                f"got {type(model).__name__}"
            )
        if not isinstance(optim, Optimizer):
            raise TypeError(
                f"RNNTrainer: optim must be a fastdl optimizer (e.g. fastdl.book.rnn.SGD), "
                f"got {type(optim).__name__}"
            )
        self.batch_size = positive_int("RNNTrainer", "batch_size", batch_size)
        self.sequence_length = model.sequence_length
        self.chars, self.codes = load_text(text_file)
        self.vocab_size = len(self.chars)
        if model.vocab_size != self.vocab_size:
            raise ValueError(
                f"RNNTrainer: {os.fspath(text_file)} has {self.vocab_size} distinct characters "
                f"but the model's vocab_size is {model.vocab_size}; build the model with "
                f"vocab_size={self.vocab_size} and the last layer's "
                f"output_size={self.vocab_size}"
            )
        needed = self.sequence_length + self.batch_size + 1
        if len(self.codes) < needed:
            raise ValueError(
                f"RNNTrainer: {os.fspath(text_file)} has {len(self.codes)} characters; a batch "
                f"of {self.batch_size} windows of sequence_length={self.sequence_length} "
                f"needs at least {needed}"
            )
        self.data = "".join(np.asarray(self.chars)[self.codes])
        self.char_to_idx = {ch: i for i, ch in enumerate(self.chars)}
        self.idx_to_char = dict(enumerate(self.chars))
        self.model = model
        self.optim = optim
        optim.bind(model)
        self.plot_iter = np.zeros(0)
        self.plot_loss = np.zeros(0)
        self.losses = np.zeros(0)

    def _generate_inputs_targets(self, start_pos: int) -> tuple[np.ndarray, np.ndarray]:
        """Index windows ``(B, T)``: row ``i`` starts at ``start_pos + i``; targets one on."""
        rows = start_pos + np.arange(self.batch_size)[:, None] + np.arange(self.sequence_length)
        return self.codes[rows], self.codes[rows + 1]

    def _generate_one_hot_array(self, indices: np.ndarray) -> np.ndarray:
        """``(B, T)`` indices → one-hot ``(B, T, V)`` float64."""
        batch = np.zeros(indices.shape + (self.vocab_size,))
        np.put_along_axis(batch, indices[..., None], 1.0, axis=-1)
        return batch

    def sample_output(self, input_char: int, sample_length: int) -> str:
        """``sample_length`` characters drawn one at a time from a copy of the model, each
        fed back as the next input, starting after the character indexed ``input_char``.

        Draws with ``np.random.choice`` from NumPy's global generator, as the book does; the
        copy starts from the layers' carried state and moves it on; the model is unchanged.
        """
        if (
            isinstance(input_char, bool)
            or not isinstance(input_char, (int, np.integer))
            or not (0 <= input_char < self.vocab_size)
        ):
            raise ValueError(
                f"RNNTrainer.sample_output: input_char must be a character index in "
                f"[0, {self.vocab_size}), got {input_char!r}"
            )
        if (
            isinstance(sample_length, bool)
            or not isinstance(sample_length, (int, np.integer))
            or (sample_length < 0)
        ):
            raise ValueError(
                f"RNNTrainer.sample_output: sample_length must be an int >= 0, "
                f"got {sample_length!r}"
            )
        sample_model = deepcopy(self.model)
        indices = []
        for _ in range(sample_length):
            batch = np.zeros((1, 1, self.vocab_size))
            batch[0, 0, input_char] = 1.0
            logits = sample_model.forward(batch, inference=True).ravel()
            p = np.exp(logits - logits.max())
            p /= p.sum()
            input_char = np.random.choice(range(self.vocab_size), p=p)  # noqa: NPY002 (book)
            indices.append(input_char)
        return "".join(self.idx_to_char[i] for i in indices)

    def train(self, num_iterations: int, sample_every: int | None = 100) -> None:
        """Run ``num_iterations`` batches (forward, loss, backward, ``optim.step()``).

        Every ``sample_every`` iterations (from iteration 0; None: never) prints 200
        characters sampled from the model. Each call starts at the beginning of the text,
        with a new curve in ``plot_iter`` / ``plot_loss``, as the book's does.
        """
        num_iterations = positive_int("RNNTrainer.train", "num_iterations", num_iterations)
        if sample_every is not None:
            sample_every = positive_int("RNNTrainer.train", "sample_every", sample_every)
        t, b = self.sequence_length, self.batch_size
        plot_loss, losses = [], []
        moving_average = deque(maxlen=100)
        start_pos = 0
        try:
            for num_iter in range(num_iterations):
                if start_pos + t + b + 1 > len(self.codes):
                    start_pos = 0
                inputs, targets = self._generate_inputs_targets(start_pos)
                loss = self.model.single_step(
                    self._generate_one_hot_array(inputs), self._generate_one_hot_array(targets)
                )
                self.optim.step()
                losses.append(loss)
                moving_average.append(loss)
                plot_loss.append(np.mean(moving_average))
                start_pos += b
                if sample_every is not None and num_iter % sample_every == 0:
                    print(self.sample_output(int(self.codes[start_pos]), 200))
        finally:
            self.losses = np.array(losses)
            self.plot_loss = np.array(plot_loss)
            self.plot_iter = np.arange(len(plot_loss), dtype=np.float64)

    def plot(self, path=None, title: str | None = None):
        """Draw the moving-average loss against the iteration (the book's plot).

        Parameters
        ----------
        path : path, optional
            Write a PNG there (the figure is then closed); without it, draw into the current
            matplotlib figure (for notebooks) and return it.
        title : str, optional

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        ImportError
            matplotlib is missing: ``pip install 'fastdl[plot]'``.
        ValueError
            Nothing to draw yet (call :meth:`train` first).
        """
        if not len(self.plot_loss):
            raise ValueError("RNNTrainer.plot: no loss recorded yet; call train() first")
        plt = _plotting.pyplot("RNNTrainer.plot", path)
        fig = _plotting.new_figure(plt, path, figsize=(5.5, 4.0))
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(self.plot_iter, self.plot_loss)
        ax.set_xlabel("iteration")
        ax.set_ylabel("loss (sum over batch and time), moving average of 100")
        ax.grid(alpha=0.3)
        if title:
            ax.set_title(title)
        fig.tight_layout()
        _plotting.finish(plt, fig, path)
        return fig
