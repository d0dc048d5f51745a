"""tanh and sigmoid over contiguous rows, in loops LLVM vectorises (the recurrent cells' math).

The cell loops of :mod:`fastdl.kernels.rnn`, :mod:`~fastdl.kernels.gru` and
:mod:`~fastdl.kernels.lstm` apply ``tanh`` and ``sigmoid`` to contiguous rows. libm's ``tanh``
is a scalar call that stops LLVM from vectorising the loop, so for float32 the helpers use a
clamped rational approximation (the [13/6] minimax fraction of Eigen's ``ptanh``; maximum
absolute error 4.2e-7 against the exact tanh — 4.10e-7 at x = 5.827876, the largest over
every float32 from 2⁻⁴ to 8.5 — odd, and ``|tanh(x)| <= 1`` exactly), which
vectorises. float64 (used for gradient checks) keeps libm's ``tanh``. The sigmoid is
``0.5·tanh(x/2) + 0.5``, the logistic function written so it cannot overflow.

Constants are float32 scalars so that float32 arithmetic stays float32 (a Python ``1`` is an
int64 in numba and would promote every float32 expression to float64).
"""

from __future__ import annotations

import math

import numpy as np

from fastdl.kernels._jit import jit

__all__ = [
    "tanh_into",
    "tanh_inplace",
    "sigmoid_into",
    "scaled_tanh_into",
    "gate_scales",
    "ONE",
    "HALF",
]

ONE = np.float32(1.0)
HALF = np.float32(0.5)

_CLAMP = np.float32(7.90531110763549805)
_A1 = np.float32(4.89352455891786e-03)
_A3 = np.float32(6.37261928875436e-04)
_A5 = np.float32(1.48572235717979e-05)
_A7 = np.float32(5.12229709037114e-08)
_A9 = np.float32(-8.60467152213735e-11)
_A11 = np.float32(2.00018790482477e-13)
_A13 = np.float32(-2.76076847742355e-16)
_B0 = np.float32(4.89352518554385e-03)
_B2 = np.float32(2.26843463243900e-03)
_B4 = np.float32(1.18534705686654e-04)
_B6 = np.float32(1.19825839466702e-06)


@jit
def _tanh32(v):
    """The clamped rational tanh of one float32 ``v`` (LLVM inlines it into the loops)."""
    if v > _CLAMP:
        v = _CLAMP
    elif v < -_CLAMP:
        v = -_CLAMP
    v2 = v * v
    p = ((((((_A13 * v2 + _A11) * v2 + _A9) * v2 + _A7) * v2 + _A5) * v2 + _A3) * v2 + _A1) * v
    q = ((_B6 * v2 + _B4) * v2 + _B2) * v2 + _B0
    return p / q


@jit
def tanh_into(x, out):
    """``out[k] = tanh(x[k])`` for 1-D arrays of one length that do not overlap (if they do,
    the result is right but the loop runs unvectorised, see :func:`sigmoid_into`; use
    :func:`tanh_inplace`)."""
    if x.itemsize == 4:
        for k in range(x.shape[0]):
            out[k] = _tanh32(x[k])
    else:
        for k in range(x.shape[0]):
            out[k] = math.tanh(x[k])


@jit
def tanh_inplace(a):
    """``a[k] = tanh(a[k])`` for a 1-D array: the values of :func:`tanh_into`, in place."""
    if a.itemsize == 4:
        for k in range(a.shape[0]):
            a[k] = _tanh32(a[k])
    else:
        for k in range(a.shape[0]):
            a[k] = math.tanh(a[k])


@jit
def sigmoid_into(src, dst):
    """``dst[k] = 1 / (1 + exp(-src[k]))`` as ``0.5·tanh(src/2) + 0.5``; ``src`` is scratch.

    ``src`` and ``dst`` must not overlap: LLVM vectorises a loop over two arrays only after a
    run-time check that they do not overlap, and falls back to scalar code (5× slower here)
    when they do. Each loop below reads and writes one array at the same index, or two
    distinct arrays.
    """
    for k in range(src.shape[0]):
        src[k] *= HALF
    tanh_into(src, dst)
    for k in range(dst.shape[0]):
        dst[k] = HALF * dst[k] + HALF


@jit
def scaled_tanh_into(src, dst, scale, shift):
    """``dst = scale·tanh(scale·src) + shift`` elementwise; ``src`` is scratch, no overlap.

    With ``scale = ½, shift = ½`` this is the sigmoid, with ``1, 0`` the tanh: one call
    applies the gates' nonlinearities to a whole row of gate pre-activations.
    """
    for k in range(src.shape[0]):
        src[k] *= scale[k]
    tanh_into(src, dst)
    for k in range(dst.shape[0]):
        dst[k] = scale[k] * dst[k] + shift[k]


def gate_scales(blocks: str, hid: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``scale, shift`` for :func:`scaled_tanh_into` over gate blocks of size ``hid``:
    ``blocks`` spells each block's nonlinearity, ``"s"`` sigmoid or ``"t"`` tanh (LSTM:
    ``"ssts"``)."""
    scale = np.empty(len(blocks) * hid, dtype)
    shift = np.empty(len(blocks) * hid, dtype)
    for j, kind in enumerate(blocks):
        scale[j * hid : (j + 1) * hid] = 0.5 if kind == "s" else 1.0
        shift[j * hid : (j + 1) * hid] = 0.5 if kind == "s" else 0.0
    return scale, shift
