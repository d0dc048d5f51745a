"""Stride-1 convolution of images with few channels: patches as shifted rows of a plane.

Notation and layout as in :mod:`fastdl.kernels.conv`: ``x`` ``(N, H, W, C_in)``, weights
``w`` ``(KH, KW, C_in, C_out)``, output ``(N, OH, OW, C_out)``, padding ``(PT, PB, PL, PR)``.

With few input channels (a first layer on grey or colour images), im2col's patch rows are
made of runs of one to three numbers, so building the patch matrix costs more than the
product (on the book's CNN, 784 × 25 patches of one channel: im2col 27 µs per image, the
GEMM 8). Stride 1 allows another patch matrix, made of long contiguous copies.

Pad each channel of the image into a plane of ``HP = H + PT + PB`` rows of
``WP = W + PL + PR`` numbers, laid end to end as one vector ``xp``. Compute the output on
the padded width too: ``OH`` rows of ``WP`` positions, the last ``WP − OW`` of each row
being positions that do not exist. On that grid, position ``t = oh·WP + ow`` reads tap
``(i, j)`` of channel ``c`` at ``xp[c, t + i·WP + j]``: for a fixed tap, all ``L = OH·WP``
positions read one contiguous slice of the plane. So the patch matrix, transposed::

    col[(c·KH + i)·KW + j, t] = xp[c, i·WP + j + t]        (K, L), K = C_in·KH·KW

is K copies of L contiguous numbers, and ``col.T @ wq`` is the output on the grid, with
``wq`` the weights as ``(K, C_out)`` in the order ``(c, i, j)``. The positions that do not
exist would read numbers from the start of the next row; ``col`` holds zeros there instead
and their outputs are dropped. Backward, the gradient on the grid is 0 at those positions
too, so::

    dwq  = col @ dz_grid                (K, C_out)
    dcol = wq @ dz_grid.T               (K, L), added back slice by slice onto the planes

The same products transposed give the output channels-first, ``wq.T @ col`` ``(C_out, L)``:
the kernels take ``first`` to write ``(C_out, P)`` per image instead of ``(P, C_out)``
(:mod:`fastdl.kernels.conv_first`, for a layer that flattens its output).

The zeros matter for NaN and infinity: were a pixel read at a dropped position, its NaN
times the 0 of the gradient there would reach ``dwq``, where the direct sum never takes
that product; likewise ``dcol`` is set to 0 at the dropped positions before it is added
back (an infinite weight times 0). So the results are the sums im2col's path makes,
NaN and infinities included, taken in the order ``(c, i, j)`` instead of ``(i, j, c)``.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels._blas import gemm
from fastdl.kernels._jit import jit

__all__ = ["planes_forward_np", "planes_backward_np", "planes_weights", "planes_work",
           "planes_forward_image", "planes_backward_image"]  # fmt: skip


def planes_weights(w: np.ndarray) -> np.ndarray:
    """``w`` ``(KH, KW, C_in, C_out)`` → ``wq`` ``(C_in·KH·KW, C_out)``, rows in ``(c, i, j)``
    order, C-contiguous."""
    kh, kw, c, co = w.shape
    return np.ascontiguousarray(w.transpose(2, 0, 1, 3)).reshape(c * kh * kw, co)


def planes_forward_np(x, w, b, pad, relu):
    """The forward pass on the padded-width grid, for a batch (NumPy; the teaching text of
    the compiled kernels below, and their oracle in the tests).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in)
    w : ndarray, shape (KH, KW, C_in, C_out)
    b : ndarray, shape (C_out,)
    pad : tuple of 4 int
        ``(PT, PB, PL, PR)``; the stride is 1.
    relu : bool

    Returns
    -------
    y : ndarray, shape (N, OH, OW, C_out)
    """
    kh, kw, _, co = w.shape
    oh, wp, ow = _grid(x.shape, kh, kw, pad)
    col = _patches_np(x, kh, kw, pad)  # (N, K, L)
    grid = col.transpose(0, 2, 1) @ planes_weights(w)  # (N, L, C_out)
    y = grid.reshape(-1, oh, wp, co)[:, :, :ow] + b  # drop the positions that do not exist
    return np.maximum(y, 0) if relu else y


def _grid(x_shape, kh, kw, pad):
    """``(OH, WP, OW)``: the grid's rows, its width and the output's width."""
    _, h, wd, _ = x_shape
    pt, pb, pl, pr = pad
    wp = wd + pl + pr
    return h + pt + pb - kh + 1, wp, wp - kw + 1


def _patches_np(x, kh, kw, pad):
    """``col`` ``(N, K, L)`` of a batch: ``col[n, (c·KH + i)·KW + j, t] = xp[n, c, i·WP + j + t]``."""
    n, h, wd, c = x.shape
    pt, pb, pl, pr = pad
    oh, wp, _ = _grid(x.shape, kh, kw, pad)
    hp, length = h + pt + pb, oh * wp  # L positions on the grid
    planes = np.zeros((n, c, hp * wp + kw), dtype=x.dtype)  # + a few zeros read past the end
    planes[:, :, : hp * wp].reshape(n, c, hp, wp)[:, :, pt : pt + h, pl : pl + wd] = x.transpose(
        0, 3, 1, 2
    )
    col = np.empty((n, c, kh, kw, length), dtype=x.dtype)
    for i in range(kh):  # one shifted slice of the planes per tap
        for j in range(kw):
            col[:, :, i, j] = planes[:, :, i * wp + j : i * wp + j + length]
    col = col.reshape(n, c * kh * kw, oh, wp)
    col[..., wp - kw + 1 :] = 0  # the positions that do not exist read nothing
    return col.reshape(n, c * kh * kw, length)


def planes_backward_np(x, w, dz, pad, need_dx):
    """Gradients on the padded-width grid, for a batch (NumPy; teaching text and oracle).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in)
    w : ndarray, shape (KH, KW, C_in, C_out)
    dz : ndarray, shape (N, OH, OW, C_out)
        Gradient of the output before any ReLU (the caller applies its mask).
    pad : tuple of 4 int
    need_dx : bool

    Returns
    -------
    dx : ndarray, shape (N, H, W, C_in), or (0, H, W, C_in) without ``need_dx``
    dw : ndarray, shape (KH, KW, C_in, C_out)
    db : ndarray, shape (C_out,)
    """
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    pt, pb, pl, pr = pad
    oh, wp, ow = _grid(x.shape, kh, kw, pad)
    length = oh * wp
    grid = np.zeros((n, oh, wp, co), dtype=x.dtype)  # 0 at the positions that do not exist
    grid[:, :, :ow] = dz
    grid = grid.reshape(n, length, co)
    col = _patches_np(x, kh, kw, pad)  # (N, K, L)
    k = c * kh * kw  # Σ over images of col @ grid, as one product
    dwq = col.transpose(1, 0, 2).reshape(k, n * length) @ grid.reshape(n * length, co)
    dw = np.ascontiguousarray(dwq.reshape(c, kh, kw, co).transpose(1, 2, 0, 3))
    db = dz.sum(axis=(0, 1, 2))
    if not need_dx:
        return np.zeros((0, h, wd, c), dtype=x.dtype), dw, db
    dcol = (planes_weights(w) @ grid.transpose(0, 2, 1)).reshape(n, c, kh, kw, oh, wp)
    dcol[..., ow:] = 0  # nothing goes back from the positions that do not exist
    dcol = dcol.reshape(n, c, kh, kw, length)
    hp = h + pt + pb
    dplanes = np.zeros((n, c, hp * wp + kw), dtype=x.dtype)
    for i in range(kh):  # each tap's slice added back where it was read
        for j in range(kw):
            dplanes[:, :, i * wp + j : i * wp + j + length] += dcol[:, :, i, j]
    dx = dplanes[:, :, : hp * wp].reshape(n, c, hp, wp)[:, :, pt : pt + h, pl : pl + wd]
    return np.ascontiguousarray(dx.transpose(0, 2, 3, 1)), dw, db


@jit
def planes_work(h, wd, c, kh, kw, pad, co, first, dtype_like):
    """One thread's arrays for the kernels below: ``xp`` (C_in, HP·WP + KW) the planes,
    ``col`` (K, L), ``grid`` the output or its gradient on the grid, (L, C_out), or
    (C_out, L) when ``first``, and ``dxp`` like ``xp``. ``xp``'s padding and, in the
    backward pass, the grid's dropped positions start as zeros and are never written, so
    they stay zeros from image to image (one work set serves one pass, forward or backward)."""
    pt, pb, pl, pr = pad
    hp, wp = h + pt + pb, wd + pl + pr
    length = (hp - kh + 1) * wp
    xp = np.zeros((c, hp * wp + kw), dtype=dtype_like.dtype)
    col = np.empty((c * kh * kw, length), dtype=dtype_like.dtype)
    grid = np.zeros((co, length) if first else (length, co), dtype=dtype_like.dtype)
    dxp = np.zeros((c, hp * wp + kw), dtype=dtype_like.dtype)
    return xp, col, grid, dxp


@jit
def _fill(xi, kh, kw, pad, xp, col):
    """The planes of image ``xi`` (H, W, C_in) into ``xp``, then ``col`` from them."""
    h, wd, c = xi.shape
    pt, pb, pl, pr = pad
    wp = wd + pl + pr
    length = col.shape[1]
    for r in range(h):
        for s in range(wd):
            px = xi[r, s]
            at = (r + pt) * wp + pl + s
            for ci in range(c):
                xp[ci, at] = px[ci]
    q = 0
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                src = xp[ci, i * wp + j : i * wp + j + length]
                dst = col[q]
                for t in range(length):
                    dst[t] = src[t]
                q += 1
    _zero_dropped(col, wp, wp - kw + 1)


@jit
def _zero_dropped(col, wp, ow):
    """Zeros at the positions of ``col`` (K, L) that do not exist (columns ``ow .. wp − 1``
    of each grid row)."""
    for q in range(col.shape[0]):
        row = col[q]
        for r in range(col.shape[1] // wp):
            row[r * wp + ow : (r + 1) * wp] = 0


@jit
def planes_forward_image(xi, wq, b, kh, kw, pad, relu, first, work, yi):
    """One image's forward pass from ``xi`` (H, W, C_in) and ``wq`` (K, C_out)
    (:func:`planes_weights`): ``yi`` (P, C_out), or (C_out, P) when ``first``, with bias
    and ReLU as ``conv._bias_relu``."""
    xp, col, grid, _ = work
    wp = xi.shape[1] + pad[2] + pad[3]
    ow = wp - kw + 1
    oh = col.shape[1] // wp
    co = wq.shape[1]
    _fill(xi, kh, kw, pad, xp, col)
    if first:
        gemm(True, False, 1.0, wq, col, 0.0, grid)  # (C_out, K) @ (K, L)
        for o in range(co):
            src, dst, bo = grid[o], yi[o], b[o]
            for r in range(oh):
                for s in range(ow):
                    v = src[r * wp + s] + bo
                    dst[r * ow + s] = v if (v > 0 or v != v or not relu) else 0
        return
    gemm(True, False, 1.0, col, wq, 0.0, grid)  # (L, K) @ (K, C_out)
    for r in range(oh):
        for s in range(ow):
            src = grid[r * wp + s]
            dst = yi[r * ow + s]
            for o in range(co):
                v = src[o] + b[o]
                dst[o] = v if (v > 0 or v != v or not relu) else 0


@jit
def planes_backward_image(xi, wq, dz, kh, kw, pad, need_dx, first, work, dwq, dxi):
    """One image's share of the gradients from ``dz`` (P, C_out), or (C_out, P) when
    ``first``, the gradient before the ReLU: adds ``col @ dz_grid`` into ``dwq``
    (K, C_out) and, with ``need_dx``, writes the input gradient ``dxi`` (H, W, C_in). The
    bias gradient is the caller's."""
    xp, col, grid, dxp = work
    h, wd, c = xi.shape
    pt, pb, pl, pr = pad
    wp = wd + pl + pr
    ow = wp - kw + 1
    length = col.shape[1]
    oh = length // wp
    _fill(xi, kh, kw, pad, xp, col)
    if first:  # the dropped positions of the grid stay 0
        for o in range(dz.shape[0]):
            for r in range(oh):
                grid[o, r * wp : r * wp + ow] = dz[o, r * ow : (r + 1) * ow]
        gemm(False, True, 1.0, col, grid, 1.0, dwq)  # (K, L) @ (L, C_out)
    else:
        for r in range(oh):
            grid[r * wp : r * wp + ow] = dz[r * ow : (r + 1) * ow]
        gemm(False, False, 1.0, col, grid, 1.0, dwq)
    if not need_dx:
        return
    if first:
        gemm(False, False, 1.0, wq, grid, 0.0, col)  # dcol (K, L), in col's place
    else:
        gemm(False, True, 1.0, wq, grid, 0.0, col)
    _zero_dropped(col, wp, ow)
    dxp[:] = 0
    q = 0
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                dst = dxp[ci, i * wp + j : i * wp + j + length]
                src = col[q]
                for t in range(length):
                    dst[t] += src[t]
                q += 1
    for r in range(h):
        for s in range(wd):
            at = (r + pt) * wp + pl + s
            px = dxi[r, s]
            for ci in range(c):
                px[ci] = dxp[ci, at]
