"""Backward through a convolution with ReLU and the max-pooling after it, in one pass.

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

from fastdl.kernels._jit import pair
from fastdl.kernels.conv import _parts, backward_images, conv2d_backward_np, conv2d_backward_st
from fastdl.kernels.pool import maxpool_backward_nb, maxpool_backward_np

__all__ = ["conv_pool_backward"]


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


conv_pool_backward = pair(conv_pool_backward_np, conv_pool_backward_nb, conv_pool_backward_st)
