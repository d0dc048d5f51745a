"""Deliberately naive loop oracles for convolution, transposed convolution, im2col and
max-pooling, in NCHW.

They are written differently from the kernels on purpose: NCHW instead of channels-last,
one output element at a time, padding by bounds checks instead of padded copies, and the
gradients by scattering each output's contribution back (the chain rule, term by term).
The transposed convolution goes one input pixel at a time, adding the pixel times the kernel
onto the output tap by tap, where its kernels multiply matrices and reuse col2im and the
convolution. Slow: use them on small shapes only. Notation as in :mod:`fastdl.kernels.conv`.
"""

from __future__ import annotations

import numpy as np


def out_size(h, w, kh, kw, stride, pad):
    pt, pb, pl, pr = pad
    return (h + pt + pb - kh) // stride + 1, (w + pl + pr - kw) // stride + 1


def taps(h, w, kh, kw, stride, pad, oy, ox):
    """Yield ``(i, j, y, x)``: kernel tap and input pixel, for pixels inside the image."""
    pt, _, pl, _ = pad
    for i in range(kh):
        for j in range(kw):
            y, x = oy * stride + i - pt, ox * stride + j - pl
            if 0 <= y < h and 0 <= x < w:
                yield i, j, y, x


def conv2d(x, w, b, stride, pad):
    """``y[n, o, oy, ox] = b[o] + Σ x[n, c, y, x] · w[o, c, i, j]``; x (N, C_in, H, W)."""
    n, c, h, wd = x.shape
    co, _, kh, kw = w.shape
    oh, ow = out_size(h, wd, kh, kw, stride, pad)
    y = np.zeros((n, co, oh, ow), dtype=np.float64)
    for a in range(n):
        for o in range(co):
            for oy in range(oh):
                for ox in range(ow):
                    s = float(b[o])
                    for i, j, yy, xx in taps(h, wd, kh, kw, stride, pad, oy, ox):
                        for q in range(c):
                            s += float(x[a, q, yy, xx]) * float(w[o, q, i, j])
                    y[a, o, oy, ox] = s
    return y


def conv2d_grads(x, w, dy, stride, pad):
    """``(dx, dw, db)`` of :func:`conv2d` for output gradient ``dy`` (N, C_out, OH, OW)."""
    n, c, h, wd = x.shape
    co, _, kh, kw = w.shape
    oh, ow = dy.shape[2:]
    dx = np.zeros(x.shape, dtype=np.float64)
    dw = np.zeros(w.shape, dtype=np.float64)
    db = np.zeros(co, dtype=np.float64)
    for a in range(n):
        for o in range(co):
            for oy in range(oh):
                for ox in range(ow):
                    g = float(dy[a, o, oy, ox])
                    db[o] += g
                    for i, j, yy, xx in taps(h, wd, kh, kw, stride, pad, oy, ox):
                        for q in range(c):
                            dx[a, q, yy, xx] += g * float(w[o, q, i, j])
                            dw[o, q, i, j] += g * float(x[a, q, yy, xx])
    return dx, dw, db


def conv_transpose2d(x, w, b, stride, pad, output_padding):
    """Transposed convolution by scattering: every input pixel ``x[n, c, y, x]`` adds
    ``x[n, c, y, x] · w[c, :, i, j]`` onto output pixel ``(y·S + i - PT, x·S + j - PL)``,
    one tap at a time, dropping taps outside the output. NCHW ``x`` ``(N, C_in, H, W)``,
    PyTorch-layout ``w`` ``(C_in, C_out, KH, KW)``; output ``(N, C_out, OH, OW)`` with
    ``OH = (H - 1)·S - PT - PB + KH + OPH`` (``output_padding = (OPH, OPW)``)."""
    n, c, h, wd = x.shape
    _, co, kh, kw = w.shape
    pt, pb, pl, pr = pad
    oh = (h - 1) * stride - pt - pb + kh + output_padding[0]
    ow = (wd - 1) * stride - pl - pr + kw + output_padding[1]
    y = np.zeros((n, co, oh, ow), dtype=np.float64)
    for a in range(n):
        for o in range(co):
            y[a, o] = float(b[o])
        for q in range(c):
            for yy in range(h):
                for xx in range(wd):
                    v = float(x[a, q, yy, xx])
                    for o, i, j, oy, ox in scatter_taps(oh, ow, co, kh, kw, stride, pad, yy, xx):
                        y[a, o, oy, ox] += v * float(w[q, o, i, j])
    return y


def scatter_taps(oh, ow, co, kh, kw, stride, pad, yy, xx):
    """Yield ``(o, i, j, oy, ox)``: output channel, kernel tap and the output pixel that input
    pixel ``(yy, xx)`` reaches through it, for output pixels inside the ``oh × ow`` output."""
    pt, _, pl, _ = pad
    for o in range(co):
        for i in range(kh):
            for j in range(kw):
                oy, ox = yy * stride + i - pt, xx * stride + j - pl
                if 0 <= oy < oh and 0 <= ox < ow:
                    yield o, i, j, oy, ox


def conv_transpose2d_grads(x, w, dy, stride, pad):
    """``(dx, dw, db)`` of :func:`conv_transpose2d` for output gradient ``dy``
    ``(N, C_out, OH, OW)``: each scattered term ``x · w`` sends ``dy`` at the pixel it
    reached back to both of its factors (the chain rule, term by term)."""
    n, c, h, wd = x.shape
    _, co, kh, kw = w.shape
    oh, ow = dy.shape[2:]
    dx = np.zeros(x.shape, dtype=np.float64)
    dw = np.zeros(w.shape, dtype=np.float64)
    db = np.zeros(co, dtype=np.float64)
    for a in range(n):
        for o in range(co):
            for oy in range(oh):
                for ox in range(ow):
                    db[o] += float(dy[a, o, oy, ox])
        for q in range(c):
            for yy in range(h):
                for xx in range(wd):
                    v = float(x[a, q, yy, xx])
                    for o, i, j, oy, ox in scatter_taps(oh, ow, co, kh, kw, stride, pad, yy, xx):
                        g = float(dy[a, o, oy, ox])
                        dx[a, q, yy, xx] += g * float(w[q, o, i, j])
                        dw[q, o, i, j] += g * v
    return dx, dw, db


def im2col(x, kh, kw, stride, pad):
    """Channels-last im2col of NHWC ``x``: ``(N, OH·OW, KH·KW·C)``, entry by entry."""
    n, h, wd, c = x.shape
    oh, ow = out_size(h, wd, kh, kw, stride, pad)
    col = np.zeros((n, oh * ow, kh * kw * c), dtype=x.dtype)
    for a in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for i, j, yy, xx in taps(h, wd, kh, kw, stride, pad, oy, ox):
                    for q in range(c):
                        col[a, oy * ow + ox, (i * kw + j) * c + q] = x[a, yy, xx, q]
    return col


def col2im(col, h, wd, kh, kw, stride, pad):
    """Adjoint of :func:`im2col`: NHWC ``(N, H, W, C)``, entry by entry."""
    n = col.shape[0]
    c = col.shape[2] // (kh * kw)
    oh, ow = out_size(h, wd, kh, kw, stride, pad)
    x = np.zeros((n, h, wd, c), dtype=np.float64)
    for a in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for i, j, yy, xx in taps(h, wd, kh, kw, stride, pad, oy, ox):
                    for q in range(c):
                        x[a, yy, xx, q] += col[a, oy * ow + ox, (i * kw + j) * c + q]
    return x


def maxpool(x, size, stride):
    """``(y, dx_of)``: max of each window of NCHW ``x``; ``dx_of(dy)`` gives the gradient."""
    n, c, h, w = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    y = np.zeros((n, c, oh, ow), dtype=np.float64)
    where = {}
    for a in range(n):
        for q in range(c):
            for oy in range(oh):
                for ox in range(ow):
                    best, at = -np.inf, None
                    for i in range(size):
                        for j in range(size):
                            v = x[a, q, oy * stride + i, ox * stride + j]
                            if at is None or v > best:
                                best, at = v, (oy * stride + i, ox * stride + j)
                    y[a, q, oy, ox] = best
                    where[a, q, oy, ox] = at

    def dx_of(dy):
        dx = np.zeros(x.shape, dtype=np.float64)
        for (a, q, oy, ox), (yy, xx) in where.items():
            dx[a, q, yy, xx] += dy[a, q, oy, ox]
        return dx

    return y, dx_of


def matmul(a, b):
    """``(B, M, K) @ (B, K, N)`` by triple loops over each matrix."""
    nb, m, k = a.shape
    n = b.shape[2]
    out = np.zeros((nb, m, n), dtype=np.float64)
    for t in range(nb):
        for i in range(m):
            for j in range(n):
                out[t, i, j] = sum(float(a[t, i, p]) * float(b[t, p, j]) for p in range(k))
    return out
