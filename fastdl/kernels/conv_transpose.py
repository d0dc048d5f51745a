"""2-D transposed convolution, channels-last: forward (with bias) and backward.

Notation
--------
N            images in the batch
H, W         input height and width
C_in, C_out  input and output channels
KH, KW       kernel height and width
S            stride, the same along both axes
PT, PB, PL, PR
             rows and columns cropped from the top, bottom, left and right of the full
             output, ``(H - 1)·S + KH`` by ``(W - 1)·S + KW`` (``pad = (PT, PB, PL, PR)``);
             they are the zero padding of the convolution this one is the transpose of
OPH, OPW     output padding: rows added at the bottom, columns at the right
             (``output_padding = (OPH, OPW)``, each smaller than S)
OH, OW       output height and width::

    OH = (H - 1)·S - PT - PB + KH + OPH
    OW = (W - 1)·S - PL - PR + KW + OPW

PyTorch's ``ConvTranspose2d(padding=P, output_padding=OP)`` is ``PT = PB = P`` and
``OPH = OP`` (and the same along the width). K = KH·KW·C_out.

What it computes
----------------
Every input pixel scatters a copy of the kernel, scaled by its value, onto the output: input
pixel ``(u, v)`` lands with its top-left tap on output pixel ``(u·S - PT, v·S - PL)``, and
the copies add up where they overlap::

    y[n, u·S + i - PT, v·S + j - PL, o] += x[n, u, v, c] · w[i, j, o, c]

then ``y += b``; taps that land outside the ``OH × OW`` output are dropped. Written as
matrices this is ``col2im(x · Wᵀ)``: one ``(H·W, C_in) @ (C_in, K)`` product per image gives
every pixel's scaled kernel as one row of a column matrix, and col2im adds the rows onto the
output. That is exactly the input gradient of a convolution (:mod:`fastdl.kernels.conv`)
with the same weights, stride and padding, applied to an ``OH × OW`` image — hence the name:
the convolution maps ``OH × OW`` to ``H × W``, and this operation is its transpose (adjoint),
mapping ``H × W`` back to ``OH × OW`` (the output padding makes the sizes meet when the
convolution dropped the last rows that did not fill a window). So the two share their code:

- forward: the convolution's input gradient, ``col2im(x · Wᵀ)``, plus the bias;
- input gradient: a plain convolution of ``dy`` with ``W`` (no bias);
- weight gradient: the convolution's weight gradient with the roles swapped — ``dy`` is the
  image whose patches are taken and ``x`` the gradient they are multiplied with;
- bias gradient: ``Σ dy`` over ``N, OH, OW``.

Layout
------
``x`` is ``(N, H, W, C_in)``, ``y`` is ``(N, OH, OW, C_out)``, and the weights are
``(KH, KW, C_out, C_in)``: the layout of :mod:`fastdl.kernels.conv` for the convolution from
C_out to C_in channels that this is the transpose of, so they go to its kernels unchanged.
The operation (:mod:`fastdl.ops.conv_transpose`) converts from and to the public NCHW and
PyTorch's ``(C_in, C_out, KH, KW)``.

The numba twins split the batch into one block of images per thread; per image, the forward
pass multiplies with a single-threaded GEMM, adds the rows back with
:func:`~fastdl.kernels.im2col.col2im_image` and the bias while the image is in cache. The
backward pass calls the convolution's own compiled kernels (``conv2d_forward`` for ``dx``,
``conv2d_backward`` for ``dW``, whose scatter-AXPYs pay when ``x`` is mostly zeros); each
takes the patches of ``dy`` itself, where the NumPy twin takes them once for both products.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels._blas import gemm, serial_blas
from fastdl.kernels._jit import jit, pair
from fastdl.kernels._threads import chunk_bounds, run_chunks
from fastdl.kernels.conv import (
    _bias_relu,
    _parts,
    _staged_groups,
    conv2d_backward_nb,
    conv2d_backward_st,
    conv2d_forward_nb,
    conv2d_forward_st,
)
from fastdl.kernels.im2col import col2im_image, col2im_np, im2col_np

__all__ = ["conv_transpose2d_forward", "conv_transpose2d_backward", "transposed_output_size"]


def transposed_output_size(
    h: int, w: int, kh: int, kw: int, stride: int, pad: tuple, output_padding: tuple
) -> tuple[int, int]:
    """``(OH, OW)`` for an ``h × w`` input, a ``kh × kw`` kernel, ``stride``, ``pad`` and
    ``output_padding`` (may be < 1: callers check)."""
    pt, pb, pl, pr = pad
    oph, opw = output_padding
    return (h - 1) * stride - pt - pb + kh + oph, (w - 1) * stride - pl - pr + kw + opw


def conv_transpose2d_forward_np(x, w, b, stride, pad, output_padding):
    """Transposed convolution of a batch of channels-last images: one matrix product, col2im,
    bias (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in), float32 or float64, C-contiguous
    w : ndarray, shape (KH, KW, C_out, C_in), dtype of ``x``, C-contiguous
    b : ndarray, shape (C_out,), dtype of ``x``
    stride : int
        S.
    pad : tuple of 4 int
        ``(PT, PB, PL, PR)``, each >= 0.
    output_padding : tuple of 2 int
        ``(OPH, OPW)``, each < S; OH and OW must be >= 1.

    Returns
    -------
    y : ndarray, shape (N, OH, OW, C_out), dtype of ``x``, C-contiguous
    """
    n, h, wd, ci = x.shape
    kh, kw, co, _ = w.shape
    k = kh * kw * co
    oh, ow = transposed_output_size(h, wd, kh, kw, stride, pad, output_padding)
    # row h·W + w of col: input pixel (h, w)'s kernel copy, each tap's C_out numbers scaled
    col = x.reshape(n * h * wd, ci) @ w.reshape(k, ci).T  # (N·H·W, K)
    # add every copy onto the output: the convolution's col2im, on an OH × OW image
    y = np.ascontiguousarray(col2im_np(col.reshape(n, h * wd, k), oh, ow, kh, kw, stride, pad))
    y += b
    return y


def conv_transpose2d_backward_np(x, w, dy, stride, pad, need_dx):
    """Gradients of :func:`conv_transpose2d_forward` for input, weights and bias (NumPy twin).

    Both products read the patches of ``dy``, ``im2col(dy)`` ``(N·H·W, K)``: the input
    gradient is the convolution of ``dy`` with the weights, ``im2col(dy) @ W``, and the weight
    gradient pairs each patch with the input pixel whose kernel copy it was,
    ``im2col(dy)ᵀ @ x``.

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in), C-contiguous
        The forward input.
    w : ndarray, shape (KH, KW, C_out, C_in), C-contiguous
    dy : ndarray, shape (N, OH, OW, C_out), C-contiguous
        Gradient of the loss with respect to the output ``y``.
    stride, pad
        As given to the forward pass (the output padding is in ``dy``'s shape).
    need_dx : bool
        False skips the input gradient (a network's first layer): ``dx`` is then empty.

    Returns
    -------
    dx : ndarray, shape (N, H, W, C_in), or (0, H, W, C_in) when ``need_dx`` is false
    dw : ndarray, shape (KH, KW, C_out, C_in)
    db : ndarray, shape (C_out,)
        All of the dtype of ``x``.
    """
    n, h, wd, ci = x.shape
    kh, kw, co, _ = w.shape
    k = kh * kw * co
    db = dy.reshape(-1, co).sum(axis=0)
    col = im2col_np(dy, kh, kw, stride, pad).reshape(n * h * wd, k)  # H·W patches per image
    dw = (x.reshape(-1, ci).T @ col).T.reshape(w.shape)  # (K, C_in)
    if not need_dx:
        return np.zeros((0, h, wd, ci), dtype=x.dtype), dw, db
    dx = (col @ w.reshape(k, ci)).reshape(n, h, wd, ci)
    return dx, dw, db


def conv_transpose2d_forward_nb(x, w, b, stride, pad, output_padding):
    """numba twin of :func:`conv_transpose2d_forward_np`: same contract, per-image fused loops."""
    n, h, wd, ci = x.shape
    kh, kw, co, _ = w.shape
    oh, ow = transposed_output_size(h, wd, kh, kw, stride, pad, output_padding)
    y = np.empty((n, oh, ow, co), dtype=x.dtype)  # numpy's allocator: huge pages when large
    parts = _parts(n, 2 * x.size * kh * kw * co)
    with serial_blas():
        if parts == 1:
            _forward_serial(x, w, b, stride, pad[0], pad[2], y)
        else:
            run_chunks(_forward_chunk, parts, x, w, b, stride, pad[0], pad[2], y)
    return y


@jit
def _scatter_image(col, kh, kw, stride, pt, pl, h, wd, b, y):
    """``y`` (OH, OW, C_out) = the rows of ``col`` (H·W, K) added onto it, plus ``b``."""
    oh, ow, co = y.shape
    y[:] = 0
    col2im_image(col, kh, kw, stride, pt, pl, h, wd, y)
    _bias_relu(y.reshape(oh * ow, co), b, False)


@jit
def _forward_images(x, w, b, stride, pt, pl, lo, hi, y):
    """Images ``lo .. hi - 1`` of the forward pass into ``y`` (N, OH, OW, C_out)."""
    h, wd, ci = x.shape[1:]
    kh, kw, co, _ = w.shape
    k = kh * kw * co
    w2 = w.reshape(k, ci)
    col = np.empty((h * wd, k), dtype=x.dtype)
    for i in range(lo, hi):
        gemm(False, True, 1.0, x[i].reshape(h * wd, ci), w2, 0.0, col)  # x_i · Wᵀ
        _scatter_image(col, kh, kw, stride, pt, pl, h, wd, b, y[i])


@jit
def _forward_chunk(x, w, b, stride, pt, pl, y, chunks, ch):
    """Block ``ch`` of ``chunks`` (:func:`run_chunks`' convention): its own images only."""
    lo, hi = chunk_bounds(x.shape[0], chunks, ch)
    _forward_images(x, w, b, stride, pt, pl, lo, hi, y)


@jit
def _forward_serial(x, w, b, stride, pt, pl, y):
    _forward_images(x, w, b, stride, pt, pl, 0, x.shape[0], y)


@jit
def _channel_sums(dy):
    """``Σ dy[r, o]`` over the rows ``r`` of ``dy`` (R, C_out), in row order: the bias
    gradient."""
    rows, co = dy.shape
    db = np.zeros(co, dtype=dy.dtype)
    for r in range(rows):
        for o in range(co):
            db[o] += dy[r, o]
    return db


def conv_transpose2d_backward_nb(x, w, dy, stride, pad, need_dx):
    """numba twin of :func:`conv_transpose2d_backward_np`: the convolution's compiled kernels.

    The input gradient is :func:`~fastdl.kernels.conv.conv2d_forward` of ``dy`` (zero bias);
    the weight gradient is :func:`~fastdl.kernels.conv.conv2d_backward`'s for the input
    ``dy`` and the output gradient ``x`` (without its input gradient, and with its bias
    gradient, ``Σ x``, unused). Both run blocks of images on threads.
    """
    return _backward(conv2d_forward_nb, conv2d_backward_nb, x, w, dy, stride, pad, need_dx)


def _backward(conv_forward, conv_backward, x, w, dy, stride, pad, need_dx):
    """The backward pass from one pair of the convolution's twins (numba or staged)."""
    n, h, wd, ci = x.shape
    co = w.shape[2]
    # conv_backward's "y" (the convolution's output, read only for a ReLU) is any array of
    # its gradient's shape: x itself
    _, dw, _ = conv_backward(dy, w, x, x, stride, pad, False, False)
    db = _channel_sums(dy.reshape(-1, co))
    if not need_dx:
        return np.zeros((0, h, wd, ci), dtype=x.dtype), dw, db
    dx = conv_forward(dy, w, np.zeros(ci, dtype=x.dtype), stride, pad, False)
    return dx, dw, db


@jit
def _scatter_group(col, kh, kw, stride, pt, pl, h, wd, b, i0, i1, y):
    """Images ``i0 .. i1 - 1``: the rows of ``col`` ``((i1 - i0)·H·W, K)`` onto ``y``."""
    p = h * wd
    for i in range(i0, i1):
        g = i - i0
        _scatter_image(col[g * p : (g + 1) * p], kh, kw, stride, pt, pl, h, wd, b, y[i])


def conv_transpose2d_forward_st(x, w, b, stride, pad, output_padding):
    """Staged twin of :func:`conv_transpose2d_forward_np`: per group of images, one product by
    numpy's ``matmul``, then compiled col2im and bias; blocks of images on threads."""
    n, h, wd, ci = x.shape
    kh, kw, co, _ = w.shape
    oh, ow = transposed_output_size(h, wd, kh, kw, stride, pad, output_padding)
    p, k = h * wd, kh * kw * co
    y = np.empty((n, oh, ow, co), dtype=x.dtype)
    x2 = x.reshape(n * p, ci)
    w2t = w.reshape(k, ci).T  # (C_in, K)
    bounds, group = _staged_groups(n, p, k, x.itemsize, _parts(n, 2 * x.size * k))

    def block(chunks, t):
        col = np.empty((group * p, k), dtype=x.dtype)
        for i0 in range(bounds[t], bounds[t + 1], group):
            i1 = min(i0 + group, bounds[t + 1])
            np.matmul(x2[i0 * p : i1 * p], w2t, out=col[: (i1 - i0) * p])
            _scatter_group(col, kh, kw, stride, pad[0], pad[2], h, wd, b, i0, i1, y)

    with serial_blas():
        run_chunks(block, len(bounds) - 1)
    return y


def conv_transpose2d_backward_st(x, w, dy, stride, pad, need_dx):
    """Staged twin of :func:`conv_transpose2d_backward_np`: the convolution's staged twins."""
    return _backward(conv2d_forward_st, conv2d_backward_st, x, w, dy, stride, pad, need_dx)


conv_transpose2d_forward = pair(
    conv_transpose2d_forward_np, conv_transpose2d_forward_nb, conv_transpose2d_forward_st
)
conv_transpose2d_backward = pair(
    conv_transpose2d_backward_np, conv_transpose2d_backward_nb, conv_transpose2d_backward_st
)
