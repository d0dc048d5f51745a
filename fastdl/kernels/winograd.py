"""Winograd's F(2×2, 3×3): a 3×3 stride-1 convolution with 2.25× fewer multiplications.

Notation and layout as in :mod:`fastdl.kernels.conv`: ``x`` ``(N, H, W, C_in)``, weights
``w`` ``(3, 3, C_in, C_out)``, bias ``b`` ``(C_out,)``, padding ``(PT, PB, PL, PR)``,
output ``(N, OH, OW, C_out)`` with ``OH = H + PT + PB − 2``, ``OW = W + PL + PR − 2``.

The output is cut into 2 × 2 tiles, TH = ⌈OH/2⌉ by TW = ⌈OW/2⌉ of them; the 2 × 2 outputs
of a tile depend on a 4 × 4 patch ``d`` of the (zero-padded) input, and Lavin & Gray (2015)
write their convolution with a 3 × 3 kernel ``g`` as::

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A

    Bᵀ = | 1  0 -1  0 |     G = | 1    0    0  |     Aᵀ = | 1  1  1  0 |
         | 0  1  1  0 |         | ½    ½    ½  |          | 0  1 -1 -1 |
         | 0 -1  1  0 |         | ½   -½    ½  |
         | 0  1  0 -1 |         | 0    0    1  |

With channels, ``U = G g Gᵀ`` is taken for every (input, output) channel pair and
``V = Bᵀ d B`` for every tile and input channel; the element-wise product summed over
input channels is, for each of the 16 positions ξ of the 4 × 4 transformed tile, one matrix
product ``M[ξ] = V[ξ] @ U[ξ]`` of ``(tiles, C_in)`` by ``(C_in, C_out)``. 16 products of
K = C_in replace one of K = 9·C_in: 16·C_in against 36·C_in multiply-adds per 2 × 2 outputs.
Only additions and halvings are added, so float32 results stay within a few units of the
last place of the direct sum (the tests hold both twins to the im2col twin's tolerance).

An infinite or NaN input mixes, through ``Bᵀ d B``, into all four outputs of its tile
(``inf − inf``), where the direct sum keeps it to the outputs that see it. So the compiled
twin reports the images it saw a non-finite value in, and :mod:`fastdl.kernels.conv`
convolves those directly; weights with a non-finite value never come here. The transforms
add up to a few neighbouring values, so finite values within a factor of about 16 of the
float32 maximum (≈ 2e37 and above) can overflow here where the direct sum would not.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fastdl.kernels._blas import gemm
from fastdl.kernels._jit import jit, pair
from fastdl.kernels._threads import run_chunks

__all__ = [
    "winograd_forward",
    "winograd_images",
    "images_work",
    "images_into",
    "winograd_filters",
    "BT",
    "G",
    "AT",
    "GROUP_BYTES",
]

#: The compiled twin multiplies the transformed tiles of as many images at once as fit in
#: this many bytes (at least one image).
GROUP_BYTES = 1 << 21

BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def _tiles(oh: int, ow: int) -> tuple[int, int]:
    """``(TH, TW)``: 2 × 2 output tiles covering ``OH × OW``."""
    return -(-oh // 2), -(-ow // 2)


def winograd_filters(w: np.ndarray) -> np.ndarray:
    """``U = G g Gᵀ`` for every channel pair: ``w`` (3, 3, C_in, C_out) → (16, C_in, C_out),
    the 16 positions of the 4 × 4 transformed kernel in row-major order."""
    g = G.astype(w.dtype)
    return np.einsum("ai,ijco,bj->abco", g, w, g).reshape(16, *w.shape[2:])


def winograd_forward_np(x, w, b, pad, relu):
    """3×3 stride-1 convolution by F(2×2, 3×3), with bias and optional ReLU (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in), float32 or float64, C-contiguous
    w : ndarray, shape (3, 3, C_in, C_out), dtype of ``x``
    b : ndarray, shape (C_out,), dtype of ``x``
    pad : tuple of 4 int
        ``(PT, PB, PL, PR)``.
    relu : bool
        Apply ``max(·, 0)`` to the result.

    Returns
    -------
    y : ndarray, shape (N, OH, OW, C_out), dtype of ``x``, C-contiguous
    """
    n, h, wd, c = x.shape
    co = w.shape[3]
    pt, pb, pl, pr = pad
    oh, ow = h + pt + pb - 2, wd + pl + pr - 2
    th, tw = _tiles(oh, ow)
    bt, at = BT.astype(x.dtype), AT.astype(x.dtype)
    # Zero-padded so that every tile's 4 × 4 patch is inside (an odd OH or OW reads one
    # row or column of zeros more, whose outputs are cut off at the end).
    xp = np.zeros((n, 2 * th + 2, 2 * tw + 2, c), dtype=x.dtype)
    xp[:, pt : pt + h, pl : pl + wd] = x
    d = sliding_window_view(xp, (4, 4), axis=(1, 2))[:, ::2, ::2]  # (N, TH, TW, C, 4, 4)
    v = np.einsum("ai,ntwcij,bj->abntwc", bt, d, bt).reshape(16, n * th * tw, c)
    m = v @ winograd_filters(w)  # (16, tiles, C_out): one product per position ξ
    y = np.einsum("pa,abto,qb->pqto", at, m.reshape(4, 4, -1, co), at)  # (2, 2, tiles, C_out)
    y = y.reshape(2, 2, n, th, tw, co).transpose(2, 3, 0, 4, 1, 5)  # (N, TH, 2, TW, 2, C_out)
    y = y.reshape(n, 2 * th, 2 * tw, co)[:, :oh, :ow] + b
    if relu:
        y = np.maximum(y, 0)
    return np.ascontiguousarray(y)


@jit
def _pad_image(xi, pt, pl, xp):
    """Copy the image ``xi`` (H, W, C) into ``xp``'s interior (its border stays 0); returns
    whether every value was finite."""
    h, wd, c = xi.shape
    finite = True
    for r in range(h):
        for q in range(wd):
            src = xi[r, q]
            dst = xp[pt + r, pl + q]
            ok = True
            for ch in range(c):
                v = src[ch]
                dst[ch] = v
                ok &= v - v == 0  # NaN − NaN and ±inf − ±inf are NaN
            finite &= ok
    return finite


@jit
def _input_transform(xp, th, tw, v, off):
    """``v[ξ, off + t, :] = (Bᵀ d B)[ξ]`` for the patch ``d`` of ``xp`` (HP, WP, C) under
    each tile ``t`` (TH × TW tiles in row-major order).

    The loops run over the channels of 1-D row views, so that no index needs a bounds or
    wraparound test and LLVM vectorises them.
    """
    c = xp.shape[2]
    for tile in range(th * tw):
        t = off + tile
        r0, c0 = 2 * (tile // tw), 2 * (tile % tw)
        p0, p1, p2, p3 = xp[r0], xp[r0 + 1], xp[r0 + 2], xp[r0 + 3]  # (WP, C) each
        for j in range(4):  # Bᵀ d on column j of the patch: rows 0 − 2, 1 + 2, 2 − 1, 1 − 3
            d0, d1, d2, d3 = p0[c0 + j], p1[c0 + j], p2[c0 + j], p3[c0 + j]
            a, bb, e, f = v[j, t], v[4 + j, t], v[8 + j, t], v[12 + j, t]
            for ch in range(c):
                a[ch] = d0[ch] - d2[ch]
                bb[ch] = d1[ch] + d2[ch]
                e[ch] = d2[ch] - d1[ch]
                f[ch] = d1[ch] - d3[ch]
        for i in range(4):  # (Bᵀ d) B on row i, in place: columns 0 − 2, 1 + 2, 2 − 1, 1 − 3
            q0, q1, q2, q3 = v[4 * i, t], v[4 * i + 1, t], v[4 * i + 2, t], v[4 * i + 3, t]
            for ch in range(c):
                s0, s1, s2, s3 = q0[ch], q1[ch], q2[ch], q3[ch]
                q0[ch] = s0 - s2
                q1[ch] = s1 + s2
                q2[ch] = s2 - s1
                q3[ch] = s1 - s3


@jit
def _output_transform(m, b, relu, th, tw, oh, ow, yi, off):
    """``yi`` (OH·OW, C_out) from the products ``m`` (16, rows, C_out), tile ``t`` in row
    ``off + t``: ``Aᵀ M A`` per tile, then bias and ReLU (as the twin's ``+ b`` and
    ``maximum(·, 0)``); a tile's outputs beyond ``OH × OW`` go to a scratch row."""
    co = m.shape[2]
    zero = b.dtype.type(0)
    scratch = np.empty(co, dtype=yi.dtype)
    for tile in range(th * tw):
        t = off + tile
        y0, x0 = 2 * (tile // tw), 2 * (tile % tw)
        right, down = x0 + 1 < ow, y0 + 1 < oh
        o00 = yi[y0 * ow + x0]
        o01 = yi[y0 * ow + x0 + 1] if right else scratch
        o10 = yi[(y0 + 1) * ow + x0] if down else scratch
        o11 = yi[(y0 + 1) * ow + x0 + 1] if (right and down) else scratch
        m0, m1, m2, m3 = m[0, t], m[1, t], m[2, t], m[3, t]
        m4, m5, m6, m7 = m[4, t], m[5, t], m[6, t], m[7, t]
        m8, m9, m10, m11 = m[8, t], m[9, t], m[10, t], m[11, t]
        m12, m13, m14, m15 = m[12, t], m[13, t], m[14, t], m[15, t]
        for o in range(co):
            # Aᵀ M: rows 0 + 1 + 2 and 1 − 2 − 3
            s0 = m0[o] + m4[o] + m8[o]
            s1 = m1[o] + m5[o] + m9[o]
            s2 = m2[o] + m6[o] + m10[o]
            s3 = m3[o] + m7[o] + m11[o]
            u0 = m4[o] - m8[o] - m12[o]
            u1 = m5[o] - m9[o] - m13[o]
            u2 = m6[o] - m10[o] - m14[o]
            u3 = m7[o] - m11[o] - m15[o]
            # (Aᵀ M) A: the same on columns, then the bias
            y00 = s0 + s1 + s2 + b[o]
            y01 = s1 - s2 - s3 + b[o]
            y10 = u0 + u1 + u2 + b[o]
            y11 = u1 - u2 - u3 + b[o]
            if relu:
                y00 = y00 if (y00 > 0 or y00 != y00) else zero
                y01 = y01 if (y01 > 0 or y01 != y01) else zero
                y10 = y10 if (y10 > 0 or y10 != y10) else zero
                y11 = y11 if (y11 > 0 or y11 != y11) else zero
            o00[o] = y00
            o01[o] = y01
            o10[o] = y10
            o11[o] = y11


@jit
def images_work(h, wd, c, co, pad, group, dtype_like):
    """One thread's arrays for :func:`images_into` on images (H, W, C_in) to C_out channels,
    ``group`` images per GEMM: ``xp`` the zero-bordered image (its border is never written,
    so it serves every image), ``v`` and ``m`` the transformed tiles and their products."""
    pt, pb, pl, pr = pad
    oh, ow = h + pt + pb - 2, wd + pl + pr - 2
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    xp = np.zeros((2 * th + 2, 2 * tw + 2, c), dtype=dtype_like.dtype)
    v = np.empty((16, group * th * tw, c), dtype=dtype_like.dtype)
    m = np.empty((16, group * th * tw, co), dtype=dtype_like.dtype)
    return xp, v, m


@jit
def _images(x, u, b, pad, relu, group, lo, hi, y, finite):
    """Images ``lo .. hi - 1`` into ``y`` (N, OH·OW, C_out), ``group`` images per GEMM;
    ``finite[i]`` is set false, and the image left for the caller, where an input value is
    NaN or infinite."""
    work = images_work(x.shape[1], x.shape[2], x.shape[3], u.shape[2], pad, group, x)
    images_into(x, u, b, pad, relu, lo, hi, work, y, finite)


@jit
def images_into(x, u, b, pad, relu, lo, hi, work, y, finite):
    """:func:`_images` with the arrays of :func:`images_work` (its ``group``)."""
    h, wd, c = x.shape[1:]
    pt, pb, pl, pr = pad
    oh, ow = h + pt + pb - 2, wd + pl + pr - 2
    th, tw = (oh + 1) // 2, (ow + 1) // 2
    tiles = th * tw
    xp, v, m = work
    group = v.shape[1] // tiles
    for i0 in range(lo, hi, group):
        i1 = min(i0 + group, hi)
        rows = 0
        for i in range(i0, i1):
            finite[i] = _pad_image(x[i], pt, pl, xp)
            if finite[i]:
                _input_transform(xp, th, tw, v, rows)
                rows += tiles
        for k in range(16):
            gemm(False, False, 1.0, v[k, :rows], u[k], 0.0, m[k, :rows])
        rows = 0
        for i in range(i0, i1):
            if finite[i]:
                _output_transform(m, b, relu, th, tw, oh, ow, y[i], rows)
                rows += tiles


@jit
def _images_chunk(x, u, b, pad, relu, group, bounds, y, finite, chunks, ch):
    """Thread ``ch``'s images, ``bounds[ch] .. bounds[ch + 1] - 1`` (:func:`run_chunks`)."""
    _images(x, u, b, pad, relu, group, bounds[ch], bounds[ch + 1], y, finite)


def winograd_images(x, w, b, pad, relu, bounds=None, y=None):
    """The compiled forward pass that :func:`winograd_forward_nb` and the convolution's
    numba twin call.

    Per image: copy into a zero-bordered buffer, transform every tile (vectorised over
    input channels), 16 single-threaded GEMMs, transform back with bias and ReLU while the
    products are in cache. Thread ``t`` takes images ``bounds[t] .. bounds[t + 1] - 1``
    (default: all on the calling thread). Images with a NaN or infinite input are left
    unwritten in ``y`` and reported.

    Returns
    -------
    y : ndarray, shape (N, OH, OW, C_out)
    finite : ndarray, shape (N,), bool
        False for the images that were not convolved.
    """
    n, h, wd, c = x.shape
    co = w.shape[3]
    pt, pb, pl, pr = pad
    oh, ow = h + pt + pb - 2, wd + pl + pr - 2
    if y is None:
        y = np.empty((n, max(oh, 0) * max(ow, 0), co), dtype=x.dtype)
    finite = np.ones(n, dtype=np.bool_)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"winograd: the 3x3 kernel is larger than the padded input {x.shape}")
    u = np.ascontiguousarray(winograd_filters(w))
    tiles = ((oh + 1) // 2) * ((ow + 1) // 2)
    group = max(1, GROUP_BYTES // (16 * tiles * (c + co) * x.itemsize))
    if bounds is None or len(bounds) == 2:
        _images(x, u, b, tuple(pad), relu, group, 0, n, y, finite)
    else:
        run_chunks(_images_chunk, len(bounds) - 1, x, u, b, tuple(pad), relu, group, bounds, y,
                   finite)  # fmt: skip
    return y.reshape(n, oh, ow, co), finite


def winograd_forward_nb(x, w, b, pad, relu):
    """numba twin of :func:`winograd_forward_np`: :func:`winograd_images`, and the NumPy twin
    for the images with a non-finite value, which it leaves."""
    y, finite = winograd_images(x, w, b, pad, relu)
    if not finite.all():
        y[~finite] = winograd_forward_np(x[~finite], w, b, pad, relu)
    return y


winograd_forward = pair(winograd_forward_np, winograd_forward_nb)
