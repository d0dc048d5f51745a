"""Chapter 6's layers (``RNNLayer``, ``LSTMLayer``, ``GRULayer``): fastdl's compiled time loops
with the book's output projection, initial weights and carried state.

Re-exported by :mod:`fastdl.book.rnn`, whose docstring describes them and every difference
from the book's code.
"""

from __future__ import annotations

import math

import numpy as np

from fastdl._checks import positive_int
from fastdl.layers.base import Layer
from fastdl.ops.dense import BiasAdd, WeightMultiply
from fastdl.ops.recurrent import GRULoop, LSTMLoop, RNNLoop

__all__ = ["RNNLayer", "LSTMLayer", "GRULayer"]


def _normal(scale: float, *shape: int) -> np.ndarray:
    """One draw as the book makes it: NumPy's global generator, ``N(0, scale²)``."""
    return np.random.normal(loc=0.0, scale=scale, size=shape)  # noqa: NPY002 (the book's)


def _check_scale(where: str, value, allow_none: bool) -> float | None:
    if value is None and allow_none:
        return None
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        allowed = "a positive number or None" if allow_none else "a positive number"
        raise ValueError(f"{where}: weight_scale must be {allowed}, got {value!r}")
    return float(value)


class _BookRecurrentLayer(Layer):
    """Shared machinery of the book's layers: ``[Loop, WeightMultiply, BiasAdd]`` and the
    book's carried state (see :mod:`fastdl.book.rnn`)."""

    _loop = RNNLoop
    _state_names: tuple[str, ...] = ("start_H",)
    _scale_may_be_none = False
    #: Carries state between batches (read by fastdl's state protocol: ``carried_states``).
    stateful = True

    def __init__(self, hidden_size: int, output_size: int, weight_scale: float | None = 0.01):
        super().__init__()
        self.hidden_size = positive_int(self.name, "hidden_size", hidden_size)
        self.output_size = positive_int(self.name, "output_size", output_size)
        self.weight_scale = _check_scale(self.name, weight_scale, self._scale_may_be_none)
        #: The input width D (the book's name: the first layer's input is one-hot over V).
        self.vocab_size: int | None = None
        self.reset_state()

    def get_config(self) -> dict:
        return {"hidden_size": self.hidden_size, "output_size": self.output_size,
                "weight_scale": self.weight_scale}  # fmt: skip

    # -- parameters -------------------------------------------------------------------------

    def _draw(self, d: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """The book's draws, mapped: ``(loop weights, W_v (H, O), B_v (O,))``."""
        raise NotImplementedError

    def _setup_layer(self, x: np.ndarray) -> None:
        self.vocab_size = x.shape[2]
        weights, w_v, b_v = self._draw(self.vocab_size)
        cast = [np.ascontiguousarray(w, dtype=self.dtype) for w in (*weights, w_v, b_v)]
        self.operations = [self._loop(cast[:-2], return_sequences=True),
                           WeightMultiply(cast[-2]), BiasAdd(cast[-1])]  # fmt: skip

    def reset(self) -> None:
        super().reset()
        self.vocab_size = None
        self.reset_state()

    # -- the book's carried state -------------------------------------------------------------

    @property
    def state(self) -> tuple[np.ndarray, ...]:
        """``(start_H,)``, or ``(start_H, start_C)`` for the LSTM, each ``(1, H)``."""
        return tuple(getattr(self, name) for name in self._state_names)

    def reset_state(self) -> None:
        """Start the next batch from zeros (as a new book layer does)."""
        for name in self._state_names:
            setattr(self, name, np.zeros((1, self.hidden_size)))

    def set_state(self, *arrays: np.ndarray) -> None:
        """Set ``start_H`` (and ``start_C``), each ``(1, H)``."""
        if len(arrays) != len(self._state_names):
            raise ValueError(
                f"{self.name}: set_state takes {', '.join(self._state_names)}, "
                f"got {len(arrays)} arrays"
            )
        for name, a in zip(self._state_names, arrays, strict=True):
            if np.shape(a) != (1, self.hidden_size):
                raise ValueError(
                    f"{self.name}: {name} must have shape (1, {self.hidden_size}), "
                    f"got {np.shape(a)}"
                )
        for name, a in zip(self._state_names, arrays, strict=True):
            setattr(self, name, np.array(a, dtype=np.float64))

    # -- passes -----------------------------------------------------------------------------

    def _check_input(self, x: np.ndarray) -> None:
        super()._check_input(x)
        if x.ndim != 3:
            raise ValueError(
                f"{self.name}: expected input (batch, time, features), got shape {x.shape}"
            )
        if self.vocab_size is not None and x.shape[2] != self.vocab_size:
            raise ValueError(
                f"{self.name}: expected {self.vocab_size} input features (last axis), as in "
                f"the first batch, got shape {x.shape}"
            )

    def forward(self, x: np.ndarray, inference: bool = False) -> np.ndarray:
        """``(N, T, D)`` → ``(N, T, O)``, starting every row from ``start_H`` (``start_C``);
        afterwards they are the batch means of the last step's state."""
        self._check_input(x)
        if self.first:
            self._setup(x)
        loop = self.operations[0]
        loop.initial_state = tuple(
            np.repeat(s.astype(self.dtype), x.shape[0], axis=0) for s in self.state
        )
        out = super().forward(x, inference)
        for name, s in zip(self._state_names, loop.final_state, strict=True):
            setattr(self, name, s.mean(axis=0, keepdims=True, dtype=np.float64))
        return out


class RNNLayer(_BookRecurrentLayer):
    """The book's ``RNNLayer``: ``h_t = tanh([x_t | h_{t−1}] W_f + B_f)``, ``y_t = h_t W_v + B_v``.

    Parameters
    ----------
    hidden_size : int
        ``H``.
    output_size : int
        O, the width of ``y_t`` (the vocabulary size V for the last layer).
    weight_scale : float or None, default None
        Standard deviation of every initial weight; None is the book's ``2 / (D + O)``.

    Shape
    -----
    - Input: ``(N, T, D)``; output ``(N, T, O)``.
    - Parameters (fastdl's layout): ``W_ih`` ``(D, H)`` (the book's ``W_f[:D]``), ``W_hh``
      ``(H, H)`` (``W_f[D:]``), ``b`` ``(H,)`` (``B_f``), ``W_v`` ``(H, O)``, ``B_v`` ``(O,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastdl.book.rnn import RNNLayer
    >>> RNNLayer(hidden_size=8, output_size=5).forward(np.zeros((2, 3, 5))).shape
    (2, 3, 5)
    """

    _scale_may_be_none = True

    def __init__(self, hidden_size: int, output_size: int, weight_scale: float | None = None):
        super().__init__(hidden_size, output_size, weight_scale)

    def _draw(self, d):
        h, o = self.hidden_size, self.output_size
        s = self.weight_scale if self.weight_scale is not None else 2 / (d + o)
        w_f, b_f = _normal(s, h + d, h), _normal(s, 1, h)
        w_v, b_v = _normal(s, h, o), _normal(s, 1, o)
        return [w_f[:d], w_f[d:], b_f[0]], w_v, b_v[0]


class LSTMLayer(_BookRecurrentLayer):
    """The book's ``LSTMLayer`` (forget, input, candidate, output gates on ``[x | h]``), then
    ``y_t = h_t W_v + B_v``; the state is ``(h, c)``.

    Parameters
    ----------
    hidden_size : int
    output_size : int
    weight_scale : float, default 0.01

    Shape
    -----
    - Input: ``(N, T, D)``; output ``(N, T, O)``.
    - Parameters: ``W_ih`` ``(D, 4H)``, ``W_hh`` ``(H, 4H)``, ``b`` ``(4H,)`` with blocks in
      fastdl's order i, f, g, o (the book's ``W_i``, ``W_f``, ``W_c``, ``W_o``, each split
      into its first D and last H rows), ``W_v`` ``(H, O)``, ``B_v`` ``(O,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastdl.book.rnn import LSTMLayer
    >>> LSTMLayer(hidden_size=8, output_size=5).forward(np.zeros((2, 3, 4))).shape
    (2, 3, 5)
    """

    _loop = LSTMLoop
    _state_names = ("start_H", "start_C")

    def _draw(self, d):
        h, o, s = self.hidden_size, self.output_size, self.weight_scale
        gates = {}
        for gate in ("f", "i", "c", "o"):  # the book's order of draws
            gates[gate] = (_normal(s, h + d, h), _normal(s, 1, h))
        w_v, b_v = _normal(s, h, o), _normal(s, 1, o)
        order = [gates[g] for g in ("i", "f", "c", "o")]  # fastdl's blocks i, f, g, o
        w_ih = np.concatenate([w[:d] for w, _ in order], axis=1)
        w_hh = np.concatenate([w[d:] for w, _ in order], axis=1)
        b = np.concatenate([b[0] for _, b in order])
        return [w_ih, w_hh, b], w_v, b_v[0]


class GRULayer(_BookRecurrentLayer):
    """The book's ``GRULayer`` with its update gate fixed, on fastdl's (PyTorch's) GRU::

        r = σ(x W_xr + h W_hr + B_r)        u = σ(x W_xu + h W_hu + B_u)
        h̄ = tanh(x W_xh + B_h + r ⊙ (h W_hh + b_hn))
        h' = u ⊙ h + (1 − u) ⊙ h̄           y = h' W_v + B_v

    See the module docstring for both differences from the book's ``GRUNode``.

    Parameters
    ----------
    hidden_size : int
    output_size : int
    weight_scale : float, default 0.01
        For the gates' weights and biases; ``B_h``, ``W_v`` and ``B_v`` are drawn with 1.0,
        as the book draws them.

    Shape
    -----
    - Input: ``(N, T, D)``; output ``(N, T, O)``.
    - Parameters: ``W_ih`` ``(D, 3H)`` = ``[W_xr | W_xu | W_xh]``, ``W_hh`` ``(H, 3H)`` =
      ``[W_hr | W_hu | W_hh]``, ``b_ih`` ``(3H,)`` = ``[B_r | B_u | B_h]``, ``b_hh``
      ``(3H,)`` (zeros at first), ``W_v`` ``(H, O)``, ``B_v`` ``(O,)``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastdl.book.rnn import GRULayer
    >>> GRULayer(hidden_size=8, output_size=5).forward(np.zeros((2, 3, 4))).shape
    (2, 3, 5)
    """

    _loop = GRULoop

    def _draw(self, d):
        h, o, s = self.hidden_size, self.output_size, self.weight_scale
        w_xr, w_hr, b_r = _normal(s, d, h), _normal(s, h, h), _normal(s, 1, h)
        w_xu, w_hu, b_u = _normal(s, d, h), _normal(s, h, h), _normal(s, 1, h)
        w_xh, w_hh, b_h = _normal(s, d, h), _normal(s, h, h), _normal(1.0, 1, h)
        w_v, b_v = _normal(1.0, h, o), _normal(1.0, 1, o)
        weights = [
            np.concatenate([w_xr, w_xu, w_xh], axis=1),
            np.concatenate([w_hr, w_hu, w_hh], axis=1),
            np.concatenate([b_r[0], b_u[0], b_h[0]]),
            np.zeros(3 * h),
        ]
        return weights, w_v, b_v[0]
