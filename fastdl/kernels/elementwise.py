"""Element-wise kernels: tanh forward, the tanh and sigmoid backward passes, and dropout
forward and backward.

Each is one pass over the data, with no temporaries, in the memory order of its output:

- ``tanh_forward(x) = tanh(x)``, the result in ``x``'s memory layout. For float32 the numba
  twin uses the clamped rational tanh of :mod:`fastdl.kernels._activation_rows` (maximum
  absolute error 4.2e-7 against the exact tanh; NaN stays NaN, ±inf gives ±1, −0 stays −0),
  which LLVM vectorises where libm's ``tanhf`` is a scalar call: a tanh after the book's
  convolution took 3.1 ms of its 16.6-ms training step. It is the only kernel here whose
  twins differ in the last bits; float64 (gradient checks) runs the NumPy twin itself.
- ``tanh_backward(y, dy) = dy · (1 − y²)`` and ``sigmoid_backward(y, dy) = dy · y · (1 − y)``
  from the activation's output ``y``; the result has ``y``'s memory layout.
- ``dropout_forward(x, r, keep) = x · (1/keep if r < keep else 0)`` and
  ``dropout_backward(dy, r, keep) = dy · (1/keep if r < keep else 0)``, where ``r`` holds one
  uniform draw in [0, 1) per element (C-contiguous, as ``Generator.random`` makes it); the
  results are C-contiguous. Dropped elements are *multiplied* by zero, as ``x * mask`` does,
  so a NaN stays NaN and the sign of zero is kept: both twins give the same bits as the
  NumPy expressions.

Why kernels at all: a convolution's output is an NCHW view of channels-last memory (see
:mod:`fastdl.ops.conv`), and NumPy's ``dy * (1 - y * y)`` on a channels-last ``y`` and a
C-ordered ``dy`` makes three temporaries in mixed memory orders, several times slower than
one pass (``bench_elementwise``).

All arrays of one call have the same shape, of any rank. The NumPy twins are the formulas
as written; the numba twins first see the arrays as four-dimensional without copying —
C-contiguous data as ``(1, 1, 1, size)``, a 4-D array with its axes reordered so that the
output's memory is C-ordered — and then run one loop nest over them.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels._activation_rows import tanh_into
from fastdl.kernels._jit import jit, pair

__all__ = [
    "tanh_forward",
    "tanh_backward",
    "sigmoid_backward",
    "dropout_forward",
    "dropout_backward",
]


# -- NumPy twins: the formulas as written -------------------------------------------------------


def tanh_forward_np(x):
    """``y = tanh(x)`` (NumPy twin).

    Parameters
    ----------
    x : ndarray, any shape, float32 or float64

    Returns
    -------
    y : ndarray, shape, dtype and (for a contiguous ``x`` in any axis order) memory layout of
        ``x``
    """
    return np.tanh(x)


def tanh_backward_np(y, dy):
    """Gradient through tanh from its output: ``dx = dy · (1 − y²)`` (NumPy twin).

    Parameters
    ----------
    y : ndarray, any shape, float32 or float64
        The output of tanh.
    dy : ndarray, shape of ``y``, float32 or float64 (the result has their common dtype)
        The gradient with respect to ``y``.

    Returns
    -------
    dx : ndarray, shape of ``y``, dtype ``np.result_type(y, dy)`` (the numba twin: also
        ``y``'s memory layout)
    """
    return dy * (1.0 - y * y)


def sigmoid_backward_np(y, dy):
    """Gradient through the sigmoid from its output: ``dx = dy · y · (1 − y)`` (NumPy twin).

    Parameters
    ----------
    y : ndarray, any shape, float32 or float64
        The output of the sigmoid.
    dy : ndarray, shape of ``y``, float32 or float64 (the result has their common dtype)

    Returns
    -------
    dx : ndarray, shape of ``y``, dtype ``np.result_type(y, dy)`` (the numba twin: also
        ``y``'s memory layout)
    """
    return dy * y * (1.0 - y)


def dropout_forward_np(x, r, keep):
    """Inverted dropout: ``y = x · mask``, ``mask = 1/keep`` where ``r < keep``, else 0 (NumPy twin).

    Parameters
    ----------
    x : ndarray, any shape, float32 or float64
    r : ndarray, shape of ``x``, float32 or float64, C-contiguous
        One uniform draw in [0, 1) per element.
    keep : float
        Keep probability, 0 < keep < 1; compared in ``r``'s dtype, divided in ``x``'s.

    Returns
    -------
    y : ndarray, shape and dtype of ``x``, C-contiguous
    """
    mask = (r < r.dtype.type(keep)) * x.dtype.type(1.0 / keep)
    return np.ascontiguousarray(x * mask)


def dropout_backward_np(dy, r, keep):
    """Gradient through dropout: ``dx = dy · mask``, the forward pass's mask (NumPy twin).

    Parameters
    ----------
    dy : ndarray, any shape, float32 or float64
    r : ndarray, shape of ``dy``, float32 or float64, C-contiguous
        The draws of the forward pass.
    keep : float

    Returns
    -------
    dx : ndarray, shape and dtype of ``dy``, C-contiguous
    """
    return dropout_forward_np(dy, r, keep)


# -- numba twins: one loop nest in the output's memory order ------------------------------------


def _four_d(arrays, lead):
    """Views of ``arrays`` (one shape) with 4 axes, ordered so ``arrays[lead]``'s memory is
    C-ordered, and a function that turns a C-contiguous 4-D result back into the arrays'
    shape (a view: no copy)."""
    like = arrays[lead]
    shape = like.shape
    if like.ndim > 4 or like.size == 0 or all(a.flags.c_contiguous for a in arrays):
        flat = [np.ascontiguousarray(a).reshape(1, 1, 1, -1) for a in arrays]
        return flat, lambda out: out.reshape(shape)
    new_axes = (np.newaxis,) * (4 - like.ndim)
    views = [a[new_axes] for a in arrays]
    # Axes from the largest stride of ``like`` to the smallest (ties: keep the logical order).
    strides = views[lead].strides
    order = sorted(range(4), key=lambda ax: (-abs(strides[ax]), ax))
    inverse = np.argsort(order)
    return [v.transpose(order) for v in views], lambda out: out.transpose(inverse).reshape(shape)


@jit
def _tanh_4d(x):
    """``tanh`` of a 4-D float32 array into a new C-contiguous one, row by row."""
    a, b, c, d = x.shape
    y = np.empty((a, b, c, d), dtype=x.dtype)
    for i in range(a):
        for j in range(b):
            for k in range(c):
                tanh_into(x[i, j, k], y[i, j, k])
    return y


@jit
def _activation_backward_4d(y, dy, one, sigmoid):
    """``dy · y · (1 − y)`` (sigmoid) or ``dy · (1 − y²)`` (tanh), in the NumPy twins' order."""
    a, b, c, d = y.shape
    dx = np.empty((a, b, c, d), dtype=y.dtype)
    for i in range(a):
        for j in range(b):
            for k in range(c):
                for m in range(d):
                    v = y[i, j, k, m]
                    if sigmoid:
                        dx[i, j, k, m] = dy[i, j, k, m] * v * (one - v)
                    else:
                        dx[i, j, k, m] = dy[i, j, k, m] * (one - v * v)
    return dx


@jit
def _dropout_4d(x, r, k, scale):
    a, b, c, d = x.shape
    y = np.empty((a, b, c, d), dtype=x.dtype)
    zero = scale - scale  # 0 in x's dtype
    for i in range(a):
        for j in range(b):
            for n in range(c):
                for m in range(d):
                    mask = scale if r[i, j, n, m] < k else zero
                    y[i, j, n, m] = x[i, j, n, m] * mask
    return y


# Constants are passed in the arrays' dtype: a float64 literal would turn float32 arithmetic
# into float64 and round differently from the NumPy twin.


def _promoted(y, dy):
    """Both arrays in their common dtype, as NumPy's arithmetic would promote them."""
    dtype = np.result_type(y, dy)
    return y.astype(dtype, copy=False), dy.astype(dtype, copy=False), dtype.type(1.0)


def tanh_forward_nb(x):
    """numba twin of :func:`tanh_forward_np`: the rational tanh for float32, the NumPy twin
    for other dtypes. (A non-C-contiguous float32 input of more than 4 dimensions comes back
    C-contiguous rather than in its own layout.)"""
    if x.dtype != np.float32:
        return tanh_forward_np(x)
    (x4,), back = _four_d([x], 0)
    if x4.flags.c_contiguous:  # one long row: no per-row calls on short rows
        y4 = np.empty_like(x4)
        tanh_into(x4.reshape(-1), y4.reshape(-1))
        return back(y4)
    return back(_tanh_4d(x4))


def tanh_backward_nb(y, dy):
    """numba twin of :func:`tanh_backward_np`."""
    y, dy, one = _promoted(y, dy)
    (y4, dy4), back = _four_d([y, dy], 0)
    return back(_activation_backward_4d(y4, dy4, one, False))


def sigmoid_backward_nb(y, dy):
    """numba twin of :func:`sigmoid_backward_np`."""
    y, dy, one = _promoted(y, dy)
    (y4, dy4), back = _four_d([y, dy], 0)
    return back(_activation_backward_4d(y4, dy4, one, True))


def dropout_forward_nb(x, r, keep):
    """numba twin of :func:`dropout_forward_np`."""
    (x4, r4), back = _four_d([x, r], 1)
    return back(_dropout_4d(x4, r4, r.dtype.type(keep), x.dtype.type(1.0 / keep)))


def dropout_backward_nb(dy, r, keep):
    """numba twin of :func:`dropout_backward_np`."""
    return dropout_forward_nb(dy, r, keep)


tanh_forward = pair(tanh_forward_np, tanh_forward_nb)
tanh_backward = pair(tanh_backward_np, tanh_backward_nb)
sigmoid_backward = pair(sigmoid_backward_np, sigmoid_backward_nb)
dropout_forward = pair(dropout_forward_np, dropout_forward_nb)
dropout_backward = pair(dropout_backward_np, dropout_backward_nb)
