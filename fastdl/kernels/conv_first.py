"""Stride-1 convolution of few-channel images with the output channels-first, for a layer
that flattens it.

:mod:`fastdl.kernels.conv` computes channels-last, which the next convolution or pooling
reads without a copy. A layer that flattens its output (the book's
``Conv2D(..., flatten=True)``) is read by a dense layer in NCHW order instead, so there the
channels-last output costs a transposing copy forward, another backward, and an activation
between the two that reads one array channels-last and the other channels-first. These
kernels write ``(N, C_out, OH, OW)`` directly, from the same patches on planes
(:mod:`fastdl.kernels.conv_planes`), transposed products.

The book's layer has a tanh after its convolution, so these kernels can also apply it:
``tanh=True`` gives ``tanh(conv2d(x, W) + B)`` forward, each image's output while it is in
cache (float32: the rational tanh of :func:`fastdl.kernels.elementwise.tanh_forward`, to
the bit; float64, for gradient checks: ``np.tanh`` after the kernel, as that function does),
and backward ``dz = dy · (1 − y²)`` in the pass that sums the bias gradient. That saves two
passes over the output per step, each of which ran on one thread.

Shapes (the notation of :mod:`fastdl.kernels.conv`, stride 1)::

    x    (N, H, W, C_in)        channels-last (for one channel, the same memory as NCHW)
    w    (KH, KW, C_in, C_out)
    b    (C_out,)
    y    (N, C_out, OH, OW)     C-contiguous
    dy   (N, C_out, OH, OW)
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels import _recycle as recycle
from fastdl.kernels import conv
from fastdl.kernels._activation_rows import tanh_inplace
from fastdl.kernels._blas import serial_blas
from fastdl.kernels._jit import jit, pair
from fastdl.kernels._threads import chunk_bounds, run_chunks
from fastdl.kernels.conv_planes import (
    planes_backward_image,
    planes_backward_np,
    planes_forward_image,
    planes_forward_np,
    planes_weights,
    planes_work,
)
from fastdl.kernels.elementwise import tanh_backward_nb, tanh_forward_nb
from fastdl.kernels.im2col import output_size

__all__ = ["conv2d_first_forward", "conv2d_first_backward", "runs_channels_first"]


def runs_channels_first(stride: int, c_in: int) -> bool:
    """Whether these kernels take a convolution of stride ``stride`` on ``c_in`` channels."""
    return stride == 1 and c_in <= conv.PLANES_MAX_C_IN


def conv2d_first_forward_np(x, w, b, pad, relu, tanh=False):
    """Convolve with stride 1 (bias, optional ReLU or tanh); the output channels-first (NumPy
    twin).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in), float32 or float64, C-contiguous
    w : ndarray, shape (KH, KW, C_in, C_out), dtype of ``x``
    b : ndarray, shape (C_out,), dtype of ``x``
    pad : tuple of 4 int
        ``(PT, PB, PL, PR)``.
    relu : bool
        Apply ``max(·, 0)`` to the result.
    tanh : bool, default False
        Apply ``tanh`` to the result (not with ``relu``).

    Returns
    -------
    y : ndarray, shape (N, C_out, OH, OW), C-contiguous, dtype of ``x``
    """
    _check_activation(relu, tanh)
    y = np.ascontiguousarray(planes_forward_np(x, w, b, pad, relu).transpose(0, 3, 1, 2))
    return np.tanh(y, out=y) if tanh else y


def conv2d_first_backward_np(x, w, y, dy, pad, relu, need_dx, tanh=False):
    """Gradients of :func:`conv2d_first_forward` (NumPy twin).

    Parameters
    ----------
    x, w, pad, relu, tanh
        As given to the forward pass.
    y : ndarray, shape (N, C_out, OH, OW)
        The forward output (read only with ``relu`` or ``tanh``).
    dy : ndarray, shape (N, C_out, OH, OW)
    need_dx : bool

    Returns
    -------
    dx : ndarray, shape (N, H, W, C_in), or (0, H, W, C_in) without ``need_dx``
    dw : ndarray, shape (KH, KW, C_in, C_out)
    db : ndarray, shape (C_out,)
    """
    _check_activation(relu, tanh)
    dz = dy  # the gradient before the activation
    if relu:
        dz = dy * (y > 0)
    elif tanh:
        dz = dy * (1 - y * y)
    return planes_backward_np(x, w, dz.transpose(0, 2, 3, 1), pad, need_dx)


def _check_activation(relu, tanh):
    if relu and tanh:
        raise ValueError("conv2d_first: relu and tanh cannot both be applied")


def conv2d_first_forward_nb(x, w, b, pad, relu, tanh=False):
    """numba twin of :func:`conv2d_first_forward_np`: per image on planes, blocks of images
    on threads."""
    _check_activation(relu, tanh)
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    oh, ow = output_size(h, wd, kh, kw, 1, pad)
    y = recycle.empty((n, co, oh * ow), x.dtype)  # kept and reused when very large
    parts = conv._parts(n, 2 * n * oh * ow * co * kh * kw * c)
    fused = tanh and x.dtype == np.float32
    with serial_blas():
        run_chunks(_forward_chunk, parts, x, planes_weights(w), b, kh, kw, pad, relu, fused, y)
    if tanh and not fused:  # float64: the separate activation's kernel
        y = tanh_forward_nb(y)
    return y.reshape(n, co, oh, ow)


@jit
def _forward_chunk(x, wq, b, kh, kw, pad, relu, tanh, y, chunks, ch):
    """Images of block ``ch`` (:func:`run_chunks`' convention) into ``y`` (N, C_out, P)."""
    n, h, wd, c = x.shape
    lo, hi = chunk_bounds(n, chunks, ch)
    work = planes_work(h, wd, c, kh, kw, pad, wq.shape[1], True, x)
    for i in range(lo, hi):
        planes_forward_image(x[i], wq, b, kh, kw, pad, relu, True, work, y[i])
        if tanh:  # the image's output is still in cache
            tanh_inplace(y[i].reshape(-1))


def conv2d_first_backward_nb(x, w, y, dy, pad, relu, need_dx, tanh=False):
    """numba twin of :func:`conv2d_first_backward_np`: per image on planes, blocks of images
    on threads, each summing its own partial gradients, added up in a fixed order."""
    _check_activation(relu, tanh)
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    k = kh * kw * c
    dx = np.zeros((n if need_dx else 0, h, wd, c), dtype=x.dtype)
    parts = conv._parts(n, 4 * y.size * k)
    dwq = np.zeros((parts, k, co), dtype=x.dtype)
    db = np.zeros((parts, co), dtype=x.dtype)
    y3, dy3 = y.reshape(n, co, -1), np.ascontiguousarray(dy).reshape(n, co, -1)
    with serial_blas():
        run_chunks(_backward_chunk, parts, x, planes_weights(w), y3, dy3, kh, kw, pad, relu,
                   tanh, need_dx, dwq, db, dx)  # fmt: skip
    dw = dwq.sum(axis=0).reshape(c, kh, kw, co).transpose(1, 2, 0, 3)
    return dx, np.ascontiguousarray(dw), db.sum(axis=0)


@jit
def _backward_chunk(x, wq, y, dy, kh, kw, pad, relu, tanh, need_dx, dwq, db, dx, chunks, ch):
    """The images of block ``ch``: adds into ``dwq[ch]`` and ``db[ch]``, writes ``dx``."""
    n, h, wd, c = x.shape
    co, p = dy.shape[1], dy.shape[2]
    lo, hi = chunk_bounds(n, chunks, ch)
    work = planes_work(h, wd, c, kh, kw, pad, co, True, x)
    dz = np.empty((co, p), dtype=x.dtype)
    one, zero = dz.dtype.type(1), dz.dtype.type(0)
    acc_w, acc_b = dwq[ch], db[ch]
    for i in range(lo, hi):
        for o in range(co):
            g, out, src = dz[o], y[i, o], dy[i, o]
            total = zero
            if tanh:
                for r in range(p):  # dy · (1 − y²), as elementwise.tanh_backward
                    v = src[r] * (one - out[r] * out[r])
                    g[r] = v
                    total += v
            else:
                for r in range(p):  # times 1 or 0, as conv._relu_grad: NaN stays NaN
                    v = src[r] * (one if (out[r] > 0 or not relu) else zero)
                    g[r] = v
                    total += v
            acc_b[o] += total
        dxi = dx[i] if need_dx else x[i]  # (x[i] is not written without need_dx)
        planes_backward_image(x[i], wq, dz, kh, kw, pad, need_dx, True, work, acc_w, dxi)


def conv2d_first_forward_st(x, w, b, pad, relu, tanh=False):
    """Staged twin (the numpy BLAS path): the channels-last staged convolution
    (:func:`fastdl.kernels.conv.conv2d_forward_st`, groups of images), then one transposing
    copy and the separate activation's tanh kernel."""
    _check_activation(relu, tanh)
    y = conv.conv2d_forward_st(x, w, b, 1, pad, relu)
    y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))
    return tanh_forward_nb(y) if tanh else y


def conv2d_first_backward_st(x, w, y, dy, pad, relu, need_dx, tanh=False):
    """Staged twin (the numpy BLAS path): the channels-last staged backward pass on
    transposed copies of ``y`` and the gradient before the activation."""
    _check_activation(relu, tanh)
    if tanh:
        dy = tanh_backward_nb(y, dy)
    nhwc = (0, 2, 3, 1)
    y, dy = np.ascontiguousarray(y.transpose(nhwc)), np.ascontiguousarray(dy.transpose(nhwc))
    return conv.conv2d_backward_st(x, w, y, dy, 1, pad, relu, need_dx)


conv2d_first_forward = pair(
    conv2d_first_forward_np, conv2d_first_forward_nb, conv2d_first_forward_st
)
conv2d_first_backward = pair(
    conv2d_first_backward_np, conv2d_first_backward_nb, conv2d_first_backward_st
)
