"""Chapter 6 of the book (recurrent networks): its classes, on fastdl's compiled time loops.

The chapter-6 notebook of *Deep Learning from Scratch* defines its classes inline. With this
module the definitions go and the training cells run as they are (only the text file and the
vocabulary size change)::

    from fastdl.book.rnn import (RNNLayer, LSTMLayer, GRULayer, RNNModel, RNNTrainer,
                                 SGD, AdaGrad, SoftmaxCrossEntropy)

    layers = [LSTMLayer(hidden_size=256, output_size=128, weight_scale=0.1),
              LSTMLayer(hidden_size=256, output_size=65, weight_scale=0.01)]
    mod = RNNModel(layers=layers, vocab_size=65, sequence_length=25,
                   loss=SoftmaxCrossEntropy())
    optim = SGD(lr=0.01, gradient_clipping=True)
    trainer = RNNTrainer("tinyshakespeare.txt", mod, optim, batch_size=32)
    trainer.train(2000, sample_every=100)

Notation: N batch size, T time steps (``sequence_length``), V the vocabulary (one-hot input
width, the first layer's D), D a layer's input width, H ``hidden_size``, O ``output_size``.

What each class is
------------------
A book layer maps ``(N, T, D)`` to ``(N, T, O)``: a recurrent cell over time, then the
book's per-step output projection ``W_v``, ``B_v``. Here it is a fastdl :class:`Layer` whose
operations are fastdl's own: the compiled time loop (:class:`~fastdl.ops.recurrent.RNNLoop`,
:class:`~fastdl.ops.recurrent.LSTMLoop`, :class:`~fastdl.ops.recurrent.GRULoop`), then
:class:`~fastdl.ops.dense.WeightMultiply` (``W_v``) and :class:`~fastdl.ops.dense.BiasAdd`
(``B_v``). No recurrent arithmetic is written here. :class:`RNNModel` is a float64
:class:`~fastdl.network.NeuralNetwork`; fastdl's optimizers bind to it.

Initial weights are drawn as the book draws them: ``np.random.normal`` from NumPy's *global*
generator, in the book's order, shapes and scales (``np.random.seed(s)`` before building a
model gives the book's weights), then moved into fastdl's fused layout. The book stacks the
input and the hidden state, ``Z = [x | h]``, and multiplies by ``W_f`` ``(D + H, H)``; its
first D rows are fastdl's ``W_ih`` block and the last H rows the ``W_hh`` block. Gate blocks
go in fastdl's order (LSTM i, f, g, o from the book's ``W_i``, ``W_f``, ``W_c``, ``W_o``; GRU
r, z, n from ``W_*r``, ``W_*u``, ``W_*h``). ``weight_scale`` is the normal's standard
deviation; the book's GRU draws ``B_h``, ``W_v`` and ``B_v`` with 1.0 whatever it is, and so
does this one.

State carried between batches, as in the book: each layer keeps ``start_H`` (and the LSTM
``start_C``), ``(1, H)``, the mean over the batch of the state after the last time step; the
next forward pass starts every row from it (so the batch size may change, as it does when
:meth:`RNNTrainer.sample_output` feeds one character at a time). It is a constant of the
next batch: gradients do not flow back across batches. Through fastdl's state protocol
(``state``, ``set_state``, ``reset_state``) a rejected batch or a gradient check leaves it as
it was.

Differences from the book's code, on purpose
--------------------------------------------
- **The GRU's update gate uses its own weights.** The book's ``GRUNode`` computes the update
  gate from the reset gate's products (``u_int = X_r + H_r + B_u``), so ``W_xu`` and ``W_hu``
  never act (its backward pass still gives them gradients, of a function that does not use
  them). Here ``u = σ(x W_xu + h W_hu + B_u)``.
- **The GRU's reset gate is applied after the hidden product**, as in PyTorch's ``nn.GRU``
  and fastdl's GRU kernel: ``h̄ = tanh(x W_xh + B_h + r ⊙ (h W_hh + b_hn))``, where the book
  has ``tanh(x W_xh + (r ⊙ h) W_hh + B_h)``. Both are standard GRU variants (Cho et al. 2014
  give both); fastdl has one kernel, PyTorch's. The GRU has a second bias vector ``b_hh``
  ``(3H,)`` (PyTorch's ``bias_hh``; its n block is ``b_hn``), which the book's has not; it
  starts at zero, so the first forward pass is the formula above with ``b_hn = 0``.
- **The loss reported is the cross-entropy that is differentiated.** The book's chapter-6
  ``SoftmaxCrossEntropy`` reports ``Σ −t log p − (1 − t) log(1 − p)`` (a binary
  cross-entropy on each softmax output) but returns the gradient ``p − t`` of
  ``Σ −t log p`` alone. Here the value is ``Σ −t log p`` over batch and time, the number whose
  gradient is ``p − t``. The book's extra term, ``Σ_{k≠y} −log(1 − p_k) ≈ 1 − p_y`` per
  character, is 0.99 nats for a uniform softmax over 65 characters and shrinks as the model
  learns, so the book's curve starts about one nat per character above this one.
- ``AdaGrad`` keeps its root outside the epsilon (see :mod:`fastdl.book.optimizers`).
- :class:`RNNTrainer`: the character table is ``sorted(set(text))`` (the book's
  ``list(set(text))`` changes order with Python's hash seed, so a model's output columns
  meant different characters on every run); the text is read by
  :func:`fastdl.datasets.load_text` (newlines as in the file); ``sample_every`` is honoured
  (the book samples every 100 iterations whatever it is given); the loss curve is kept in
  ``plot_iter`` / ``plot_loss`` and drawn by :meth:`RNNTrainer.plot` on request (matplotlib
  is an optional extra) instead of ``plt.show()`` in the loop.
- The vocabulary size is checked up front: ``RNNModel(vocab_size=V)`` against the last
  layer's ``output_size`` and against the text's distinct characters, with an error naming
  both numbers (the book fails on a shape assertion inside the loss).
- ``weight_scale`` must be a positive number (``RNNLayer`` also takes None, the book's
  default ``2 / (D + O)``); the book treats 0 as None.
"""

from __future__ import annotations

import numpy as np

from fastdl import losses as _losses
from fastdl._checks import positive_int
from fastdl.book import optimizers as _book_optim
from fastdl.book._rnn_layers import GRULayer, LSTMLayer, RNNLayer
from fastdl.book._rnn_trainer import RNNTrainer
from fastdl.network import NeuralNetwork

__all__ = ["RNNLayer", "LSTMLayer", "GRULayer", "RNNModel", "RNNTrainer", "SGD", "AdaGrad",
           "SoftmaxCrossEntropy"]  # fmt: skip


class SoftmaxCrossEntropy(_losses.SoftmaxCrossEntropy):
    """Chapter 6's loss: softmax cross-entropy *summed* over batch and time.

    ``L = −Σ_{n,t,k} y log softmax(z)`` and ``dL/dz = softmax(z) − y`` (for one-hot rows):
    fastdl's :class:`~fastdl.losses.SoftmaxCrossEntropy` (a mean over the N·T rows) times the
    number of rows. The value reported is this sum, not the book's (see the module docstring).

    Parameters
    ----------
    eps : float, default 1e-9
        The book clips the softmax to ``[eps, 1 − eps]`` before its logarithm; the log-softmax
        used here cannot reach ``log 0``, so ``eps`` is checked and kept but changes nothing.

    Shape
    -----
    - prediction (logits): ``(N, T, V)`` (or ``(N, V)``).
    - target: one-hot ``(N, T, V)`` as the book's trainer makes it, or integer ids ``(N, T)``.
    """

    def __init__(self, eps: float = 1e-9) -> None:
        super().__init__()
        ok = isinstance(eps, (int, float, np.floating)) and not isinstance(eps, bool)
        if not ok or not 0 < eps < 0.5:
            raise ValueError(f"SoftmaxCrossEntropy: eps must be a number in (0, 0.5), got {eps!r}")
        self.eps = float(eps)

    def get_config(self) -> dict:
        return {"eps": self.eps}

    def __repr__(self) -> str:
        return f"{self.name}(eps={self.eps!r})"

    def _rows_count(self) -> int:
        return self.prediction.size // self.prediction.shape[-1]

    def _output(self) -> float:
        return super()._output() * self._rows_count()

    def _input_grad(self) -> np.ndarray:
        grad = super()._input_grad()
        grad *= self._rows_count()
        return grad


class SGD(_book_optim.SGD):
    """Chapter 6's ``SGD(lr, gradient_clipping)``: :class:`fastdl.book.optimizers.SGD` with
    elementwise clipping of every gradient to ``[−2, 2]`` on by default.

    Parameters
    ----------
    lr : float, default 0.01
    gradient_clipping : bool, default True
    """

    def __init__(self, lr: float = 0.01, gradient_clipping: bool = True) -> None:
        super().__init__(lr, gradient_clipping=gradient_clipping)


class AdaGrad(_book_optim.AdaGrad):
    """Chapter 6's ``AdaGrad(lr, gradient_clipping)``: :class:`fastdl.book.optimizers.AdaGrad`
    with clipping to ``[−2, 2]`` on by default.

    Parameters
    ----------
    lr : float, default 0.01
    gradient_clipping : bool, default True
    """

    def __init__(self, lr: float = 0.01, gradient_clipping: bool = True) -> None:
        super().__init__(lr, gradient_clipping=gradient_clipping)


class RNNModel(NeuralNetwork):
    """The book's ``RNNModel``: layers run in order, then the loss; float64, as the book
    computes.

    Parameters
    ----------
    layers : list of Layer
        Usually book layers; the last one's ``output_size`` must be ``vocab_size``.
    sequence_length : int
        T of the training batches (:class:`RNNTrainer` cuts windows of it); set on every
        layer as the book does. A forward pass may take another T (sampling takes 1).
    vocab_size : int
        V: the one-hot width of the input and of the output.
    loss : Loss
        Chapter 6 uses :class:`SoftmaxCrossEntropy`.

    Shape
    -----
    - ``forward``: one-hot ``(N, T, V)`` → logits ``(N, T, V)``.
    - ``single_step``: ``x`` as ``forward``; ``y`` one-hot ``(N, T, V)`` or ids ``(N, T)``.
    """

    def __init__(self, layers, sequence_length: int, vocab_size: int, loss) -> None:
        self.sequence_length = positive_int("RNNModel", "sequence_length", sequence_length)
        self.vocab_size = positive_int("RNNModel", "vocab_size", vocab_size)
        super().__init__(layers, loss, seed=0, dtype=np.float64)
        out = getattr(self.layers[-1], "output_size", None)
        if out is not None and out != self.vocab_size:
            raise ValueError(
                f"RNNModel: the last layer's output_size is {out} but vocab_size is "
                f"{self.vocab_size}; they must be equal (one logit per character)"
            )
        for layer in self.layers:
            layer.sequence_length = self.sequence_length

    def __repr__(self) -> str:
        lines = [f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers)]
        lines.append(f"  loss: {self.loss!r}")
        head = f"RNNModel(sequence_length={self.sequence_length}, vocab_size={self.vocab_size}"
        return head + "\n" + "\n".join(lines) + "\n)"

    def forward(self, x_batch: np.ndarray, inference: bool = False) -> np.ndarray:
        """One-hot ``(N, T, V)`` → logits ``(N, T, V)``."""
        if not isinstance(x_batch, np.ndarray):
            raise TypeError(f"RNNModel: expected a numpy array, got {type(x_batch).__name__}")
        if x_batch.ndim != 3 or x_batch.shape[2] != self.vocab_size:
            raise ValueError(
                f"RNNModel: expected one-hot input (batch, time, {self.vocab_size}), "
                f"got shape {x_batch.shape}"
            )
        return super().forward(x_batch, inference)

    def backward(self, loss_grad: np.ndarray, after_layer=None) -> np.ndarray | None:
        """Send ``loss_grad`` ``(N, T, V)`` back; returns the input gradient, or None: the
        first layer's input is the data, so it is not computed."""
        super().backward(loss_grad, after_layer)
        return self.layers[0].input_grad

    def single_step(self, x_batch: np.ndarray, y_batch: np.ndarray) -> float:
        """Forward, loss and backward on one batch; returns the loss (the book's name for
        :meth:`~fastdl.network.NeuralNetwork.train_batch`; ``optim.step()`` updates)."""
        return self.train_batch(x_batch, y_batch)
