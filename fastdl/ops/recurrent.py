"""The time loops of the recurrent layers as operations: RNNLoop, GRULoop, LSTMLoop.

Each runs its whole forward time loop in one kernel call and its whole backward-through-time
loop in another (see :mod:`fastdl.kernels.rnn`, :mod:`~fastdl.kernels.gru`,
:mod:`~fastdl.kernels.lstm` for the equations and the weight layouts).

Shapes: input ``(N, T, D)``; output ``(N, T, H)``, or ``(N, H)`` (the last step) with
``return_sequences=False``; initial state ``h0`` (and ``c0`` for the LSTM) ``(N, H)``.

Before ``forward`` the owning layer sets ``initial_state`` (a tuple of ``(N, H)`` arrays).
After ``forward``, ``final_state`` holds the state after the last step; after ``backward``,
``state_grads`` holds the gradients with respect to ``initial_state`` (the carried state of a
stateful layer is a constant of the next batch, so these are reported, not propagated).

When the input gradient is not needed (the op is first in its network, or the pass is for
inference) and every row of the input is exactly one-hot, as in the book's character model,
the input product ``x @ W_ih`` is done as the row gather ``W_ih[ids]`` and its gradient as a
scatter-add: the same numbers, without the multiplications by zero.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels.embedding import onehot_ids
from fastdl.kernels.gru import gru_backward, gru_forward
from fastdl.kernels.lstm import lstm_backward, lstm_forward
from fastdl.kernels.rnn import rnn_backward, rnn_forward
from fastdl.ops.base import Operation

__all__ = ["RNNLoop", "GRULoop", "LSTMLoop"]


class _RecurrentLoop(Operation):
    """Shared machinery; subclasses give ``_run_forward`` and ``_run_backward``."""

    pass_attrs = (*Operation.pass_attrs, "_saved", "_kernel_input")

    #: Arrays in the recurrent state: 1 (h) or 2 (h, c).
    n_states = 1

    def __init__(self, weights: list[np.ndarray], return_sequences: bool = True) -> None:
        super().__init__()
        self.weights = list(weights)
        self.return_sequences = return_sequences
        self.initial_state: tuple[np.ndarray, ...] | None = None
        self.final_state: tuple[np.ndarray, ...] | None = None
        self.state_grads: tuple[np.ndarray, ...] | None = None
        self._kernel_input: np.ndarray | None = None
        self._saved: tuple[np.ndarray, ...] = ()
        self._state_used: tuple[np.ndarray, ...] = ()  # the state the last forward started from

    @property
    def hidden_size(self) -> int:
        return self.weights[1].shape[0]

    def params(self) -> list[np.ndarray]:
        return list(self.weights)

    def _check_input(self, input_: np.ndarray) -> None:
        d, h = self.weights[0].shape[0], self.hidden_size
        if input_.ndim != 3 or input_.shape[2] != d or 0 in input_.shape[:2]:
            raise ValueError(
                f"{self.name}: expected input (N, T, {d}) with N, T >= 1 for W_ih "
                f"{self.weights[0].shape}, got {input_.shape}"
            )
        if self.initial_state is not None:
            n = input_.shape[0]
            shapes = [np.shape(s) for s in self.initial_state]
            if len(shapes) != self.n_states or any(shape != (n, h) for shape in shapes):
                raise ValueError(
                    f"{self.name}: initial_state must be {self.n_states} array(s) of shape "
                    f"({n}, {h}) for input {input_.shape}, got shapes {shapes}"
                )

    def _output(self, inference: bool) -> np.ndarray:
        x = np.ascontiguousarray(self.input_)
        n = x.shape[0]
        state = self.initial_state
        if state is None:  # zeros for this batch (never kept: the next batch may differ)
            state = (np.zeros((n, self.hidden_size), self.weights[1].dtype),) * self.n_states
        self._state_used = state
        ids = onehot_ids(x) if (inference or self.skip_input_grad) else None
        self._kernel_input = x if ids is None else ids
        self._saved = self._run_forward(self._kernel_input, state)
        self.final_state = self._final_state(self._saved)
        hs = self._saved[0]
        return hs if self.return_sequences else np.ascontiguousarray(hs[:, -1])

    def _gradients(
        self, output_grad: np.ndarray, need_input_grad: bool
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """All gradients in one backward-through-time pass; also sets ``state_grads``."""
        hs = self._saved[0]
        if self.return_sequences:
            dhs = np.ascontiguousarray(output_grad, dtype=hs.dtype)
        else:
            dhs = np.zeros_like(hs)
            dhs[:, -1] = output_grad
        if need_input_grad and self._kernel_input.ndim == 2:
            # forward took the one-hot shortcut (inference pass); redo it densely.
            self._kernel_input = np.ascontiguousarray(self.input_)
            self._saved = self._run_forward(self._kernel_input, self._state_used)
        out = self._run_backward(
            self._kernel_input, self._state_used, self._saved, dhs, need_input_grad
        )
        n = len(self.weights)
        self.state_grads = tuple(out[1 + n :])
        return (out[0] if need_input_grad else None), list(out[1 : 1 + n])

    def flops(self) -> tuple[int, int]:
        """``(forward, backward)`` FLOPs of training on the last input ``(N, T, D)``.

        Per step, the recurrent product ``h W_hh``, ``(N, H) @ (H, G·H)``; the input
        projection ``x W_ih``, ``(N·T, D) @ (D, G·H)``, unless the input is one-hot and its
        gradient skipped (the first layer of the book's character model): then it is a row
        gather. Backward: ``dW_hh`` and ``dh_{t-1} = da_t W_hhᵀ`` (always: the time loop
        needs it), ``dW_ih`` (a scatter-add after a gather, not counted) and, unless
        skipped, ``dx = da W_ihᵀ``; each product as many FLOPs as its forward twin.
        """
        if self.input_ is None:
            raise RuntimeError(f"{self.name}.flops called before forward")
        n, t_len = self.input_.shape[:2]
        d, gh = self.weights[0].shape
        recurrent = 2 * n * t_len * self.hidden_size * gh
        dense = 2 * n * t_len * d * gh  # one product with W_ih, or its transpose
        gathered = self._kernel_input.ndim == 2 and self.skip_input_grad  # as _output trains
        projection = 0 if gathered else dense
        input_grad = dense if self.needs_input_grad else 0
        return recurrent + projection, 2 * recurrent + projection + input_grad


class RNNLoop(_RecurrentLoop):
    """Time loop of an Elman RNN, ``h_t = tanh(x_t W_ih + h_{t-1} W_hh + b)``.

    Parameters
    ----------
    weights : [W_ih (D, H), W_hh (H, H), b (H,)]
    return_sequences : bool
    """

    def _run_forward(self, x, state):
        w_ih, w_hh, b = self.weights
        return (rnn_forward(x, w_ih, w_hh, b, state[0]),)

    def _final_state(self, saved):
        return (saved[0][:, -1].copy(),)

    def _run_backward(self, x, state, saved, dhs, need_dx):
        w_ih, w_hh, _ = self.weights
        return rnn_backward(x, w_ih, w_hh, state[0], saved[0], dhs, need_dx)


class GRULoop(_RecurrentLoop):
    """Time loop of a GRU as PyTorch's ``nn.GRU`` (gates r, z, n).

    Parameters
    ----------
    weights : [W_ih (D, 3H), W_hh (H, 3H), b_ih (3H,), b_hh (3H,)]
    return_sequences : bool
    """

    def _run_forward(self, x, state):
        w_ih, w_hh, b_ih, b_hh = self.weights
        return gru_forward(x, w_ih, w_hh, b_ih, b_hh, state[0])

    def _final_state(self, saved):
        return (saved[0][:, -1].copy(),)

    def _run_backward(self, x, state, saved, dhs, need_dx):
        w_ih, w_hh, _, _ = self.weights
        return gru_backward(x, w_ih, w_hh, state[0], *saved, dhs, need_dx)


class LSTMLoop(_RecurrentLoop):
    """Time loop of an LSTM (gates i, f, g, o).

    Parameters
    ----------
    weights : [W_ih (D, 4H), W_hh (H, 4H), b (4H,)]
    return_sequences : bool
    """

    n_states = 2

    def _run_forward(self, x, state):
        w_ih, w_hh, b = self.weights
        return lstm_forward(x, w_ih, w_hh, b, state[0], state[1])

    def _final_state(self, saved):
        return (saved[0][:, -1].copy(), saved[1][:, -1].copy())

    def _run_backward(self, x, state, saved, dhs, need_dx):
        w_ih, w_hh, _ = self.weights
        return lstm_backward(x, w_ih, w_hh, state[0], state[1], *saved, dhs, need_dx)
