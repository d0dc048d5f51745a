"""2-D convolution, channels-last: forward (with bias and optional ReLU) and backward.

Notation
--------
N            images in the batch
H, W         input height and width
C_in, C_out  input and output channels
KH, KW       kernel height and width
S            stride, the same along both axes
PT, PB, PL, PR
             zero padding at the top, bottom, left and right (``pad = (PT, PB, PL, PR)``)
OH, OW       output height and width::

    OH = (H + PT + PB - KH) // S + 1
    OW = (W + PL + PR - KW) // S + 1

P = OH·OW output positions per image; K = KH·KW·C_in numbers in one patch.

Layout
------
The kernels are channels-last: ``x`` is ``(N, H, W, C_in)``, ``y`` is ``(N, OH, OW, C_out)``
and the weights are ``(KH, KW, C_in, C_out)`` so that, reshaped to ``(K, C_out)``, they
multiply the im2col matrix of :mod:`fastdl.kernels.im2col` directly. The operation
(:mod:`fastdl.ops.conv`) converts from and to the public NCHW / ``(C_out, C_in, KH, KW)``.
As in every deep-learning library, "convolution" is cross-correlation (no kernel flip)::

    y[n, oh, ow, o] = b[o] + Σ_{i, j, c} x_pad[n, oh·S + i, ow·S + j, c] · w[i, j, c, o]

With ``relu=True`` the output is ``max(y, 0)`` and the backward pass multiplies the incoming
gradient by ``y > 0`` first (the ReLU derivative, 0 at 0 as in PyTorch).

The numba twins split the batch into one block of images per thread; per image they build
the patch matrix (it fits in L2), call a single-threaded GEMM and apply bias and ReLU while
the result is still in cache. For a stride-1 convolution of at most ``PLANES_MAX_C_IN``
input channels (a first layer on grey or colour images) the patch matrix is built from
shifted rows of the padded image instead (:mod:`fastdl.kernels.conv_planes`); im2col's
rows would be runs of one to four numbers. The backward pass uses GEMMs for images whose
gradient is dense, and scatter-AXPYs over the non-zero entries where it is sparse (after
ReLU and max-pooling typically 3 in 4 entries are zero); both are exact. A 3×3 stride-1
convolution with enough channels takes its input gradient by Winograd's F(2×2, 3×3) or
F(4×4, 3×3) instead, as its forward pass (:func:`_winograd_dx`), and its weight gradient
too (:func:`_winograd_dw`: the transformed input patches times the transformed tiles of the
output gradient, for each image whose values are finite). Weight and bias gradients are
summed per thread and added up after the parallel loop, in a fixed order.
"""

from __future__ import annotations

import numpy as np

from fastdl import config
from fastdl.kernels import _recycle as recycle
from fastdl.kernels._blas import gemm, serial_blas
from fastdl.kernels._jit import jit, pair
from fastdl.kernels._threads import chunk_bounds, run_chunks
from fastdl.kernels.conv_planes import (
    planes_backward_image,
    planes_forward_image,
    planes_weights,
    planes_work,
)
from fastdl.kernels.im2col import col2im_image, col2im_np, im2col_image, im2col_np, output_size
from fastdl.kernels.winograd import (
    images_into,
    images_work,
    tile_size,
    weight_grad_add,
    weight_grad_from_u,
    winograd_filters,
    winograd_images,
)

__all__ = ["conv2d_forward", "conv2d_backward", "SPARSE_MAX_DENSITY", "SERIAL_MAX_FLOPS"]

#: Images whose output gradient has at most this fraction of non-zeros use scatter-AXPYs
#: (the two break even near 21% on the reference CNN's conv2; see ``bench_conv``).
SPARSE_MAX_DENSITY = 0.18
#: 3×3 stride-1 convolutions of at least this many input channels run forward by Winograd's
#: F(2×2, 3×3) (:mod:`fastdl.kernels.winograd`) in the numba twin. On the reference CNN's
#: conv2 (C_in 32, 1,000 images) it took 164–175 ms against im2col + GEMM's 195–276 in
#: alternating runs; with few channels the transforms outweigh the saved products. Their
#: input gradient too, when they have this many output channels (:func:`_winograd_dx`; the
#: reference CNN's conv2 with its pool: 23–26 ms against 28–29 for batch 64).
WINOGRAD_MIN_C_IN = 16
#: The input gradient by Winograd multiplies the transformed tiles of as many images at once as
#: fit in this many bytes (at least one image), per thread.
DX_GROUP_BYTES = 1 << 20
#: Stride-1 convolutions of at most this many input channels run in the numba twin on planes
#: (:mod:`fastdl.kernels.conv_planes`), whose patch matrix is made of long contiguous copies
#: where im2col's rows are runs of C_in numbers. 3×3 "same", 28×28, 32 outputs, batch 64, two
#: threads (forward / backward with dx, ms): C_in 1: 1.3 / 6.1 on planes against 2.8 / 8.4 by
#: im2col; C_in 4: 2.4 / 5.6 against 3.4 / 10.7; C_in 8: 6.2 / 14.8 against 3.6 / 15.1.
PLANES_MAX_C_IN = 4
#: ``wq`` of the kernels that do not run on planes.
NO_PLANES = np.zeros((0, 0))
#: Below this many floating-point operations a kernel runs on one thread, without waking the
#: thread pool (a wake-up costs microseconds on an idle machine, milliseconds on a busy one).
SERIAL_MAX_FLOPS = 2_000_000


def conv2d_forward_np(x, w, b, stride, pad, relu):
    """Convolve a batch of channels-last images: im2col, one matrix product, bias (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in), float32 or float64, C-contiguous
    w : ndarray, shape (KH, KW, C_in, C_out), dtype of ``x``, C-contiguous
    b : ndarray, shape (C_out,), dtype of ``x``
    stride : int
        S.
    pad : tuple of 4 int
        ``(PT, PB, PL, PR)``.
    relu : bool
        Apply ``max(·, 0)`` to the result.

    Returns
    -------
    y : ndarray, shape (N, OH, OW, C_out), dtype of ``x``
    """
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    oh, ow = output_size(h, wd, kh, kw, stride, pad)
    col = im2col_np(x, kh, kw, stride, pad)  # (N, P, K)
    y = col.reshape(n * oh * ow, kh * kw * c) @ w.reshape(kh * kw * c, co)  # (N·P, C_out)
    y += b
    if relu:
        np.maximum(y, 0, out=y)
    return y.reshape(n, oh, ow, co)


def conv2d_backward_np(x, w, y, dy, stride, pad, relu, need_dx):
    """Gradients of :func:`conv2d_forward` for input, weights and bias (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in), C-contiguous
        The forward input.
    w : ndarray, shape (KH, KW, C_in, C_out), C-contiguous
    y : ndarray, shape (N, OH, OW, C_out)
        The forward output (read only when ``relu`` is true).
    dy : ndarray, shape (N, OH, OW, C_out), C-contiguous
        Gradient of the loss with respect to ``y``.
    stride, pad, relu
        As given to the forward pass.
    need_dx : bool
        False skips the input gradient (a network's first layer): ``dx`` is then empty.

    Returns
    -------
    dx : ndarray, shape (N, H, W, C_in), or (0, H, W, C_in) when ``need_dx`` is false
    dw : ndarray, shape (KH, KW, C_in, C_out)
    db : ndarray, shape (C_out,)
        All of the dtype of ``x``.
    """
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    k = kh * kw * c
    dz = dy * (y > 0) if relu else dy  # gradient before the ReLU
    dz = dz.reshape(-1, co)  # (N·P, C_out)
    db = dz.sum(axis=0)
    col = im2col_np(x, kh, kw, stride, pad).reshape(-1, k)  # (N·P, K)
    dw = (dz.T @ col).T.reshape(w.shape)  # (K, C_out); dz.T @ col is the faster product
    if not need_dx:
        return np.zeros((0, h, wd, c), dtype=x.dtype), dw, db
    dcol = (dz @ w.reshape(k, co).T).reshape(n, -1, k)  # (N, P, K)
    return col2im_np(dcol, h, wd, kh, kw, stride, pad), dw, db


@jit
def _bias_relu(y, b, relu):
    """In place: ``y[p, o] += b[o]``, then ReLU; ``y`` is (P, C_out).

    The ReLU is ``np.maximum(v, 0)``'s: NaN stays NaN, and −0.0 becomes 0.0 (a tie takes
    the second value).
    """
    p, co = y.shape
    for r in range(p):
        row = y[r]
        if relu:
            for o in range(co):
                v = row[o] + b[o]
                row[o] = v if (v > 0 or v != v) else 0
        else:
            for o in range(co):
                row[o] += b[o]


@jit
def _blocks(n, parts):
    """Split ``range(n)`` into ``parts`` contiguous blocks: array of ``parts + 1`` bounds."""
    bounds = np.empty(parts + 1, dtype=np.int64)
    for t in range(parts + 1):
        bounds[t] = (n * t) // parts
    return bounds


def conv2d_forward_nb(x, w, b, stride, pad, relu):
    """numba twin of :func:`conv2d_forward_np`: same contract, per-image fused loops."""
    return forward_images(x, w, b, stride, pad, relu)[0]


def forward_images(x, w, b, stride, pad, relu, pool=(0, 0), yp=None):
    """``(y, pooled)``: the forward pass of this twin and of
    :mod:`fastdl.kernels.conv_pool`'s. With ``yp`` (N, C_out, PH·PW), a convolution by
    Winograd also writes the max-pool of its output (window and stride ``pool``) into
    ``yp``, a group of images at a time while their output is in cache; ``pooled`` (N,)
    bool marks the images whose pool it wrote (none off that path, nor those summed
    directly)."""
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    oh, ow = output_size(h, wd, kh, kw, stride, pad)
    y = recycle.empty((n, oh * ow, co), x.dtype)  # kept and reused when very large
    parts = _parts(n, 2 * n * oh * ow * co * kh * kw * c)
    winograd = kh == kw == 3 and stride == 1 and c >= WINOGRAD_MIN_C_IN and oh * ow > 0
    if winograd and _all_finite(w.reshape(-1)):
        with serial_blas():
            _, finite = winograd_images(x, w, b, pad, relu, _blocks(n, parts), y, pool, yp)
            no_planes = NO_PLANES.astype(x.dtype)
            for i in np.flatnonzero(~finite):  # NaN or inf in the image: summed directly,
                one = slice(i, i + 1)  # so it reaches only the outputs that see it
                _conv2d_forward_serial(x[one], w, b, stride, pad, relu, no_planes, y[one])
        pooled = finite if yp is not None else np.zeros(n, dtype=np.bool_)
        return y.reshape(n, oh, ow, co), pooled
    wq = _planes_weights(w, stride)
    with serial_blas():
        if parts == 1:
            _conv2d_forward_serial(x, w, b, stride, pad, relu, wq, y)
        else:
            _conv2d_forward(x, w, b, stride, pad, relu, wq, parts, y)
    return y.reshape(n, oh, ow, co), np.zeros(n, dtype=np.bool_)


def _parts(n: int, flops: int) -> int:
    """Blocks of images for the threads; 1 (no parallel region) for small work."""
    return 1 if flops < SERIAL_MAX_FLOPS else max(1, min(config.get_num_threads(), n))


def _planes_weights(w, stride):
    """``planes_weights(w)`` when the convolution runs on planes (:mod:`.conv_planes`: stride
    1, at most ``PLANES_MAX_C_IN`` input channels), else :data:`NO_PLANES`."""
    if stride != 1 or w.shape[2] > PLANES_MAX_C_IN:
        return NO_PLANES.astype(w.dtype)
    return planes_weights(w)


@jit
def _forward_images(x, w, b, stride, pad, relu, wq, lo, hi, y):
    """Images ``lo .. hi - 1`` of the forward pass into ``y`` (N, P, C_out): on planes
    (:mod:`.conv_planes`) when ``wq`` is not empty, else by im2col and a GEMM."""
    h, wd, c = x.shape[1:]
    kh, kw, _, co = w.shape
    if wq.shape[0] > 0:
        work = planes_work(h, wd, c, kh, kw, pad, co, False, x)
        for i in range(lo, hi):
            planes_forward_image(x[i], wq, b, kh, kw, pad, relu, False, work, y[i])
        return
    pt, pb, pl, pr = pad
    oh = (h + pt + pb - kh) // stride + 1
    ow = (wd + pl + pr - kw) // stride + 1
    w2 = w.reshape(kh * kw * c, co)
    col = np.empty((oh * ow, kh * kw * c), dtype=x.dtype)
    for i in range(lo, hi):
        im2col_image(x[i], kh, kw, stride, pt, pl, oh, ow, col)
        gemm(False, False, 1.0, col, w2, 0.0, y[i])
        _bias_relu(y[i], b, relu)


@jit
def _forward_chunk(x, w, b, stride, pad, relu, wq, y, chunks, ch):
    """Block ``ch`` of ``chunks`` blocks of images (:func:`run_chunks`' convention)."""
    lo, hi = chunk_bounds(x.shape[0], chunks, ch)
    _forward_images(x, w, b, stride, pad, relu, wq, lo, hi, y)


def _conv2d_forward(x, w, b, stride, pad, relu, wq, parts, y):
    """The forward pass on ``parts`` blocks of images, one per thread (:func:`run_chunks`)."""
    run_chunks(_forward_chunk, parts, x, w, b, stride, pad, relu, wq, y)


@jit
def _conv2d_forward_serial(x, w, b, stride, pad, relu, wq, y):
    _forward_images(x, w, b, stride, pad, relu, wq, 0, x.shape[0], y)


@jit
def _relu_grad(y, dy, relu, dz):
    """``dz = dy · (y > 0)`` (or a copy of ``dy``); returns the number of non-zeros.

    A product, as the NumPy twin's: a NaN or infinite ``dy`` times 0 is NaN, −3 times 0 is −0.
    """
    p, co = dz.shape
    one, zero = dz.dtype.type(1), dz.dtype.type(0)
    nnz = 0
    for r in range(p):
        for o in range(co):  # times 1 or 0, a select rather than a branch: it vectorises
            g = dy[r, o] * (one if (y[r, o] > 0 or not relu) else zero)
            dz[r, o] = g
            nnz += g != 0
    return nnz


@jit
def _all_finite(a):
    """True when no element of the 1-D ``a`` is NaN or infinite."""
    for v in a:
        if not (v - v == 0):  # NaN − NaN and ±inf − ±inf are NaN
            return False
    return True


@jit
def _sparse_image(col, dz, wt, dwt, dcol, need_dx):
    """Scatter-AXPYs over the non-zeros of ``dz`` (P, C_out): ``dwt`` (C_out, K) and ``dcol``."""
    p, co = dz.shape
    k = col.shape[1]
    if need_dx:
        dcol[:] = 0
    for r in range(p):
        src = col[r]
        dst = dcol[r] if need_dx else src  # (dcol may be empty without need_dx; not written)
        for o in range(co):
            g = dz[r, o]
            if g != 0:
                acc = dwt[o]
                for q in range(k):
                    acc[q] += g * src[q]
                if need_dx:
                    wr = wt[o]
                    for q in range(k):
                        dst[q] += g * wr[q]


def conv2d_backward_nb(x, w, y, dy, stride, pad, relu, need_dx):
    """numba twin of :func:`conv2d_backward_np`: same contract, per-image fused loops."""
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    dx = np.zeros((n if need_dx else 0, h, wd, c), dtype=x.dtype)  # numpy's allocator
    parts = _parts(n, 4 * y.size * kh * kw * c)
    no_pool = np.empty((0, 0, 0), dtype=np.int32)
    grad = (y.reshape(n, -1, co), dy.reshape(n, -1, co), no_pool, relu)
    return (dx, *backward_images(x, w, grad, stride, pad, need_dx, parts, dx))


def backward_images(x, w, grad, stride, pad, need_dx, parts, dx):
    """``(dw, db)`` from :func:`_backward_images` on ``parts`` blocks of images, writing
    ``dx``: the driver of this twin and of :mod:`fastdl.kernels.conv_pool`'s."""
    wq = _planes_weights(w, stride)
    dxw = _winograd_dx(x, w, stride, pad, need_dx) + (_winograd_dw(x, w, stride, pad),)
    with serial_blas():
        if parts == 1:
            dw2, dwq, db, du = _conv2d_backward_serial(x, w, wq, dxw, grad, stride, pad, need_dx,
                                                       SPARSE_MAX_DENSITY, dx)  # fmt: skip
        else:
            dw2, dwq, db, du = _conv2d_backward(x, w, wq, dxw, grad, stride, pad, need_dx, parts,
                                                SPARSE_MAX_DENSITY, dx)  # fmt: skip
    kh, kw, c, co = w.shape
    if wq.shape[0] > 0:  # the planes' rows (c, i, j) to im2col's (i, j, c)
        dw2 += dwq.reshape(c, kh, kw, co).transpose(1, 2, 0, 3).reshape(-1, co)
    if du.shape[0] > 0:  # the images whose weight gradient went by Winograd
        dw2 += weight_grad_from_u(du).reshape(-1, co)
    return dw2.reshape(kh, kw, c, co), db


def _winograd_dw(x, w, stride, pad):
    """The tile side m of F(m×m, 3×3) for the weight gradient of a 3×3 stride-1 convolution
    with at least ``WINOGRAD_MIN_C_IN`` input and output channels
    (:func:`~fastdl.kernels.winograd.weight_grad_add`, per image whose input and output
    gradient are finite), 0 otherwise."""
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    if not (kh == kw == 3 and stride == 1 and min(c, co) >= WINOGRAD_MIN_C_IN):
        return 0
    oh, ow = h + pad[0] + pad[1] - 2, wd + pad[2] + pad[3] - 2
    return tile_size(oh, ow) if oh > 0 and ow > 0 else 0


def _winograd_dx(x, w, stride, pad, need_dx):
    """``(u, pad2, group)``: the input gradient of a 3×3 stride-1 convolution with at least
    ``WINOGRAD_MIN_C_IN`` input and output channels, padding at most 2 and finite weights, by
    Winograd's F(2×2, 3×3) (:func:`_dx_by_winograd`); ``u`` empty otherwise.

    ``dx`` is the correlation of ``dz`` (OH, OW, C_out), padded by ``pad2 = 2 − pad``, with
    the kernel turned by 180° and its channel axes swapped (3, 3, C_out, C_in), whose
    filters are ``u`` (16, C_out, C_in); ``group`` images of ``dz`` go through one set of
    GEMMs. As in the forward pass (:mod:`fastdl.kernels.winograd`), the transforms can
    overflow for finite values within a factor of about 16 of the float32 maximum.
    """
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    usable = need_dx and kh == kw == 3 and stride == 1 and min(c, co) >= WINOGRAD_MIN_C_IN
    if not (usable and max(pad) <= 2 and _all_finite(w.reshape(-1))):
        return np.zeros((0, 0, 0), dtype=w.dtype), (0, 0, 0, 0), 1
    turned = np.ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2))
    pad2 = tuple(2 - int(p) for p in pad)
    m = tile_size(h, wd)  # dx is this correlation's H × W output
    tiles = -(-h // m) * -(-wd // m)
    group = max(1, min(n, DX_GROUP_BYTES // ((m + 2) ** 2 * tiles * (c + co) * x.itemsize)))
    return np.ascontiguousarray(winograd_filters(turned, m)), pad2, group


@jit
def _backward_images(x, w, wq, dxw, grad, stride, pad, need_dx, sparse_density, lo, hi, acc,
                     dx):  # fmt: skip
    """Images ``lo .. hi - 1`` of the backward pass: adds into ``acc``'s partial sums.

    ``grad`` is ``(y, g, idx, relu)`` with ``y`` ``(N, P, C_out)`` the forward output. With
    ``idx`` empty, ``g`` ``(N, P, C_out)`` is the gradient of ``y``; otherwise ``g`` is the
    gradient of the max-pool of ``y`` and ``idx`` its argmax, both ``(N, C_out, PH·PW)``
    (:mod:`fastdl.kernels.conv_pool`, which needs ``relu``). With ``wq`` not empty, dense
    images go on planes (:mod:`.conv_planes`). With ``dxw`` (:func:`_winograd_dx`) not
    empty, ``dx`` is made by Winograd's F(2×2, 3×3) from groups of images' ``dz``.
    """
    y, g, idx, relu = grad
    u, pad2, group, dw_m = dxw
    by_winograd = need_dx and u.shape[0] > 0
    work = _image_work(x, w, wq, pad, y.shape[1], need_dx and not by_winograd)
    pooled = idx.shape[0] > 0
    n, h, wd, c = x.shape
    co = w.shape[3]
    if by_winograd:  # the group's dz, and the arrays of images_into
        dzs = np.empty((group, y.shape[1], co), dtype=x.dtype)
        oh, ow = h + pad[0] + pad[1] - 2, wd + pad[2] + pad[3] - 2  # (3×3, stride 1)
        wino_work = images_work(oh, ow, co, c, pad2, group, 4 if u.shape[0] == 36 else 2, x)
    else:  # (empty)
        dzs = np.empty((0, 0, co), dtype=x.dtype)
        wino_work = images_work(2, 2, 0, 0, (0, 0, 0, 0), 1, 2, x)
    finite = np.ones(group, dtype=np.bool_)
    no_bias = np.zeros(c, dtype=x.dtype)
    direct_dx = need_dx and not by_winograd
    if dw_m > 0:  # one image's transforms for the weight gradient by Winograd
        dw_work = images_work(h, wd, c, co, pad, 1, dw_m, x)
    else:  # (empty)
        dw_work = images_work(2, 2, 0, 0, (0, 0, 0, 0), 1, 2, x)
    zero_row = np.zeros(co, dtype=x.dtype)
    dz_i = work[3]
    q = 0
    for i in range(lo, hi):
        if pooled:
            nnz = _unpool_relu_grad(y[i], g[i], idx[i], dz_i)
        else:
            nnz = _relu_grad(y[i], g[i], relu, dz_i)
        wino_dw = dw_m > 0 and nnz > 0 and _all_finite(x[i].reshape(-1))
        wino_dw = wino_dw and _all_finite(dz_i.reshape(-1))
        _image_backward(x, w, stride, pad, direct_dx, not wino_dw, sparse_density, i, nnz, work,
                        acc, dx)  # fmt: skip
        if wino_dw:
            weight_grad_add(x[i : i + 1], dz_i.reshape(1, dz_i.shape[0], co), pad, 1, dw_work,
                            zero_row, acc[4])  # fmt: skip
        if by_winograd:
            dzs[q] = work[3]
            q += 1
            if q == group or i == hi - 1:
                wino = (u, no_bias, pad2, wino_work, finite)
                _dx_by_winograd(dzs, wino, q, work, i + 1 - q, dx)
                q = 0


@jit
def _dx_by_winograd(dzs, wino, count, work, first, dx):
    """``dx`` of images ``first .. first + count − 1`` from their ``dz`` in ``dzs``
    (count, P, C_out) by F(2×2, 3×3) (:func:`_winograd_dx`; ``wino`` is its filters, a zero
    bias, ``pad2`` and :func:`images_into`'s arrays); an image whose ``dz`` holds a
    NaN or an infinity is summed directly (``dz Wᵀ`` then col2im), so that it reaches only
    the inputs that see it, as in the NumPy twin."""
    u, no_bias, pad2, wino_work, finite = wino
    n, h, wd, c = dx.shape
    co = dzs.shape[2]
    oh, ow = h + 2 - pad2[0] - pad2[1], wd + 2 - pad2[2] - pad2[3]
    dz4 = dzs.reshape(dzs.shape[0], oh, ow, co)
    dx3 = dx.reshape(n, h * wd, c)[first : first + count]
    images_into(dz4, u, no_bias, pad2, False, 0, count, wino_work, dx3, finite)
    wt = work[0]
    for j in range(count):
        if not finite[j]:
            dcol = np.empty((dzs.shape[1], wt.shape[1]), dtype=dx.dtype)
            gemm(False, False, 1.0, dzs[j], wt, 0.0, dcol)
            col2im_image(dcol, 3, 3, 1, 2 - pad2[0], 2 - pad2[2], oh, ow, dx[first + j])


@jit
def _unpool_relu_grad(y, dyp, idx, dz):
    """``dz`` (P, C_out): each window's gradient ``dyp`` (C_out, PH·PW) added at the pixel
    ``idx`` names, in the pool's order (as ``pool._unpool_images``), then times ``y > 0`` as
    in :func:`_relu_grad`; returns the number of non-zeros."""
    p, co = dz.shape
    dz[:] = 0
    for q in range(co):
        g = dyp[q]
        io = idx[q]
        for r in range(g.shape[0]):
            dz[io[r], q] += g[r]
    one, zero = dz.dtype.type(1), dz.dtype.type(0)
    nnz = 0
    for r in range(p):
        for o in range(co):
            v = dz[r, o] * (one if y[r, o] > 0 else zero)
            dz[r, o] = v
            nnz += v != 0
    return nnz


@jit
def _image_work(x, w, wq, pad, p, need_dcol):
    """Per-thread arrays of :func:`_image_backward`: ``wt`` (C_out, K), ``col`` (P, K),
    ``dcol`` (P, K), or (0, K) without ``need_dcol``, ``dz`` (P, C_out), whether ``w`` is
    finite, ``wq`` and the planes' arrays (:func:`~fastdl.kernels.conv_planes.planes_work`,
    empty when ``wq`` is)."""
    kh, kw, c, co = w.shape
    k = kh * kw * c
    wt = np.ascontiguousarray(w.reshape(k, co).T)
    col = np.empty((p, k), dtype=x.dtype)
    dcol = np.empty((p if need_dcol else 0, k), dtype=x.dtype)
    dz = np.empty((p, co), dtype=x.dtype)
    if wq.shape[0] > 0:
        planes = planes_work(x.shape[1], x.shape[2], c, kh, kw, pad, co, False, x)
    else:
        planes = planes_work(0, 0, 0, 0, 0, (0, 0, 0, 0), 0, False, x)
    return wt, col, dcol, dz, _all_finite(w.reshape(-1)), wq, planes


@jit
def _image_backward(x, w, stride, pad, need_dx, need_dw, sparse_density, i, nnz, work, acc, dx):
    """Image ``i``'s share of the gradients from ``dz`` (its gradient before the ReLU, with
    ``nnz`` non-zeros, in ``work``): adds into ``acc``'s partial sums, writes ``dx[i]``;
    without ``need_dw``, only the bias gradient and ``dx`` (the weight gradient goes by
    Winograd)."""
    wt, col, dcol, dz, finite_w, wq, planes = work
    dw_dense, dw_sparse, db, dw_planes, _ = acc
    h, wd, c = x.shape[1:]
    kh, kw, _, co = w.shape
    pt, pb, pl, pr = pad
    oh = (h + pt + pb - kh) // stride + 1
    ow = (wd + pl + pr - kw) // stride + 1
    p = oh * ow
    if not (finite_w and _all_finite(x[i].reshape(-1))):
        nnz = p * co  # NaN·0 is NaN: no gradient entry may be skipped, as in the twin
    if nnz == 0:
        return
    for r in range(p):
        for o in range(co):
            db[o] += dz[r, o]
    if not need_dw:
        if need_dx:
            gemm(False, False, 1.0, dz, wt, 0.0, dcol)
            col2im_image(dcol, kh, kw, stride, pt, pl, oh, ow, dx[i])
        return
    if wq.shape[0] > 0 and nnz > sparse_density * p * co:
        dxi = dx[i] if need_dx else x[i]  # (x[i] is not written without need_dx)
        planes_backward_image(x[i], wq, dz, kh, kw, pad, need_dx, False, planes, dw_planes, dxi)
        return
    im2col_image(x[i], kh, kw, stride, pt, pl, oh, ow, col)
    if nnz <= sparse_density * p * co:
        _sparse_image(col, dz, wt, dw_sparse, dcol, need_dx)
    else:
        gemm(True, False, 1.0, col, dz, 1.0, dw_dense)
        if need_dx:
            gemm(False, False, 1.0, dz, wt, 0.0, dcol)
    if need_dx:
        col2im_image(dcol, kh, kw, stride, pt, pl, oh, ow, dx[i])


@jit
def _backward_chunk(x, w, wq, dxw, grad, stride, pad, need_dx, sparse_density, partials, dx,
                    chunks, ch):  # fmt: skip
    """Block ``ch`` of the backward pass, summing into its own ``[ch]`` of ``partials``."""
    dw_dense, dw_sparse, db, dw_planes, du = partials
    lo, hi = chunk_bounds(x.shape[0], chunks, ch)
    acc = (dw_dense[ch], dw_sparse[ch], db[ch], dw_planes[ch], du[ch])
    _backward_images(x, w, wq, dxw, grad, stride, pad, need_dx, sparse_density, lo, hi, acc,
                     dx)  # fmt: skip


def _conv2d_backward(x, w, wq, dxw, grad, stride, pad, need_dx, parts, sparse_density, dx):
    """Parallel backward pass: each thread runs :func:`_backward_images` on its block of
    images (:func:`run_chunks`), summing into its own partial gradients; returns ``dw2``
    (K, C_out) with rows in im2col's order, ``dwq`` (K, C_out) with rows in the planes'
    order (zeros unless ``wq`` is not empty), ``db``, and ``du`` ((m + 2)², C_in, C_out) the
    Winograd images' ``∂L/∂U`` (empty unless ``dxw``'s last entry m is not 0)."""
    kh, kw, c, co = w.shape
    k = kh * kw * c
    a2 = (dxw[3] + 2) ** 2 if dxw[3] > 0 else 0
    partials = (
        np.zeros((parts, k, co), dtype=x.dtype),  # per-thread sums, added up below
        np.zeros((parts, co, k), dtype=x.dtype),
        np.zeros((parts, co), dtype=x.dtype),
        np.zeros((parts, k, co), dtype=x.dtype),
        np.zeros((parts, a2, c, co), dtype=x.dtype),
    )
    run_chunks(_backward_chunk, parts, x, w, wq, dxw, grad, stride, pad, need_dx,
               sparse_density, partials, dx)  # fmt: skip
    dw2 = np.zeros((k, co), dtype=x.dtype)
    dwq = np.zeros((k, co), dtype=x.dtype)
    db = np.zeros(co, dtype=x.dtype)
    du = np.zeros((a2, c, co), dtype=x.dtype)
    for t in range(parts):  # in a fixed order: the same sums for the same thread count
        dw2 += partials[0][t]
        dw2 += partials[1][t].T
        db += partials[2][t]
        dwq += partials[3][t]
        du += partials[4][t]
    return dw2, dwq, db, du


@jit
def _conv2d_backward_serial(x, w, wq, dxw, grad, stride, pad, need_dx, sparse_density, dx):
    """The backward pass on the calling thread (small work); returns as
    :func:`_conv2d_backward`."""
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    k = kh * kw * c
    a2 = (dxw[3] + 2) ** 2 if dxw[3] > 0 else 0
    acc = (
        np.zeros((k, co), dtype=x.dtype),
        np.zeros((co, k), dtype=x.dtype),
        np.zeros(co, dtype=x.dtype),
        np.zeros((k, co), dtype=x.dtype),
        np.zeros((a2, c, co), dtype=x.dtype),
    )
    _backward_images(x, w, wq, dxw, grad, stride, pad, need_dx, sparse_density, 0, n, acc, dx)
    return acc[0] + acc[1].T, acc[3], acc[2], acc[4]


#: The staged twins multiply groups of images at once, as many as keep one group's patch
#: matrix within this many bytes (about L2-sized; each group is a few Python-level calls).
STAGED_GROUP_BYTES = 1 << 19


def _staged_groups(n: int, p: int, k: int, itemsize: int, parts: int) -> tuple:
    """Bounds of the threads' blocks of images, and images per group within a block."""
    return _blocks(n, parts), max(1, STAGED_GROUP_BYTES // max(1, p * k * itemsize))


@jit
def _forward_group(x, kh, kw, stride, pt, pl, oh, ow, i0, i1, col):
    """im2col of images ``i0 .. i1 - 1`` into the rows of ``col`` ``((i1 - i0)·P, K)``."""
    p = oh * ow
    for i in range(i0, i1):
        im2col_image(x[i], kh, kw, stride, pt, pl, oh, ow, col[(i - i0) * p : (i - i0 + 1) * p])


def conv2d_forward_st(x, w, b, stride, pad, relu):
    """Staged twin of :func:`conv2d_forward_np`: per group of images, compiled im2col, one
    product by numpy's ``matmul``, compiled bias and ReLU; blocks of images on threads."""
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    oh, ow = output_size(h, wd, kh, kw, stride, pad)
    p, k = oh * ow, kh * kw * c
    y = np.empty((n * p, co), dtype=x.dtype)
    w2 = w.reshape(k, co)
    bounds, group = _staged_groups(n, p, k, x.itemsize, _parts(n, 2 * n * p * co * k))

    def block(chunks, t):
        col = np.empty((group * p, k), dtype=x.dtype)
        for i0 in range(bounds[t], bounds[t + 1], group):
            i1 = min(i0 + group, bounds[t + 1])
            rows = slice(i0 * p, i1 * p)
            _forward_group(x, kh, kw, stride, pad[0], pad[2], oh, ow, i0, i1, col)
            np.matmul(col[: (i1 - i0) * p], w2, out=y[rows])
            _bias_relu(y[rows], b, relu)

    with serial_blas():
        run_chunks(block, len(bounds) - 1)
    return y.reshape(n, oh, ow, co)


@jit
def _backward_group(x, w, y, dy, stride, pad, relu, need_dx, sparse_max, i0, i1, acc, col, dz,
                    dcol, dense):  # fmt: skip
    """Images ``i0 .. i1 - 1`` of the staged backward pass, all but the dense products.

    Fills ``dz`` (the gradient before the ReLU) and ``col`` for each image, adds into the
    bias gradient and, for images whose ``dz`` is sparse, does their scatter-AXPYs; marks in
    ``dense`` the images whose products the caller does with numpy.
    """
    dw_sparse, db = acc[1], acc[2]
    h, wd, c = x.shape[1:]
    kh, kw, _, co = w.shape
    pt, pb, pl, pr = pad
    oh = (h + pt + pb - kh) // stride + 1
    ow = (wd + pl + pr - kw) // stride + 1
    p = oh * ow
    wt = np.ascontiguousarray(w.reshape(kh * kw * c, co).T)  # (C_out, K)
    finite_w = _all_finite(w.reshape(-1))
    for i in range(i0, i1):
        g = i - i0
        dzi, coli, dcoli = dz[g * p : (g + 1) * p], col[g * p : (g + 1) * p], dcol[g]
        nnz = _relu_grad(y[i], dy[i], relu, dzi)
        if not (finite_w and _all_finite(x[i].reshape(-1))):
            nnz = p * co  # NaN·0 is NaN: no gradient entry may be skipped, as in the twin
        dense[g] = nnz > sparse_max
        if nnz == 0:
            if need_dx:
                dcoli[:] = 0
            continue
        for r in range(p):
            for o in range(co):
                db[o] += dzi[r, o]
        im2col_image(x[i], kh, kw, stride, pt, pl, oh, ow, coli)
        if not dense[g]:
            _sparse_image(coli, dzi, wt, dw_sparse, dcoli, need_dx)


@jit
def _col2im_group(dcol, kh, kw, stride, pt, pl, oh, ow, i0, i1, dx):
    for i in range(i0, i1):
        col2im_image(dcol[i - i0], kh, kw, stride, pt, pl, oh, ow, dx[i])


def conv2d_backward_st(x, w, y, dy, stride, pad, relu, need_dx):
    """Staged twin of :func:`conv2d_backward_np`: per group of images, the compiled part of
    :func:`conv2d_backward_nb`, with the dense images' products by numpy's ``matmul``."""
    n, h, wd, c = x.shape
    kh, kw, _, co = w.shape
    oh, ow = output_size(h, wd, kh, kw, stride, pad)
    p, k = oh * ow, kh * kw * c
    dx = np.zeros((n if need_dx else 0, h, wd, c), dtype=x.dtype)
    y3, dy3 = y.reshape(n, p, co), dy.reshape(n, p, co)
    wt = np.ascontiguousarray(w.reshape(k, co).T)  # (C_out, K)
    parts = _parts(n, 4 * y.size * k)
    bounds, group = _staged_groups(n, p, 2 * k, x.itemsize, parts)
    acc = [(np.zeros((k, co), x.dtype), np.zeros((co, k), x.dtype), np.zeros(co, x.dtype))
           for _ in range(parts)]  # fmt: skip
    sparse_max = SPARSE_MAX_DENSITY * p * co

    def block(chunks, t):
        col = np.empty((group * p, k), dtype=x.dtype)
        dcol = np.empty((group, p, k), dtype=x.dtype)
        dz = np.empty((group * p, co), dtype=x.dtype)
        dense = np.empty(group, dtype=np.bool_)
        dw_dense = acc[t][0]
        for i0 in range(bounds[t], bounds[t + 1], group):
            i1 = min(i0 + group, bounds[t + 1])
            _backward_group(x, w, y3, dy3, stride, pad, relu, need_dx, sparse_max, i0, i1,
                            acc[t], col, dz, dcol, dense)  # fmt: skip
            picked = np.flatnonzero(dense[: i1 - i0])
            if len(picked) == i1 - i0:  # every image dense: one product for the group
                rows = slice(0, (i1 - i0) * p)
                dw_dense += col[rows].T @ dz[rows]
                if need_dx:
                    np.matmul(dz[rows], wt, out=dcol[: i1 - i0].reshape(-1, k))
            else:
                for g in picked:
                    rows = slice(g * p, (g + 1) * p)
                    dw_dense += col[rows].T @ dz[rows]
                    if need_dx:
                        np.matmul(dz[rows], wt, out=dcol[g])
            if need_dx:
                _col2im_group(dcol, kh, kw, stride, pad[0], pad[2], oh, ow, i0, i1, dx)

    with serial_blas():
        run_chunks(block, parts)
    dw2 = np.zeros((k, co), dtype=x.dtype)
    db = np.zeros(co, dtype=x.dtype)
    for dw_dense, dw_sparse, db_part in acc:  # in a fixed order, as the numba twin
        dw2 += dw_dense
        dw2 += dw_sparse.T
        db += db_part
    return dx, dw2.reshape(kh, kw, c, co), db


conv2d_forward = pair(conv2d_forward_np, conv2d_forward_nb, conv2d_forward_st)
conv2d_backward = pair(conv2d_backward_np, conv2d_backward_nb, conv2d_backward_st)
