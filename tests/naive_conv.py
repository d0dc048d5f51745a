"""Deliberately naive loop oracles for convolution, im2col and max-pooling, in NCHW.

They are written differently from the kernels on purpose: NCHW instead of channels-last,
one output element at a time, padding by bounds checks instead of padded copies, and the
gradients by scattering each output's contribution back (the chain rule, term by term).
Slow: use them on small shapes only. Notation as in :mod:`fastdl.kernels.conv`.
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
