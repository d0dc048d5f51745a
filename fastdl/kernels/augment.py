"""Image augmentation kernels: translating each image of a batch by whole pixels.

Notation
--------
N      images in the batch
C      channels
H, W   image height and width
dy, dx the shift of one image, in pixels: down and to the right when positive

The output pixel ``(i, j)`` of image ``n``, channel ``c`` is the input pixel
``(i − dy, j − dx)``, and ``fill[n, c]`` where that pixel lies outside the image::

    y[n, c, i, j] = x[n, c, i − dy, j − dx]   if 0 <= i − dy < H and 0 <= j − dx < W
                  = fill[n, c]                 otherwise

so the content moves by ``(dy, dx)`` and the strip it leaves is filled, as torchvision's
``affine(..., translate=(dx, dy))`` and Keras's ``RandomTranslation(fill_mode="constant")``
do for whole-pixel shifts (neither interpolates then). A shift of ``H`` rows or ``W``
columns or more leaves only ``fill``. Values are copied, never computed: both twins give the
same bits (NaN and infinities included).

The NumPy twin gathers every output pixel at once from its source index (clipped into the
image) and puts ``fill`` where the source lies outside. The numba twin sees each plane flat,
where the move is one contiguous copy, and then fills what the copy did not reach, one
image per thread for large batches (:data:`SERIAL_MAX_SIZE`).
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels._jit import jit, pair
from fastdl.kernels._threads import chunk_bounds, n_chunks, run_chunks

__all__ = ["translate", "SERIAL_MAX_SIZE"]

#: Batches with fewer elements are translated on one thread, without waking the thread pool.
#: A translation is one pass of copies, bound by memory: on the 2-core reference machine
#: (shared with other jobs) one thread did a 128 × 1 × 28 × 28 MNIST batch in 29 µs and two
#: in 170 µs; two threads first won at 64 × 3 × 224 × 224 (9.6 M elements: 2.9 against
#: 3.9 ms) and still lost at 6.3 M.
SERIAL_MAX_SIZE = 8_000_000


def _fill_table(x, fill):
    """``fill`` (a scalar, shape (C,) or (N, C)) as a C-contiguous (N, C) array of x's dtype."""
    n, c = x.shape[:2]
    return np.ascontiguousarray(np.broadcast_to(np.asarray(fill, dtype=x.dtype), (n, c)))


# -- NumPy twin: gather every pixel from its source ---------------------------------------------


def translate_np(x, shifts, fill=0.0):
    """Move each image by whole pixels; fill the pixels it leaves (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64, any memory layout
    shifts : ndarray, shape (N, 2), integer
        ``shifts[n] = (dy, dx)``: image ``n`` moves ``dy`` rows down and ``dx`` columns to
        the right (negative: up, left). Any integers; ``|dy| >= H`` or ``|dx| >= W`` leaves
        only ``fill``.
    fill : float or ndarray, shape (C,) or (N, C), default 0.0
        The value of the vacated pixels, per image and channel (broadcast from a scalar or
        one value per channel); rounded to ``x``'s dtype.

    Returns
    -------
    y : ndarray, shape (N, C, H, W), dtype of ``x``, C-contiguous
        A new array (``x`` is not changed), even for zero shifts.
    """
    n, c, h, w = x.shape
    fill = _fill_table(x, fill)
    shifts = np.asarray(shifts, dtype=np.int64)
    rows = np.arange(h) - shifts[:, 0:1]  # (N, H): the source row of every output row
    cols = np.arange(w) - shifts[:, 1:2]  # (N, W): the source column of every output column
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    gathered = x[
        np.arange(n)[:, None, None, None],
        np.arange(c)[None, :, None, None],
        rows.clip(0, h - 1)[:, None, :, None],
        cols.clip(0, w - 1)[:, None, None, :],
    ]  # (N, C, H, W), every pixel taken from its (clipped) source
    return np.ascontiguousarray(np.where(inside[:, None], gathered, fill[:, :, None, None]))


# -- numba twin: one contiguous copy per row ----------------------------------------------------


def translate_nb(x, shifts, fill=0.0):
    """numba twin of :func:`translate_np`: same contract.

    ``x`` is made C-contiguous first (a copy only when it is not), so one compiled signature
    per dtype serves every layout; each plane is then one contiguous copy and a few runs of
    fill (:func:`_translate_images`). Batches of :data:`SERIAL_MAX_SIZE` elements or more
    run one block of images per thread.
    """
    x = np.ascontiguousarray(x)
    fill = _fill_table(x, fill)
    shifts = np.ascontiguousarray(shifts, dtype=np.int64)
    y = np.empty(x.shape, dtype=x.dtype)
    if x.size < SERIAL_MAX_SIZE:
        _translate_images(x, shifts, fill, 0, x.shape[0], y)
    else:
        _translate(x, shifts, fill, y)
    return y


@jit
def _translate_chunk(x, shifts, fill, y, chunks, ch):
    """Block ``ch`` of ``chunks`` blocks of images (:func:`run_chunks`' convention)."""
    lo, hi = chunk_bounds(x.shape[0], chunks, ch)
    _translate_images(x, shifts, fill, lo, hi, y)


def _translate(x, shifts, fill, y):
    """The translation on one block of images per thread."""
    run_chunks(_translate_chunk, n_chunks(x.shape[0]), x, shifts, fill, y)


@jit
def _translate_images(x, shifts, fill, lo, hi, y):
    """Images ``lo .. hi - 1``, each channel's plane seen flat (``H·W`` values).

    In a C-ordered plane, moving by ``(dy, dx)`` moves every value ``dy·W + dx`` places
    along the flat plane: one long contiguous copy puts every inside pixel where it
    belongs (and wraps the rows' ends, where the ``|dx|`` columns of fill go); then the
    rows above and below the copy, and those columns, are filled.
    """
    n, ch, h, w = x.shape
    xf = x.reshape(n, ch, h * w)
    yf = y.reshape(n, ch, h * w)
    for b in range(lo, hi):
        dy, dx = shifts[b, 0], shifts[b, 1]
        # output rows [i0, i1) and columns [j0, j1) have their source inside the image
        i0 = min(max(dy, 0), h)
        i1 = max(min(h + dy, h), i0)
        j0 = min(max(dx, 0), w)
        j1 = max(min(w + dx, w), j0)
        offset = dy * w + dx
        for c in range(ch):
            v = fill[b, c]
            src, dst = xf[b, c], yf[b, c]
            k0 = k1 = 0  # the flat output span [k0, k1) the copy writes
            if i1 > i0 and j1 > j0:
                k0, k1 = i0 * w + j0, (i1 - 1) * w + j1
                # Views, so the loop's index is never negative: numba wraps negative
                # indices as Python does, and that branch stops LLVM from vectorising
                # (src[k - offset] in the loop made the kernel 4x slower).
                part, whence = dst[k0:k1], src[k0 - offset : k1 - offset]
                for k in range(k1 - k0):
                    part[k] = whence[k]
            for k in range(k0):
                dst[k] = v
            for k in range(k1, h * w):
                dst[k] = v
            for i in range(i0, i1):  # the columns the copy wrapped into
                row = dst[i * w : (i + 1) * w]
                for j in range(j0):
                    row[j] = v
                for j in range(j1, w):
                    row[j] = v


translate = pair(translate_np, translate_nb)
