"""A deliberately naive loop oracle for translating images (:mod:`fastdl.kernels.augment`).

Written differently from the kernels on purpose: it *scatters* — every input pixel is sent
to where it lands, one at a time, onto an output filled beforehand — where the NumPy twin
gathers each output pixel from its source and the numba twin copies flat runs. Slow: small
shapes only.
"""

from __future__ import annotations

import numpy as np


def translate(x, shifts, fill):
    """``x`` (N, C, H, W) moved by ``shifts[n] = (dy, dx)``; vacated pixels ``fill[n, c]``."""
    n, c, h, w = x.shape
    out = np.empty(x.shape, dtype=x.dtype)
    for b in range(n):
        dy, dx = int(shifts[b][0]), int(shifts[b][1])
        for ch in range(c):
            out[b, ch] = fill[b][ch]
            for i in range(h):
                for j in range(w):
                    ti, tj = i + dy, j + dx  # where pixel (i, j) lands
                    if 0 <= ti < h and 0 <= tj < w:
                        out[b, ch, ti, tj] = x[b, ch, i, j]
    return out
