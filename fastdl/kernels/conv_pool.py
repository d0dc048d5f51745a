"""A convolution with ReLU and the max-pooling after it, in one pass: backward, and forward
for inference.

Differentiated one operation at a time, as in the book, a convolution with ReLU followed by
max-pooling (the reference CNN's conv2 → pool) takes two steps: the pool sends each window's
gradient to the pixel that held its maximum, which makes a gradient of the convolution's
whole output, ``(N, OH, OW, C_out)`` and three quarters zeros for 2 × 2 windows; then the
convolution multiplies it by the ReLU's mask ``y > 0`` and goes on. The NumPy twin does
exactly that, with the two twins. The compiled twin does both per image: it scatters image
``i``'s pooled gradient into a ``(P, C_out)`` buffer, masks it, and hands it to the
convolution's per-image backward pass (:mod:`fastdl.kernels.conv`), so the dense gradient
of the whole batch is never made (9.4 MB for the reference CNN at batch 64, the largest
array of its backward pass). The sums are the same, in the same order: the result is the
same to the bit as the two compiled twins in turn.

An inference pass runs the two forward passes together (:func:`conv_pool_forward`): a
convolution by Winograd max-pools each group of images while their output is in cache,
where the pool on its own reads the whole output back from memory (147 MB for the
reference CNN's 1,000 images).

Shapes, in the notation of :mod:`fastdl.kernels.conv` and :mod:`fastdl.kernels.pool`
(F the window, S_p its stride; the pooled output is PH × PW)::

    x    (N, H, W, C_in)        the convolution's input, channels-last
    w    (KH, KW, C_in, C_out)
    y    (N, OH, OW, C_out)     the convolution's output, after the ReLU
    dyp  (N, C_out, PH, PW)     gradient of the pooled output, NCHW like the pool's output
    idx  (N, C_out, PH, PW)     where each window's maximum is, from ``maxpool_forward``
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels import _recycle as recycle
from fastdl.kernels._jit import pair
from fastdl.kernels.conv import (
    _parts,
    backward_images,
    conv2d_backward_np,
    conv2d_backward_st,
    conv2d_forward_np,
    conv2d_forward_st,
    forward_images,
)
from fastdl.kernels.im2col import output_size
from fastdl.kernels.pool import (
    maxpool_backward_nb,
    maxpool_backward_np,
    maxpool_forward_nb,
    maxpool_forward_np,
    pool_output_size,
)

__all__ = ["conv_pool_forward", "conv_pool_backward"]


def conv_pool_forward_np(x, w, b, stride, pad, size, pool_stride):
    """A convolution with ReLU and the max-pooling of its output, for an inference pass
    (no argmax indices): the two twins in turn (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in), C-contiguous
    w : ndarray, shape (KH, KW, C_in, C_out)
    b : ndarray, shape (C_out,)
    stride, pad
        The convolution's, as :func:`~fastdl.kernels.conv.conv2d_forward` takes them.
    size, pool_stride : int
        The pool's window F and stride.

    Returns
    -------
    y : ndarray, shape (N, OH, OW, C_out)
        The convolution's output, after the ReLU.
    yp : ndarray, shape (N, C_out, PH, PW), C-contiguous
        Its max-pool, as :func:`~fastdl.kernels.pool.maxpool_forward` gives it.
    """
    y = conv2d_forward_np(x, w, b, stride, pad, True)
    return y, maxpool_forward_np(y, size, pool_stride, need_idx=False)[0]


def conv_pool_forward_nb(x, w, b, stride, pad, size, pool_stride):
    """numba twin of :func:`conv_pool_forward_np`: a convolution by Winograd pools each
    group of images while their output is in cache (the reference CNN's conv2 and pool of
    an inference pass); the others are pooled after. The same bits as the two compiled
    twins in turn."""
    n, h, wd, _ = x.shape
    kh, kw, _, co = w.shape
    oh, ow = output_size(h, wd, kh, kw, stride, pad)
    ph, pw = pool_output_size(oh, ow, size, pool_stride)
    yp = recycle.empty((n, co, ph * pw), x.dtype)  # kept and reused when very large
    y, pooled = forward_images(x, w, b, stride, pad, True, (size, pool_stride), yp)
    if not pooled.any():  # not by Winograd: the pool after (and ``yp`` free for it to take)
        del yp
        return y, maxpool_forward_nb(y, size, pool_stride, need_idx=False)[0]
    for i in np.flatnonzero(~pooled):  # the images summed directly
        one = maxpool_forward_nb(y[i : i + 1], size, pool_stride, need_idx=False)[0]
        yp[i] = one.reshape(co, ph * pw)
    return y, yp.reshape(n, co, ph, pw)


def conv_pool_backward_np(x, w, y, dyp, idx, stride, pad, size, pool_stride, need_dx):
    """Gradients of a convolution with ReLU (:func:`~fastdl.kernels.conv.conv2d_forward` with
    ``relu=True``) from the gradient of the max-pooling of its output (NumPy twin).

    Parameters
    ----------
    x, w, y
        The convolution's input, weights and output (see the module's shapes).
    dyp : ndarray, shape (N, C_out, PH, PW), C-contiguous
        Gradient of the loss with respect to the pooled output.
    idx : ndarray, shape (N, C_out, PH, PW), int32
        From :func:`~fastdl.kernels.pool.maxpool_forward` on ``y``.
    stride, pad
        The convolution's, as given to its forward pass.
    size, pool_stride : int
        The pool's window F and stride.
    need_dx : bool
        False skips the input gradient.

    Returns
    -------
    dx, dw, db
        As :func:`~fastdl.kernels.conv.conv2d_backward` returns them.
    """
    oh, ow = y.shape[1:3]
    dy = maxpool_backward_np(dyp, idx, oh, ow, size, pool_stride)  # the pool's gradient
    return conv2d_backward_np(x, w, y, dy, stride, pad, True, need_dx)  # then the conv's


def conv_pool_backward_nb(x, w, y, dyp, idx, stride, pad, size, pool_stride, need_dx):
    """numba twin of :func:`conv_pool_backward_np`: same contract, one image at a time."""
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    dx = np.zeros((n if need_dx else 0, h, wd, c), dtype=x.dtype)
    parts = _parts(n, 4 * y.size * kh * kw * c)
    grad = (y.reshape(n, -1, co), dyp.reshape(n, co, -1), idx.reshape(n, co, -1), True)
    return (dx, *backward_images(x, w, grad, stride, pad, need_dx, parts, dx))


def conv_pool_backward_st(x, w, y, dyp, idx, stride, pad, size, pool_stride, need_dx):
    """Staged twin: the pool's compiled backward pass, then the convolution's staged one."""
    oh, ow = y.shape[1:3]
    dy = maxpool_backward_nb(dyp, idx, oh, ow, size, pool_stride)
    return conv2d_backward_st(x, w, y, dy, stride, pad, True, need_dx)


def conv_pool_forward_st(x, w, b, stride, pad, size, pool_stride):
    """Staged twin: the convolution's staged forward pass, then the pool's compiled one."""
    y = conv2d_forward_st(x, w, b, stride, pad, True)
    return y, maxpool_forward_nb(y, size, pool_stride, need_idx=False)[0]


conv_pool_forward = pair(conv_pool_forward_np, conv_pool_forward_nb, conv_pool_forward_st)
conv_pool_backward = pair(conv_pool_backward_np, conv_pool_backward_nb, conv_pool_backward_st)
