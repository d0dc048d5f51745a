"""im2col and col2im, channels-last: image patches as matrix rows, and the adjoint scatter back.

Notation
--------
N      images in the batch
H, W   image height and width
C      channels
KH, KW kernel (window) height and width
S      stride, the same along both axes
PT, PB, PL, PR
       zero padding at the top, bottom, left and right (``pad = (PT, PB, PL, PR)``)
OH, OW output height and width::

    OH = (H + PT + PB - KH) // S + 1
    OW = (W + PL + PR - KW) // S + 1

P = OH·OW output positions; K = KH·KW·C numbers in one patch.

Layout
------
Images are channels-last ``(N, H, W, C)`` (the ops convert from the public NCHW). A column
matrix holds one row per output position and, within a row, the patch in ``(kh, kw, c)``
order: row ``oh·OW + ow``, column ``(i·KW + j)·C + c`` holds ``x[n, oh·S + i - PT,
ow·S + j - PL, c]`` (0 outside the image). With channels last, each row is KH·KW contiguous
copies of C numbers, and ``col @ W`` with ``W`` of shape ``(K, C_out)`` is already
channels-last.

``col2im`` is the adjoint of ``im2col``: it adds every column entry back onto the pixel it
came from (pixels in several patches receive the sum), which is the input gradient of
``im2col``.

Two versions of each: for a batch in NumPy (:func:`im2col_np`, :func:`col2im_np`, used by
the convolution's NumPy twin), and compiled for one image into a given matrix
(:func:`im2col_image`, :func:`col2im_image`, used inside the convolution's numba twins, one
image at a time so the matrix stays in cache).
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels._jit import jit

__all__ = ["im2col_np", "col2im_np", "im2col_image", "col2im_image", "output_size"]


def output_size(h: int, w: int, kh: int, kw: int, stride: int, pad: tuple) -> tuple[int, int]:
    """``(OH, OW)`` for an ``h × w`` image, a ``kh × kw`` window, ``stride`` and ``pad``."""
    pt, pb, pl, pr = pad
    return (h + pt + pb - kh) // stride + 1, (w + pl + pr - kw) // stride + 1


def im2col_np(x, kh, kw, stride, pad):
    """Gather every ``KH × KW`` patch of ``x`` into one row of a matrix (NumPy).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C), float32 or float64, C-contiguous
    kh, kw : int
        Window height KH and width KW.
    stride : int
        S, the step between windows along both axes.
    pad : tuple of 4 int
        ``(PT, PB, PL, PR)`` zeros added around each image.

    Returns
    -------
    col : ndarray, shape (N, OH·OW, KH·KW·C), dtype of ``x``
        ``col[n, oh·OW + ow, (i·KW + j)·C + c] = x_padded[n, oh·S + i, ow·S + j, c]``.
    """
    n, h, w, c = x.shape
    pt, pb, pl, pr = pad
    oh, ow = output_size(h, w, kh, kw, stride, pad)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    # windows[n, oh, ow, c, i, j] = xp[n, oh·S + i, ow·S + j, c]: tap (i, j) of every window
    # is the strided grid xp[:, i::S, j::S] that col2im_np adds back onto
    windows = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(1, 2))
    windows = windows[:, : (oh - 1) * stride + 1 : stride, : (ow - 1) * stride + 1 : stride]
    # reorder to (n, oh, ow, i, j, c) so that each row reads (kh, kw, c); one copy
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n, oh * ow, kh * kw * c)


def col2im_np(col, h, w, kh, kw, stride, pad):
    """Add every row of ``col`` back onto the patch it came from: the adjoint of im2col (NumPy).

    Tap ``(i, j)`` of every window is one strided grid of pixels (as :func:`im2col_np`
    reads it); each tap's column entries are added back onto its grid, so pixels in several
    patches receive the sum. (im2col is written as one copy of a windows view rather than
    this loop of copies: the loop took twice as long with 32 channels.)

    Parameters
    ----------
    col : ndarray, shape (N, OH·OW, KH·KW·C), float32 or float64, C-contiguous
    h, w : int
        Image height H and width W.
    kh, kw, stride, pad
        As for :func:`im2col_np`.

    Returns
    -------
    x : ndarray, shape (N, H, W, C), dtype of ``col``
        ``x[n, y, x, c]`` is the sum of every column entry that :func:`im2col_np` copied
        from pixel ``(y, x)`` of channel ``c``.
    """
    n = col.shape[0]
    c = col.shape[2] // (kh * kw)
    pt, pb, pl, pr = pad
    oh, ow = output_size(h, w, kh, kw, stride, pad)
    xp = np.zeros((n, h + pt + pb, w + pl + pr, c), dtype=col.dtype)
    patches = col.reshape(n, oh, ow, kh, kw, c)
    for i in range(kh):
        for j in range(kw):
            # tap (i, j) of every window: one strided grid of pixels
            grid = xp[
                :, i : i + (oh - 1) * stride + 1 : stride, j : j + (ow - 1) * stride + 1 : stride
            ]
            grid += patches[:, :, :, i, j]
    return xp[:, pt : pt + h, pl : pl + w]


@jit
def im2col_image(x, kh, kw, stride, pt, pl, oh, ow, col):
    """Fill ``col`` (P, K) with the patches of one image ``x`` (H, W, C); zeros outside.

    With many channels each pixel's C numbers are one vectorised copy; with few, a kernel
    row inside the image (KW·C contiguous numbers, channels last) is copied as one run —
    each the faster of the two in its case (``bench_conv``'s docstring has the timings).
    """
    if x.shape[2] >= 8:
        _im2col_pixels(x, kh, kw, stride, pt, pl, oh, ow, col)
    else:
        _im2col_runs(x, kh, kw, stride, pt, pl, oh, ow, col)


@jit
def _im2col_pixels(x, kh, kw, stride, pt, pl, oh, ow, col):
    h, w, c = x.shape
    for oy in range(oh):
        for ox in range(ow):
            row = col[oy * ow + ox]
            for i in range(kh):
                y = oy * stride + i - pt
                for j in range(kw):
                    base = (i * kw + j) * c
                    xx = ox * stride + j - pl
                    if 0 <= y < h and 0 <= xx < w:
                        src = x[y, xx]
                        for q in range(c):
                            row[base + q] = src[q]
                    else:
                        for q in range(c):
                            row[base + q] = 0


@jit
def _im2col_runs(x, kh, kw, stride, pt, pl, oh, ow, col):
    h, w, c = x.shape
    run = kw * c
    xr = x.reshape(h, w * c)
    for oy in range(oh):
        for ox in range(ow):
            row = col[oy * ow + ox]
            x0 = ox * stride - pl
            inside = x0 >= 0 and x0 + kw <= w
            for i in range(kh):
                y = oy * stride + i - pt
                base = i * run
                if y < 0 or y >= h:
                    for q in range(run):
                        row[base + q] = 0
                elif inside:
                    src = xr[y]
                    start = x0 * c
                    for q in range(run):
                        row[base + q] = src[start + q]
                else:
                    for j in range(kw):
                        xx = x0 + j
                        if 0 <= xx < w:
                            for q in range(c):
                                row[base + j * c + q] = x[y, xx, q]
                        else:
                            for q in range(c):
                                row[base + j * c + q] = 0


@jit
def col2im_image(col, kh, kw, stride, pt, pl, oh, ow, x):
    """Add ``col`` (P, K) onto one image ``x`` (H, W, C), which the caller zeroes first."""
    h, w, c = x.shape
    for oy in range(oh):
        for ox in range(ow):
            row = col[oy * ow + ox]
            for i in range(kh):
                y = oy * stride + i - pt
                if y < 0 or y >= h:
                    continue
                for j in range(kw):
                    xx = ox * stride + j - pl
                    if xx < 0 or xx >= w:
                        continue
                    base = (i * kw + j) * c
                    dst = x[y, xx]
                    for q in range(c):
                        dst[q] += row[base + q]
