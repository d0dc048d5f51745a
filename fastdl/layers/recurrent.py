"""Recurrent layers: RNNLayer, GRULayer, LSTMLayer, with compiled time loops.

All three map ``(N, T, D)`` to ``(N, T, H)`` (or ``(N, H)``, the last step, with
``return_sequences=False``). The equations and weight layouts, and how to convert weights to
and from PyTorch, are in :mod:`fastdl.kernels.rnn`, :mod:`~fastdl.kernels.gru` and
:mod:`~fastdl.kernels.lstm`; in short, ``W_ih`` is ``(D, G·H)`` and ``W_hh`` ``(H, G·H)``
(PyTorch's ``weight_ih_l0.T`` and ``weight_hh_l0.T``), gate blocks in PyTorch's order.

State
-----
The initial state is zeros. With ``stateful=True`` the state after the last step of a batch
(every forward pass, training or inference, as in Keras) becomes the initial state of the next
batch, row by row, so consecutive batches must continue the same N sequences; gradients do
not flow back across batches (truncated backpropagation through time). ``reset_state()``
returns to zeros; ``set_state(h)`` / ``set_state(h, c)`` sets it; ``state`` reads it. After
``backward``, ``state_grads`` holds the gradients with respect to the initial state.

Initialisation (Keras's defaults, per gate block): ``W_ih`` by ``weight_init`` (default
Glorot, fan-in D, fan-out H), ``W_hh`` orthogonal, biases zero, except the LSTM's forget-gate
bias, which starts at 1 (Jozefowicz et al. 2015; Keras's ``unit_forget_bias``).
"""

from __future__ import annotations

import numpy as np

from fastdl._checks import check_keep_prob, positive_int
from fastdl.layers.base import Layer
from fastdl.layers.init import WEIGHT_INITS, init_weights
from fastdl.ops.base import check_same_shape
from fastdl.ops.dropout import Dropout
from fastdl.ops.recurrent import GRULoop, LSTMLoop, RNNLoop

__all__ = ["RNNLayer", "GRULayer", "LSTMLayer", "orthogonal"]


RECURRENT_INITS = ("orthogonal",) + WEIGHT_INITS


def orthogonal(rng: np.random.Generator, n: int, dtype: np.dtype) -> np.ndarray:
    """A random orthogonal ``(n, n)`` matrix (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q *= np.sign(np.diag(r))
    return q.astype(dtype)


class _RecurrentLayer(Layer):
    """Shared machinery of the recurrent layers (see the module docstring)."""

    _gates = 1
    _n_states = 1
    _loop = RNNLoop

    def __init__(
        self,
        hidden_size: int,
        return_sequences: bool = True,
        stateful: bool = False,
        weight_init: str = "glorot",
        recurrent_init: str = "orthogonal",
        dropout: float = 1.0,
    ) -> None:
        super().__init__()
        if weight_init not in WEIGHT_INITS:
            raise ValueError(
                f"{self.name}: weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}"
            )
        if recurrent_init not in RECURRENT_INITS:
            raise ValueError(
                f"{self.name}: recurrent_init must be one of {RECURRENT_INITS}, "
                f"got {recurrent_init!r}"
            )
        self.dropout = check_keep_prob(self.name, "dropout", dropout)
        self.hidden_size = positive_int(self.name, "hidden_size", hidden_size)
        self.return_sequences = bool(return_sequences)
        self.stateful = bool(stateful)
        self.weight_init = weight_init
        self.recurrent_init = recurrent_init
        self.in_features: int | None = None
        self._state: tuple[np.ndarray, ...] | None = None
        self.state_grads: tuple[np.ndarray, ...] | None = None

    def get_config(self) -> dict:
        return {"hidden_size": self.hidden_size, "return_sequences": self.return_sequences,
                "stateful": self.stateful, "weight_init": self.weight_init,
                "recurrent_init": self.recurrent_init, "dropout": self.dropout}  # fmt: skip

    # -- parameters -------------------------------------------------------------------------

    def _init_blocks(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        h, dt, rng = self.hidden_size, self.dtype, self.rng
        w_ih = np.concatenate(
            [init_weights(rng, (d, h), d, h, self.weight_init, dt) for _ in range(self._gates)],
            axis=1,
        )
        if self.recurrent_init == "orthogonal":
            blocks = [orthogonal(rng, h, dt) for _ in range(self._gates)]
        else:
            blocks = [
                init_weights(rng, (h, h), h, h, self.recurrent_init, dt) for _ in range(self._gates)
            ]
        return w_ih, np.concatenate(blocks, axis=1)

    def _make_params(self, w_ih: np.ndarray, w_hh: np.ndarray) -> list[np.ndarray]:
        return [w_ih, w_hh, np.zeros(self._gates * self.hidden_size, self.dtype)]

    def _setup_layer(self, x: np.ndarray) -> None:
        self.in_features = x.shape[2]
        params = self._make_params(*self._init_blocks(self.in_features))
        self.operations = [self._loop(params, self.return_sequences)]
        if self.dropout < 1.0:
            self.operations.append(Dropout(self.dropout, rng=self.rng))

    def reset(self) -> None:
        super().reset()
        self.in_features = None
        self._state = None

    # -- state ------------------------------------------------------------------------------

    @property
    def state(self) -> tuple[np.ndarray, ...] | None:
        """The carried state ``(h,)`` or ``(h, c)``, each ``(N, H)``; None means zeros."""
        return self._state

    def reset_state(self) -> None:
        """Start the next batch from the zero state."""
        self._state = None

    def set_state(self, *arrays: np.ndarray) -> None:
        """Set the carried state (needs ``stateful=True``): ``h``, or ``h, c`` for the LSTM."""
        if not self.stateful:
            raise ValueError(f"{self.name}: set_state needs stateful=True")
        if len(arrays) != self._n_states:
            names = "h" if self._n_states == 1 else "h, c"
            raise ValueError(f"{self.name}: set_state takes {names}, got {len(arrays)} arrays")
        shapes = {np.shape(a) for a in arrays}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError(f"{self.name}: state arrays must be (N, H), got shapes {shapes}")
        if next(iter(shapes))[1] != self.hidden_size:
            raise ValueError(
                f"{self.name}: state arrays must be (N, {self.hidden_size}), got {shapes}"
            )
        self._state = tuple(np.array(a, dtype=self.dtype or np.float32) for a in arrays)

    def _initial_state(self, n: int) -> tuple[np.ndarray, ...]:
        if self.stateful and self._state is not None:
            carried = self._state[0].shape[0]
            if carried != n:
                raise ValueError(
                    f"{self.name}: stateful layer carries state for batch size {carried}, "
                    f"got a batch of {n}; call reset_state() before changing the batch size"
                )
            return tuple(np.ascontiguousarray(s, dtype=self.dtype) for s in self._state)
        zeros = np.zeros((n, self.hidden_size), self.dtype)
        return (zeros,) * self._n_states

    # -- passes -----------------------------------------------------------------------------

    def _check_input(self, x: np.ndarray) -> None:
        super()._check_input(x)
        if x.ndim != 3:
            raise ValueError(f"{self.name}: expected input (N, T, D), got shape {x.shape}")
        if self.in_features is not None and x.shape[2] != self.in_features:
            raise ValueError(
                f"{self.name}: expected {self.in_features} input features (last axis), "
                f"got shape {x.shape}"
            )

    def forward(self, x: np.ndarray, inference: bool = False) -> np.ndarray:
        """``(N, T, D)`` → ``(N, T, H)``, or ``(N, H)`` with ``return_sequences=False``."""
        self._check_input(x)
        if self.first:
            self._setup(x)
        loop = self.operations[0]
        loop.initial_state = self._initial_state(x.shape[0])
        self.input_ = x
        out = loop.forward(x, inference)
        if self.stateful:
            self._state = loop.final_state
        for op in self.operations[1:]:
            out = op.forward(out, inference)
        self.output = out
        return out

    def backward(self, output_grad: np.ndarray) -> np.ndarray | None:
        """Backward through time; also sets ``param_grads`` and ``state_grads``."""
        if self.output is None:
            raise RuntimeError(f"{self.name}.backward called before forward")
        check_same_shape(self.name, "output_grad", self.output, output_grad)
        grad = output_grad
        for op in reversed(self.operations[1:]):
            grad = op.backward(grad)
        loop = self.operations[0]
        self.input_grad = loop.backward(grad)
        self.state_grads = loop.state_grads
        return self.input_grad


class RNNLayer(_RecurrentLayer):
    """Elman RNN layer: ``h_t = tanh(x_t W_ih + h_{t-1} W_hh + b)``.

    Parameters
    ----------
    hidden_size : int
        ``H``.
    return_sequences : bool, default True
        Return every step ``(N, T, H)``; False returns the last step ``(N, H)``.
    stateful : bool, default False
        Carry the final state into the next batch (see :mod:`fastdl.layers.recurrent`).
    weight_init : {"glorot", "he", "standard"}, default "glorot"
        For ``W_ih``.
    recurrent_init : {"orthogonal", "glorot", "he", "standard"}, default "orthogonal"
        For ``W_hh``.
    dropout : float, default 1.0
        Keep probability of a dropout on the layer's output while training, as ``Dense``'s
        (the book's convention; 1.0 = none). The recurrent connections are not dropped
        (Zaremba et al. 2014).

    Shape
    -----
    - Input: ``(N, T, D)`` float.
    - Output: ``(N, T, H)``, or ``(N, H)``.
    - Parameters: ``W_ih`` ``(D, H)``, ``W_hh`` ``(H, H)``, ``b`` ``(H,)``.

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> fd.RNNLayer(8).forward(np.zeros((2, 5, 3), np.float32)).shape
    (2, 5, 8)
    """


class GRULayer(_RecurrentLayer):
    """GRU layer, as PyTorch's ``nn.GRU`` (gates r, z, n; the reset gate multiplies
    ``h W_hn + b_hn``)::

        r = σ(x W_ir + b_ir + h W_hr + b_hr)      z = σ(x W_iz + b_iz + h W_hz + b_hz)
        n = tanh(x W_in + b_in + r ⊙ (h W_hn + b_hn))
        h' = (1 − z) ⊙ n + z ⊙ h

    Parameters are as for :class:`RNNLayer`.

    Shape
    -----
    - Input: ``(N, T, D)`` float.
    - Output: ``(N, T, H)``, or ``(N, H)``.
    - Parameters: ``W_ih`` ``(D, 3H)``, ``W_hh`` ``(H, 3H)``, ``b_ih`` ``(3H,)``,
      ``b_hh`` ``(3H,)``; blocks in the order r, z, n.

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> fd.GRULayer(8, return_sequences=False).forward(np.zeros((2, 5, 3), np.float32)).shape
    (2, 8)
    """

    _gates = 3
    _loop = GRULoop

    def _make_params(self, w_ih: np.ndarray, w_hh: np.ndarray) -> list[np.ndarray]:
        g = self._gates * self.hidden_size
        return [w_ih, w_hh, np.zeros(g, self.dtype), np.zeros(g, self.dtype)]


class LSTMLayer(_RecurrentLayer):
    """LSTM layer (gates i, f, g, o, as PyTorch's ``nn.LSTM``)::

        i = σ(x W_ii + h W_hi + b_i)     f = σ(x W_if + h W_hf + b_f)
        g = tanh(x W_ig + h W_hg + b_g)  o = σ(x W_io + h W_ho + b_o)
        c' = f ⊙ c + i ⊙ g               h' = o ⊙ tanh(c')

    Parameters are as for :class:`RNNLayer`; the state is ``(h, c)``.

    Shape
    -----
    - Input: ``(N, T, D)`` float.
    - Output: ``(N, T, H)``, or ``(N, H)``.
    - Parameters: ``W_ih`` ``(D, 4H)``, ``W_hh`` ``(H, 4H)``, ``b`` ``(4H,)`` (PyTorch's
      ``bias_ih + bias_hh``); blocks in the order i, f, g, o.

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> fd.LSTMLayer(8).forward(np.zeros((2, 5, 3), np.float32)).shape
    (2, 5, 8)
    """

    _gates = 4
    _n_states = 2
    _loop = LSTMLoop

    def _make_params(self, w_ih: np.ndarray, w_hh: np.ndarray) -> list[np.ndarray]:
        h = self.hidden_size
        b = np.zeros(4 * h, self.dtype)
        b[h : 2 * h] = 1
        return [w_ih, w_hh, b]
