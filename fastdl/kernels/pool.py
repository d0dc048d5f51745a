"""2-D max-pooling from channels-last images to NCHW: forward (with each window's argmax), backward.

Notation
--------
N      images in the batch
H, W   input height and width
C      channels
F      window size (F × F)
S      stride, the same along both axes
OH, OW output height and width, without padding (windows that do not fit are dropped, as
       PyTorch's ``MaxPool2d`` and Keras's ``"valid"`` do)::

    OH = (H - F) // S + 1
    OW = (W - F) // S + 1

Layout
------
``x`` is channels-last ``(N, H, W, C)``, as the convolution kernels produce it; ``y`` is
NCHW ``(N, C, OH, OW)``, C-contiguous: a CNN usually flattens after its last pooling, and
PyTorch-compatible flattening wants NCHW order, so the pooling kernel (which has each image
in cache) writes it in that order and ``Flatten`` needs no copy. The forward pass also
returns ``idx``, of ``y``'s shape: ``idx[n, c, oh, ow] = h·W + w`` is the pixel holding the
maximum of that window (the first one in row-major window order if several are equal). The
backward pass takes ``dy`` NCHW like ``y`` and sends each output gradient to that pixel
only, adding where windows overlap (S < F); ``dx`` is channels-last like ``x``. An
inference pass, which has no backward pass, asks for no ``idx`` (``need_idx=False``): the
index array is as large as ``y``, and writing it took about half of the forward pass's time
(33 against 13–16 ms for the reference CNN's 1,000 images of 24 × 24 × 64).
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels import _recycle as recycle
from fastdl.kernels._jit import jit, pair
from fastdl.kernels._threads import chunk_bounds, n_chunks, run_chunks

__all__ = ["maxpool_forward", "maxpool_backward", "pool_output_size", "SERIAL_MAX_SIZE"]

#: Inputs with fewer elements are pooled on one thread, without waking the thread pool.
SERIAL_MAX_SIZE = 100_000


def pool_output_size(h: int, w: int, size: int, stride: int) -> tuple[int, int]:
    """``(OH, OW)`` for an ``h × w`` image, an F × F window ``size`` and ``stride``."""
    return (h - size) // stride + 1, (w - size) // stride + 1


def maxpool_forward_np(x, size, stride, need_idx=True):
    """Maximum of every F × F window, and where it is (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C), float32 or float64, C-contiguous
    size : int
        F, the window's height and width (F <= H, F <= W).
    stride : int
        S.
    need_idx : bool, default True
        Find where the maxima are (for the backward pass).

    Returns
    -------
    y : ndarray, shape (N, C, OH, OW), dtype of ``x``, C-contiguous
    idx : ndarray, shape (N, C, OH, OW), int32, C-contiguous; None without ``need_idx``
        Flat pixel index ``h·W + w`` of each window's maximum.
    """
    n, h, w, c = x.shape
    oh, ow = pool_output_size(h, w, size, stride)
    y = arg = None
    for i in range(size):
        for j in range(size):
            # tap (i, j) of every window: one strided slice of the image
            tap = x[
                :, i : i + (oh - 1) * stride + 1 : stride, j : j + (ow - 1) * stride + 1 : stride
            ]
            if y is None:
                y, arg = tap.copy(), np.zeros(tap.shape, dtype=np.int32)
            else:  # arg: tap number i·F + j of the maximum so far (the first one if tied)
                if need_idx:
                    arg = np.where(tap > y, np.int32(i * size + j), arg)
                y = np.maximum(y, tap)
    y = np.ascontiguousarray(y.transpose(0, 3, 1, 2))  # (N, OH, OW, C) → NCHW
    if not need_idx:
        return y, None
    rows = np.arange(oh, dtype=np.int32).reshape(1, oh, 1, 1) * stride + arg // size
    cols = np.arange(ow, dtype=np.int32).reshape(1, 1, ow, 1) * stride + arg % size
    idx = rows * w + cols
    return y, np.ascontiguousarray(idx.transpose(0, 3, 1, 2))


def maxpool_backward_np(dy, idx, h, w, size, stride):
    """Send each window's gradient to the pixel that held its maximum (NumPy twin).

    Parameters
    ----------
    dy : ndarray, shape (N, C, OH, OW), float32 or float64, C-contiguous
        Gradient of the loss with respect to the pooled output.
    idx : ndarray, shape (N, C, OH, OW), int32
        From :func:`maxpool_forward`.
    h, w : int
        Input height H and width W.
    size, stride : int
        F and S, as given to the forward pass.

    Returns
    -------
    dx : ndarray, shape (N, H, W, C), dtype of ``dy``
        Sums where windows overlap.
    """
    dy, idx = dy.transpose(0, 2, 3, 1), idx.transpose(0, 2, 3, 1)  # channels-last views
    n, oh, ow, c = dy.shape
    # offset (ti, tj) of each window's maximum from the window's top-left corner
    ti = idx // w - np.arange(oh).reshape(1, oh, 1, 1) * stride
    tj = idx % w - np.arange(ow).reshape(1, 1, ow, 1) * stride
    dx = np.zeros((n, h, w, c), dtype=dy.dtype)
    for i in range(size):
        for j in range(size):
            # windows whose maximum is at tap (i, j) send their gradient to that pixel
            rows = slice(i, i + (oh - 1) * stride + 1, stride)
            cols = slice(j, j + (ow - 1) * stride + 1, stride)
            dx[:, rows, cols] += np.where((ti == i) & (tj == j), dy, 0)
    return dx


def maxpool_forward_nb(x, size, stride, need_idx=True):
    """numba twin of :func:`maxpool_forward_np`: same contract, one block of images per thread.

    Each image is pooled channels-last into a small buffer (vectorised over channels), then
    written out in NCHW order while it is still in cache. The outputs come from
    :func:`fastdl.kernels._recycle.empty` (numpy's allocator, which asks for huge pages for
    large arrays; the very large ones kept and reused from pass to pass).
    """
    n, h, w, c = x.shape
    oh, ow = pool_output_size(h, w, size, stride)
    y = recycle.empty((n, c, oh * ow), x.dtype)  # kept and reused when very large
    idx = recycle.empty((n if need_idx else 0, c, oh * ow), np.int32)
    if x.size < SERIAL_MAX_SIZE:
        _pool_images(x, size, stride, 0, n, y, idx)
    else:
        _maxpool_forward(x, size, stride, y, idx)
    return y.reshape(n, c, oh, ow), (idx.reshape(n, c, oh, ow) if need_idx else None)


@jit
def _pool_chunk(x, size, stride, y, idx, chunks, ch):
    """Block ``ch`` of ``chunks`` blocks of images (:func:`run_chunks`' convention)."""
    lo, hi = chunk_bounds(x.shape[0], chunks, ch)
    _pool_images(x, size, stride, lo, hi, y, idx)


def _maxpool_forward(x, size, stride, y, idx):
    """The forward pass on one block of images per thread."""
    run_chunks(_pool_chunk, n_chunks(x.shape[0]), x, size, stride, y, idx)


@jit
def _pool_images(x, size, stride, lo, hi, y, idx):
    """Images ``lo .. hi - 1`` of the forward pass; no indices when ``idx`` is empty."""
    n, h, w, c = x.shape
    oh = (h - size) // stride + 1
    ow = (w - size) // stride + 1
    need_idx = idx.shape[0] > 0
    yb = np.empty((oh * ow, c), dtype=x.dtype)
    ib = np.empty((oh * ow, c), dtype=np.int32)
    for b in range(lo, hi):
        xb = x[b]
        for oy in range(oh):
            for ox in range(ow):
                yo = yb[oy * ow + ox]
                io = ib[oy * ow + ox]
                y0 = oy * stride
                x0 = ox * stride
                src = xb[y0, x0]
                for q in range(c):
                    yo[q] = src[q]
                    io[q] = y0 * w + x0
                for i in range(size):
                    for j in range(size):
                        if i == 0 and j == 0:
                            continue
                        src = xb[y0 + i, x0 + j]
                        pos = (y0 + i) * w + x0 + j
                        for q in range(c):  # as the twin's np.maximum and strict ">",
                            v = src[q]  # in selects rather than branches, which vectorise:
                            cur = yo[q]  # a larger value moves the place; a tie takes the
                            if need_idx:  # later value (the sign of a zero); NaN stays
                                io[q] = pos if v > cur else io[q]
                            yo[q] = v if (v >= cur or v != v) else cur
        for q in range(c):
            for r in range(oh * ow):
                y[b, q, r] = yb[r, q]
        if need_idx:
            for q in range(c):
                for r in range(oh * ow):
                    idx[b, q, r] = ib[r, q]


def maxpool_backward_nb(dy, idx, h, w, size, stride):
    """numba twin of :func:`maxpool_backward_np`: same contract, a block of images per thread."""
    n, c = dy.shape[:2]
    dx = np.zeros((n, h * w, c), dtype=dy.dtype)
    if dx.size < SERIAL_MAX_SIZE:
        _unpool_images(dy, idx, 0, n, dx)
    else:
        _maxpool_backward(dy, idx, dx)
    return dx.reshape(n, h, w, c)


@jit
def _unpool_chunk(dy, idx, dx, chunks, ch):
    """Block ``ch`` of ``chunks`` blocks of images (:func:`run_chunks`' convention)."""
    lo, hi = chunk_bounds(dy.shape[0], chunks, ch)
    _unpool_images(dy, idx, lo, hi, dx)


def _maxpool_backward(dy, idx, dx):
    """The backward pass on one block of images per thread."""
    run_chunks(_unpool_chunk, n_chunks(dy.shape[0]), dy, idx, dx)


@jit
def _unpool_images(dy, idx, lo, hi, dx):
    """Images ``lo .. hi - 1`` of the backward pass."""
    n, c, oh, ow = dy.shape
    dy3 = dy.reshape(n, c, oh * ow)
    idx3 = idx.reshape(n, c, oh * ow)
    for b in range(lo, hi):
        dxb = dx[b]
        for q in range(c):
            g = dy3[b, q]
            io = idx3[b, q]
            for r in range(oh * ow):
                dxb[io[r], q] += g[r]


maxpool_forward = pair(maxpool_forward_np, maxpool_forward_nb)
maxpool_backward = pair(maxpool_backward_np, maxpool_backward_nb)
