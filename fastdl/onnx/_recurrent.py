"""ONNX converters of fastdl's recurrent time loops: RNNLoop, GRULoop, LSTMLoop.

fastdl's layout (:mod:`fastdl.kernels.rnn`, :mod:`~fastdl.kernels.gru`,
:mod:`~fastdl.kernels.lstm`) is PyTorch's transposed: ``W_ih`` ``(D, G·H)``, ``W_hh``
``(H, G·H)``, gate blocks in PyTorch's order. ONNX's RNN, GRU and LSTM take, for one
direction, ``W`` ``(1, G·H, D)``, ``R`` ``(1, G·H, H)`` and ``B`` ``(1, 2·G·H)`` (the input
biases ``Wb``, then the recurrent ones ``Rb``), with the gate blocks in ONNX's order:

=====  ====================  ==================  ==================================
cell   fastdl / PyTorch      ONNX                biases
=====  ====================  ==================  ==================================
RNN    —                     —                   ``Wb = b``, ``Rb = 0``
GRU    r, z, n               z, r, h             ``Wb = b_ih``, ``Rb = b_hh``
LSTM   i, f, g, o            i, o, f, c          ``Wb = b``, ``Rb = 0``
=====  ====================  ==================  ==================================

fastdl's GRU is PyTorch's: the reset gate multiplies ``h W_hn + b_hn``, which is ONNX's
``linear_before_reset=1``. The sequence goes in time-major: ONNX Runtime runs only
``layout=0`` (``(T, N, D)``), so a Transpose turns fastdl's ``(N, T, D)`` round and another
turns the ``(T, 1, N, H)`` output back to ``(N, T, H)``; ``return_sequences=False`` takes the
last hidden state ``Y_h`` ``(1, N, H)`` → ``(N, H)``. The initial state is zeros (see
:func:`fastdl.onnx.export` for stateful layers).
"""

from __future__ import annotations

import numpy as np

from fastdl.ops.recurrent import GRULoop, LSTMLoop, RNNLoop

__all__ = ["CONVERTERS"]

#: For each loop: the ONNX operator, and fastdl's gate block at each ONNX gate position.
_ORDER = {RNNLoop: ("RNN", [0]), GRULoop: ("GRU", [1, 0, 2]), LSTMLoop: ("LSTM", [0, 3, 1, 2])}


def _blocks(a: np.ndarray, order: list[int], h: int) -> np.ndarray:
    """The blocks of ``h`` rows of ``a`` (axis 0) taken in ``order``."""
    return np.concatenate([a[k * h : (k + 1) * h] for k in order], axis=0)


def _recurrent(g, op, x: str) -> str:
    """Transpose → RNN / GRU / LSTM (layout 0) → back to fastdl's batch-first output."""
    op_type, order = _ORDER[type(op)]
    w_ih, w_hh, *biases = op.params()
    h = op.hidden_size
    gh = len(order) * h
    w = _blocks(w_ih.T, order, h)[None]  # (1, G·H, D)
    r = _blocks(w_hh.T, order, h)[None]  # (1, G·H, H)
    if len(biases) == 2:  # GRU: b_ih, b_hh
        wb, rb = (_blocks(b, order, h) for b in biases)
    else:  # RNN, LSTM: one bias (PyTorch's bias_ih + bias_hh)
        wb, rb = _blocks(biases[0], order, h), np.zeros(gh, biases[0].dtype)
    b = np.concatenate([wb, rb])[None]  # (1, 2·G·H)
    attrs = {"hidden_size": h, "direction": "forward", "layout": 0}
    if op_type == "GRU":
        attrs["linear_before_reset"] = 1
    time_major = g.node("Transpose", [x], perm=[1, 0, 2])  # (T, N, D)
    inputs = [time_major, g.weight("W", w), g.weight("R", r), g.weight("B", b)]
    omit = () if op.return_sequences else (0,)  # Y, the whole sequence, is not needed
    y, y_h = g.node(op_type, inputs, n_outputs=2, omit=omit, **attrs)
    if op.return_sequences:
        seq = g.node("Squeeze", [y, g.axes(1)])  # (T, 1, N, H) → (T, N, H)
        return g.node("Transpose", [seq], perm=[1, 0, 2])  # (N, T, H)
    return g.node("Squeeze", [y_h, g.axes(0)])  # (1, N, H) → (N, H)


CONVERTERS = dict.fromkeys(_ORDER, _recurrent)
