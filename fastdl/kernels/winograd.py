"""Winograd's F(2×2, 3×3) and F(4×4, 3×3): a 3×3 stride-1 convolution with 2.25× or 4×
fewer multiplications.

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

F(4×4, 3×3) (the same paper) takes 6 × 6 patches for 4 × 4 output tiles, with::

    Bᵀ = | 4  0 -5  0  1  0 |    G = |  ¼     0     0  |    Aᵀ = | 1  1  1  1  1  0 |
         | 0 -4 -4  1  1  0 |        | -⅙    -⅙    -⅙  |         | 0  1 -1  2 -2  0 |
         | 0  4 -4 -1  1  0 |        | -⅙     ⅙    -⅙  |         | 0  1  1  4  4  0 |
         | 0 -2 -1  2  1  0 |        | 1⁄24  1⁄12   ⅙  |         | 0  1 -1  8 -8  1 |
         | 0  2 -1 -2  1  0 |        | 1⁄24 -1⁄12   ⅙  |
         | 0  4  0 -5  0  1 |        |  0     0     1  |

36 products for 16 outputs: 36·C_in multiply-adds against the direct sum's 144·C_in. Its
coefficients up to 8 round more: float32 results are within about 2e-6 of the sum of the
terms' magnitudes (F(2×2): 1e-7), inside the im2col tolerance of 1e-5, and ``U`` is made in
float64 and rounded once. :func:`tile_size` picks m = 4 unless its tiles make more products
than m = 2's (outputs of two rows or columns); the compiled twin reads m from ``U``'s 16 or
36 positions.

An infinite or NaN input mixes, through ``Bᵀ d B``, into all the outputs of its tile
(``inf − inf``), where the direct sum keeps it to the outputs that see it. So the compiled
twin reports the images it saw a non-finite value in, and :mod:`fastdl.kernels.conv`
convolves those directly; weights with a non-finite value never come here. The transforms
add up to a few neighbouring values, so finite values within a factor of about 16 of the
float32 maximum (≈ 2e37 and above; for F(4×4), whose transforms scale by up to about 100
and 400, ≈ 1e34) can overflow here where the direct sum would not.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fastdl.kernels._blas import gemm
from fastdl.kernels._jit import jit, pair
from fastdl.kernels._threads import run_chunks
from fastdl.kernels.pool import _pool_images

__all__ = [
    "winograd_forward",
    "winograd_images",
    "images_work",
    "images_into",
    "winograd_filters",
    "winograd_weight_grad_np",
    "weight_grad_add",
    "weight_grad_from_u",
    "tile_size",
    "TRANSFORMS",
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

BT4 = np.array(
    [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
     [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]], dtype=np.float64
)  # fmt: skip
G4 = np.array(
    [[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
     [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]], dtype=np.float64
)  # fmt: skip
AT4 = np.array(
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    dtype=np.float64,
)

#: ``(Bᵀ, G, Aᵀ)`` of F(m × m, 3 × 3) by the output tile's side m.
TRANSFORMS = {2: (BT, G, AT), 4: (BT4, G4, AT4)}


def _tiles(oh: int, ow: int, m: int = 2) -> tuple[int, int]:
    """``(TH, TW)``: m × m output tiles covering ``OH × OW``."""
    return -(-oh // m), -(-ow // m)


def tile_size(oh: int, ow: int) -> int:
    """The output tile's side m, 2 or 4, for an ``OH × OW`` output: 4 unless its tiles
    would make more products than F(2×2, 3×3)'s (``36·⌈OH/4⌉·⌈OW/4⌉`` against
    ``16·⌈OH/2⌉·⌈OW/2⌉``), as for outputs of 2 rows or columns."""
    f2 = 16 * ((oh + 1) // 2) * ((ow + 1) // 2)
    f4 = 36 * ((oh + 3) // 4) * ((ow + 3) // 4)
    return 4 if f4 < f2 else 2


def winograd_filters(w: np.ndarray, m: int = 2) -> np.ndarray:
    """``U = G g Gᵀ`` for every channel pair: ``w`` (3, 3, C_in, C_out) → ((m + 2)², C_in,
    C_out), the positions of the (m + 2) × (m + 2) transformed kernel in row-major order."""
    g = TRANSFORMS[m][1]  # in float64, then rounded once: ⅙ and 1⁄24 are inexact
    a, (c, co) = m + 2, w.shape[2:]
    gw = (g @ w.astype(np.float64).reshape(3, 3 * c * co)).reshape(a, 3, c * co)  # G g
    u = np.matmul(g, gw)  # (G g) Gᵀ for each row α: two GEMMs, 7x faster than einsum's loops
    return u.reshape(a * a, c, co).astype(w.dtype)


def winograd_forward_np(x, w, b, pad, relu):
    """3×3 stride-1 convolution by F(m×m, 3×3), m = :func:`tile_size`, with bias and
    optional ReLU (NumPy twin).

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
    m = tile_size(oh, ow)
    a = m + 2  # the side of an input patch and of a transformed tile
    th, tw = _tiles(oh, ow, m)
    bt, at = (t.astype(x.dtype) for t in TRANSFORMS[m][::2])
    # Zero-padded so that every tile's a × a patch is inside (an OH or OW that is not a
    # multiple of m reads rows or columns of zeros more, whose outputs are cut off at the end).
    xp = np.zeros((n, m * th + 2, m * tw + 2, c), dtype=x.dtype)
    xp[:, pt : pt + h, pl : pl + wd] = x
    d = sliding_window_view(xp, (a, a), axis=(1, 2))[:, ::m, ::m]  # (N, TH, TW, C, a, a)
    v = np.einsum("ai,ntwcij,bj->abntwc", bt, d, bt).reshape(a * a, n * th * tw, c)
    prod = v @ winograd_filters(w, m)  # (a², tiles, C_out): one product per position ξ
    y = np.einsum("pa,abto,qb->pqto", at, prod.reshape(a, a, -1, co), at)  # (m, m, tiles, C_out)
    y = y.reshape(m, m, n, th, tw, co).transpose(2, 3, 0, 4, 1, 5)  # (N, TH, m, TW, m, C_out)
    y = y.reshape(n, m * th, m * tw, co)[:, :oh, :ow] + b
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
def _input_transform4(xp, th, tw, v, off, strip):
    """F(4×4, 3×3)'s :func:`_input_transform`: ``v[ξ, off + t, :] = (Bᵀ d B)[ξ]`` for the
    6 × 6 patch ``d`` of ``xp`` (HP, WP, C) under each tile ``t``, ξ = 6·i + j over the 36
    positions.

    Both passes take Lavin & Gray's ``Bᵀ`` rows from shared sums::

        r0 = 4·d0 − 5·d2 + d4
        r1 = (d4 − 4·d2) + (d3 − 4·d1)     r2 = (d4 − 4·d2) − (d3 − 4·d1)
        r3 = (d4 − d2) + 2·(d3 − d1)       r4 = (d4 − d2) − 2·(d3 − d1)
        r5 = 4·d1 − 5·d3 + d5

    ``Bᵀ d`` is done for a whole row of tiles at once, on the six image rows under it, into
    ``strip`` (6, WP·C): one loop of WP·C, where a loop per tile column would run over the C
    channels only and cost more to enter than to run. Then ``(Bᵀ d) B`` for each tile.
    """
    hp, wp, c = xp.shape
    four, five, two = xp.dtype.type(4), xp.dtype.type(5), xp.dtype.type(2)
    rows = xp.reshape(hp, wp * c)
    q0, q1, q2, q3, q4, q5 = strip[0], strip[1], strip[2], strip[3], strip[4], strip[5]
    for ty in range(th):
        r = 4 * ty
        d0, d1, d2, d3, d4, d5 = (
            rows[r],
            rows[r + 1],
            rows[r + 2],
            rows[r + 3],
            rows[r + 4],
            rows[r + 5],
        )
        for k in range(wp * c):  # Bᵀ d on the strip's columns
            a, bb = d4[k] - four * d2[k], d3[k] - four * d1[k]
            e, f = d4[k] - d2[k], two * (d3[k] - d1[k])
            q0[k] = four * d0[k] - five * d2[k] + d4[k]
            q1[k] = a + bb
            q2[k] = a - bb
            q3[k] = e + f
            q4[k] = e - f
            q5[k] = four * d1[k] - five * d3[k] + d5[k]
        t0 = off + ty * tw
        for i in range(6):  # (Bᵀ d) B on row i of each tile of the strip: ξ = 6·i + j
            qi = strip[i]
            v0, v1, v2, v3, v4, v5 = (
                v[6 * i],
                v[6 * i + 1],
                v[6 * i + 2],
                v[6 * i + 3],
                v[6 * i + 4],
                v[6 * i + 5],
            )
            for tx in range(tw):
                col = 4 * tx * c  # the tile's first column in the strip
                t = t0 + tx
                for ch in range(c):
                    s0, s1, s2 = qi[col + ch], qi[col + c + ch], qi[col + 2 * c + ch]
                    s3, s4, s5 = qi[col + 3 * c + ch], qi[col + 4 * c + ch], qi[col + 5 * c + ch]
                    a, bb = s4 - four * s2, s3 - four * s1
                    e, f = s4 - s2, two * (s3 - s1)
                    v0[t, ch] = four * s0 - five * s2 + s4
                    v1[t, ch] = a + bb
                    v2[t, ch] = a - bb
                    v3[t, ch] = e + f
                    v4[t, ch] = e - f
                    v5[t, ch] = four * s1 - five * s3 + s5


@jit
def _output_transform4(m, b, relu, th, tw, oh, ow, yi, off, half):
    """F(4×4, 3×3)'s :func:`_output_transform`: ``Aᵀ M A`` per tile from the 36 products
    ``m`` (36, rows, C_out), through ``half`` (4, 6, C_out), the tile's ``Aᵀ M``; then bias
    and ReLU. Each pass takes Aᵀ's rows from shared sums (``s = m1 + m2``, ``d = m1 − m2``,
    ``S = m3 + m4``, ``D = m3 − m4``)::

        o0 = m0 + s + S     o1 = d + 2·D     o2 = s + 4·S     o3 = d + 8·D + m5
    """
    co = m.shape[2]
    zero = b.dtype.type(0)
    two, four, eight = b.dtype.type(2), b.dtype.type(4), b.dtype.type(8)
    scratch = np.empty(co, dtype=yi.dtype)
    for tile in range(th * tw):
        t = off + tile
        y0, x0 = 4 * (tile // tw), 4 * (tile % tw)
        for j in range(6):  # Aᵀ M on column j
            m0, m1, m2 = m[j, t], m[6 + j, t], m[12 + j, t]
            m3, m4, m5 = m[18 + j, t], m[24 + j, t], m[30 + j, t]
            h0, h1, h2, h3 = half[0, j], half[1, j], half[2, j], half[3, j]
            for o in range(co):
                s, d = m1[o] + m2[o], m1[o] - m2[o]
                ss, dd = m3[o] + m4[o], m3[o] - m4[o]
                h0[o] = m0[o] + s + ss
                h1[o] = d + two * dd
                h2[o] = s + four * ss
                h3[o] = d + eight * dd + m5[o]
        for i in range(4):  # (Aᵀ M) A on row i: output row y0 + i
            if y0 + i >= oh:
                break
            row = (y0 + i) * ow + x0
            o0 = yi[row]
            o1 = yi[row + 1] if x0 + 1 < ow else scratch
            o2 = yi[row + 2] if x0 + 2 < ow else scratch
            o3 = yi[row + 3] if x0 + 3 < ow else scratch
            n0, n1, n2 = half[i, 0], half[i, 1], half[i, 2]
            n3, n4, n5 = half[i, 3], half[i, 4], half[i, 5]
            for o in range(co):
                s, d = n1[o] + n2[o], n1[o] - n2[o]
                ss, dd = n3[o] + n4[o], n3[o] - n4[o]
                y_0 = n0[o] + s + ss + b[o]
                y_1 = d + two * dd + b[o]
                y_2 = s + four * ss + b[o]
                y_3 = d + eight * dd + n5[o] + b[o]
                if relu:
                    y_0 = y_0 if (y_0 > 0 or y_0 != y_0) else zero
                    y_1 = y_1 if (y_1 > 0 or y_1 != y_1) else zero
                    y_2 = y_2 if (y_2 > 0 or y_2 != y_2) else zero
                    y_3 = y_3 if (y_3 > 0 or y_3 != y_3) else zero
                o0[o] = y_0
                o1[o] = y_1
                o2[o] = y_2
                o3[o] = y_3


def winograd_weight_grad_np(x, dz, pad):
    """The weight gradient of a 3×3 stride-1 convolution by F(m×m, 3×3), m =
    :func:`tile_size` (NumPy twin).

    The forward pass is linear in each transformed kernel ``U = G g Gᵀ``, so with ``Z`` the
    transform ``A dY Aᵀ`` of each output tile's gradient ``dY`` (m × m, zeros beyond the
    output) and ``V = Bᵀ d B`` the forward pass's transformed input patches::

        ∂L/∂U[ξ] = Σ_tiles V[ξ]ᵀ Z[ξ]      (C_in, C_out) for each of the (m + 2)² positions ξ
        ∂L/∂g    = Gᵀ (∂L/∂U) G

    Parameters
    ----------
    x : ndarray, shape (N, H, W, C_in)
    dz : ndarray, shape (N, OH, OW, C_out)
        The gradient of the convolution's output before bias and ReLU.
    pad : tuple of 4 int

    Returns
    -------
    dw : ndarray, shape (3, 3, C_in, C_out), dtype of ``x``
    """
    n, h, wd, c = x.shape
    co = dz.shape[3]
    pt, pb, pl, pr = pad
    oh, ow = h + pt + pb - 2, wd + pl + pr - 2
    m = tile_size(oh, ow)
    a = m + 2
    th, tw = _tiles(oh, ow, m)
    bt, g, at = (t.astype(x.dtype) for t in TRANSFORMS[m])
    xp = np.zeros((n, m * th + 2, m * tw + 2, c), dtype=x.dtype)
    xp[:, pt : pt + h, pl : pl + wd] = x
    d = sliding_window_view(xp, (a, a), axis=(1, 2))[:, ::m, ::m]  # (N, TH, TW, C, a, a)
    v = np.einsum("ai,ntwcij,bj->abntwc", bt, d, bt).reshape(a * a, n * th * tw, c)
    dzp = np.zeros((n, m * th, m * tw, co), dtype=x.dtype)
    dzp[:, :oh, :ow] = dz
    tiles = dzp.reshape(n, th, m, tw, m, co)  # dY of each tile: (N, TH, i, TW, j, C_out)
    z = np.einsum("ip,ntiwjo,jq->pqntwo", at, tiles, at).reshape(a * a, n * th * tw, co)
    du = np.matmul(v.transpose(0, 2, 1), z)  # (a², C_in, C_out): ∂L/∂U
    return np.einsum("ai,abco,bj->ijco", g, du.reshape(a, a, c, co), g)


@jit
def _grad_transform(dz, th, tw, oh, ow, z, off, zero_row):
    """F(2×2, 3×3)'s ``z[ξ, off + t, :] = (A dY Aᵀ)[ξ]`` for each tile's output gradient
    ``dY`` (2 × 2 rows of ``dz`` (OH·OW, C_out); ``zero_row`` beyond the output). ``A`` is
    ``Aᵀ``'s transpose: ``(A y) = (y0, y0 + y1, y0 − y1, −y1)``."""
    co = dz.shape[1]
    for tile in range(th * tw):
        t = off + tile
        y0, x0 = 2 * (tile // tw), 2 * (tile % tw)
        for j in range(2):  # A dY on column j of the tile, into rows ξ = 4·p + j
            col = x0 + j
            r0 = dz[y0 * ow + col] if col < ow else zero_row
            r1 = dz[(y0 + 1) * ow + col] if (col < ow and y0 + 1 < oh) else zero_row
            q0, q1, q2, q3 = z[j, t], z[4 + j, t], z[8 + j, t], z[12 + j, t]
            for o in range(co):
                q0[o] = r0[o]
                q1[o] = r0[o] + r1[o]
                q2[o] = r0[o] - r1[o]
                q3[o] = -r1[o]
        for p in range(4):  # (A dY) Aᵀ on row p, in place: columns 0 and 1 to 0 … 3
            q0, q1, q2, q3 = z[4 * p, t], z[4 * p + 1, t], z[4 * p + 2, t], z[4 * p + 3, t]
            for o in range(co):
                s0, s1 = q0[o], q1[o]
                q1[o] = s0 + s1
                q2[o] = s0 - s1
                q3[o] = -s1


@jit
def _grad_transform4(dz, th, tw, oh, ow, z, off, zero_row):
    """F(4×4, 3×3)'s :func:`_grad_transform`: ``A y = (y0, y0 + y1 + y2 + y3,
    y0 − y1 + y2 − y3, y0 + 2·y1 + 4·y2 + 8·y3, y0 − 2·y1 + 4·y2 − 8·y3, y3)``."""
    co = dz.shape[1]
    two, four, eight = z.dtype.type(2), z.dtype.type(4), z.dtype.type(8)
    for tile in range(th * tw):
        t = off + tile
        y0, x0 = 4 * (tile // tw), 4 * (tile % tw)
        for j in range(4):  # A dY on column j of the tile, into rows ξ = 6·p + j
            col = x0 + j
            inside = col < ow
            r0 = dz[y0 * ow + col] if inside else zero_row
            r1 = dz[(y0 + 1) * ow + col] if (inside and y0 + 1 < oh) else zero_row
            r2 = dz[(y0 + 2) * ow + col] if (inside and y0 + 2 < oh) else zero_row
            r3 = dz[(y0 + 3) * ow + col] if (inside and y0 + 3 < oh) else zero_row
            q0, q1, q2 = z[j, t], z[6 + j, t], z[12 + j, t]
            q3, q4, q5 = z[18 + j, t], z[24 + j, t], z[30 + j, t]
            for o in range(co):
                e, f = r0[o] + r2[o], r1[o] + r3[o]
                e4, f2 = r0[o] + four * r2[o], two * r1[o] + eight * r3[o]
                q0[o] = r0[o]
                q1[o] = e + f
                q2[o] = e - f
                q3[o] = e4 + f2
                q4[o] = e4 - f2
                q5[o] = r3[o]
        for p in range(6):  # (A dY) Aᵀ on row p, in place: columns 0 … 3 to 0 … 5
            q0, q1, q2 = z[6 * p, t], z[6 * p + 1, t], z[6 * p + 2, t]
            q3, q4, q5 = z[6 * p + 3, t], z[6 * p + 4, t], z[6 * p + 5, t]
            for o in range(co):
                s0, s1, s2, s3 = q0[o], q1[o], q2[o], q3[o]
                e, f = s0 + s2, s1 + s3
                e4, f2 = s0 + four * s2, two * s1 + eight * s3
                q1[o] = e + f
                q2[o] = e - f
                q3[o] = e4 + f2
                q4[o] = e4 - f2
                q5[o] = s3


@jit
def weight_grad_add(x, dz, pad, count, work, zero_row, du):
    """Add the ``count`` images of ``x`` (count, H, W, C_in) and their output gradients
    ``dz`` (count, OH·OW, C_out) into ``du`` (a², C_in, C_out), ``∂L/∂U`` of
    :func:`winograd_weight_grad_np`: both transforms into :func:`images_work`'s ``v`` and
    ``prod`` (which must hold ``count`` images), then one GEMM per position ξ. The images
    must be finite (the caller checks: a NaN or an infinity would spread over its tiles)."""
    h, wd, c = x.shape[1:]
    pt, pb, pl, pr = pad
    oh, ow = h + pt + pb - 2, wd + pl + pr - 2
    xp, v, prod, strip, half = work
    a2 = v.shape[0]
    m = 4 if a2 == 36 else 2
    th, tw = (oh + m - 1) // m, (ow + m - 1) // m
    tiles = th * tw
    for i in range(count):
        _pad_image(x[i], pt, pl, xp)
        if m == 4:
            _input_transform4(xp, th, tw, v, i * tiles, strip)
            _grad_transform4(dz[i], th, tw, oh, ow, prod, i * tiles, zero_row)
        else:
            _input_transform(xp, th, tw, v, i * tiles)
            _grad_transform(dz[i], th, tw, oh, ow, prod, i * tiles, zero_row)
    rows = count * tiles
    for k in range(a2):
        gemm(True, False, 1.0, v[k, :rows], prod[k, :rows], 1.0, du[k])


def weight_grad_from_u(du: np.ndarray) -> np.ndarray:
    """``Gᵀ (∂L/∂U) G``: ``du`` (a², C_in, C_out) → the weight gradient (3, 3, C_in, C_out),
    in float64 and rounded once."""
    a = int(round(du.shape[0] ** 0.5))
    g = TRANSFORMS[a - 2][1]
    c, co = du.shape[1:]
    gu = (g.T @ du.astype(np.float64).reshape(a, a * c * co)).reshape(3, a, c * co)  # Gᵀ dU
    return np.matmul(g.T, gu).reshape(3, 3, c, co).astype(du.dtype)  # (Gᵀ dU) G


@jit
def images_work(h, wd, c, co, pad, group, m, dtype_like):
    """One thread's arrays for :func:`images_into` on images (H, W, C_in) to C_out channels
    by F(m×m, 3×3), ``group`` images per GEMM: ``xp`` the zero-bordered image (its border is
    never written, so it serves every image), ``v`` and ``prod`` the transformed tiles and
    their products; for F(4×4), the scratch of :func:`_input_transform4` (``strip``) and
    :func:`_output_transform4` (``half``)."""
    pt, pb, pl, pr = pad
    oh, ow = h + pt + pb - 2, wd + pl + pr - 2
    th, tw = (oh + m - 1) // m, (ow + m - 1) // m
    a2 = (m + 2) * (m + 2)
    dt = dtype_like.dtype
    xp = np.zeros((m * th + 2, m * tw + 2, c), dtype=dt)
    v = np.empty((a2, group * th * tw, c), dtype=dt)
    prod = np.empty((a2, group * th * tw, co), dtype=dt)
    four = m == 4
    strip = np.empty((6 if four else 0, (m * tw + 2) * c), dtype=dt)
    half = np.empty((4 if four else 0, 6, co), dtype=dt)
    return xp, v, prod, strip, half


@jit
def _images(x, u, b, pad, relu, group, lo, hi, y, finite, pool, yp):
    """Images ``lo .. hi - 1`` into ``y`` (N, OH·OW, C_out), ``group`` images per GEMM, by
    F(m×m, 3×3) with m from the filters ``u`` (16 or 36 positions); ``finite[i]`` is set
    false, and the image left for the caller, where an input value is NaN or infinite.

    With ``yp`` not empty, each group's max-pool (window and stride ``pool``) goes into
    ``yp`` (N, C_out, PH·PW) while the group's output is in cache (the pool of an image left
    for the caller is left too)."""
    m = 4 if u.shape[0] == 36 else 2
    h, wd, c = x.shape[1:]
    work = images_work(h, wd, c, u.shape[2], pad, group, m, x)
    if yp.shape[0] == 0:
        images_into(x, u, b, pad, relu, lo, hi, work, y, finite)
        return
    pt, pb, pl, pr = pad
    y4 = y.reshape(y.shape[0], h + pt + pb - 2, wd + pl + pr - 2, y.shape[2])
    no_idx = np.empty((0, yp.shape[1], yp.shape[2]), dtype=np.int32)
    for i0 in range(lo, hi, group):
        i1 = min(i0 + group, hi)
        images_into(x, u, b, pad, relu, i0, i1, work, y, finite)
        _pool_images(y4, pool[0], pool[1], i0, i1, yp, no_idx)


@jit
def images_into(x, u, b, pad, relu, lo, hi, work, y, finite):
    """:func:`_images` with the arrays of :func:`images_work` (its ``group`` and m)."""
    h, wd, c = x.shape[1:]
    pt, pb, pl, pr = pad
    oh, ow = h + pt + pb - 2, wd + pl + pr - 2
    m = 4 if u.shape[0] == 36 else 2
    th, tw = (oh + m - 1) // m, (ow + m - 1) // m
    tiles = th * tw
    xp, v, prod, strip, half = work
    group = v.shape[1] // tiles
    for i0 in range(lo, hi, group):
        i1 = min(i0 + group, hi)
        rows = 0
        for i in range(i0, i1):
            finite[i] = _pad_image(x[i], pt, pl, xp)
            if finite[i]:
                if m == 4:
                    _input_transform4(xp, th, tw, v, rows, strip)
                else:
                    _input_transform(xp, th, tw, v, rows)
                rows += tiles
        for k in range(u.shape[0]):
            gemm(False, False, 1.0, v[k, :rows], u[k], 0.0, prod[k, :rows])
        rows = 0
        for i in range(i0, i1):
            if finite[i]:
                if m == 4:
                    _output_transform4(prod, b, relu, th, tw, oh, ow, y[i], rows, half)
                else:
                    _output_transform(prod, b, relu, th, tw, oh, ow, y[i], rows)
                rows += tiles


@jit
def _images_chunk(x, u, b, pad, relu, group, bounds, y, finite, pool, yp, chunks, ch):
    """Thread ``ch``'s images, ``bounds[ch] .. bounds[ch + 1] - 1`` (:func:`run_chunks`)."""
    _images(x, u, b, pad, relu, group, bounds[ch], bounds[ch + 1], y, finite, pool, yp)


def winograd_images(x, w, b, pad, relu, bounds=None, y=None, pool=(0, 0), yp=None):
    """The compiled forward pass that :func:`winograd_forward_nb` and the convolution's
    numba twin call.

    Per image: copy into a zero-bordered buffer, transform every tile (vectorised over
    input channels), 16 single-threaded GEMMs, transform back with bias and ReLU while the
    products are in cache. Thread ``t`` takes images ``bounds[t] .. bounds[t + 1] - 1``
    (default: all on the calling thread). Images with a NaN or infinite input are left
    unwritten in ``y`` and reported. With ``yp`` (N, C_out, PH·PW), also the max-pool of the
    output (window and stride ``pool``), group by group while it is in cache.

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
    m = tile_size(oh, ow)
    u = np.ascontiguousarray(winograd_filters(w, m))
    tiles = -(-oh // m) * -(-ow // m)
    group = max(1, GROUP_BYTES // ((m + 2) ** 2 * tiles * (c + co) * x.itemsize))
    if yp is None:
        yp = np.empty((0, 0, 0), dtype=x.dtype)
    pool = (int(pool[0]), int(pool[1]))
    if bounds is None or len(bounds) == 2:
        _images(x, u, b, tuple(pad), relu, group, 0, n, y, finite, pool, yp)
    else:
        run_chunks(_images_chunk, len(bounds) - 1, x, u, b, tuple(pad), relu, group, bounds, y,
                   finite, pool, yp)  # fmt: skip
    return y.reshape(n, oh, ow, co), finite


def winograd_forward_nb(x, w, b, pad, relu):
    """numba twin of :func:`winograd_forward_np`: :func:`winograd_images`, and the NumPy twin
    for the images with a non-finite value, which it leaves."""
    y, finite = winograd_images(x, w, b, pad, relu)
    if not finite.all():
        y[~finite] = winograd_forward_np(x[~finite], w, b, pad, relu)
    return y


winograd_forward = pair(winograd_forward_np, winograd_forward_nb)
