"""Batch normalisation: per-channel statistics, normalise, scale and shift; and the backward.

Notation
--------
A, C, B  the kernels' view of the input, ``(A, C, B)``: C channels, channel ``c`` holding
         the ``A·B`` values ``x[:, c, :]``
M        values per channel, ``M = A·B`` (at least 2 when the statistics are the batch's)
μ, σ²    mean and biased variance of a channel's M values (the batch statistics)
γ, β     learnt scale and shift, one per channel
ε        added to the variance before the square root (PyTorch's ``eps``, 1e-5)

The layers see their inputs as ``(A, C, B)`` without copying where they can:

=============================================  ==========================
input                                          ``(A, C, B)``
=============================================  ==========================
``BatchNorm1D`` on ``(N, D)``                  ``(N, D, 1)``
``BatchNorm1D`` on ``(N, T, D)``               ``(N·T, D, 1)``
``BatchNorm2D`` on a channels-last NCHW array  ``(N·H·W, C, 1)`` ("rows")
(``Conv2D``'s output: NCHW shape, NHWC memory)
``BatchNorm2D`` on a C-ordered NCHW array      ``(N, C, H·W)`` ("planes")
(``MaxPool2D``'s output, user data)
=============================================  ==========================

What it computes
----------------
Training normalises with the statistics of the batch::

    μ = (1/M) Σ x          σ² = (1/M) Σ (x − μ)²         (biased: divided by M, not M − 1)
    x̂ = (x − μ) / √(σ² + ε)
    y = γ x̂ + β            (then max(y, 0) when ``relu``)

and its backward pass, with ``dz = dy`` (or ``dy · (y > 0)`` after a fused ReLU), is::

    dβ = Σ dz              dγ = Σ dz · x̂
    dx = γ / (M·√(σ² + ε)) · (M·dz − Σ dz − x̂ · Σ (dz · x̂))

every sum over a channel's M values. The compact form comes from the chain rule through
``x̂``'s three paths to ``x`` (directly, through μ and through σ²): with ``g = γ dz`` (the
gradient at ``x̂``), ``dσ² = −½ (σ² + ε)^(−3/2) Σ g (x − μ)`` and ``dμ = −Σ g / √(σ² + ε)``
(σ²'s own term in dμ vanishes, since ``Σ (x − μ) = 0``), so
``dx = g / √(σ² + ε) + dσ² · 2(x − μ)/M + dμ/M``; factoring ``1/(M·√(σ² + ε))`` out
gives the line above. Its two sums are dβ and dγ: the gradient of the normalised batch is
its own, minus its mean, minus its projection on ``x̂``.

Inference normalises with constants (the running statistics the layer keeps), so it is an
affine map per channel, ``y = s·x + t`` with ``s = γ / √(σ²_run + ε)`` and
``t = β − μ_run · s``; its gradient is ``dx = s·dz`` (nothing flows through the statistics),
``dγ = Σ dz · x̂``, ``dβ = Σ dz``. :func:`batchnorm_backward` takes ``batch_stats`` to tell
the two apart.

Sums are accumulated in float64 also for float32 input, as PyTorch's CPU kernels accumulate
(``at::acc_type<float>`` is double); the statistics are returned in the input's dtype, and
the backward pass reads them as returned, so both passes use the same numbers.

The numba twins
---------------
One pass collects each channel's sums, a second writes the output (or the input gradient):
two reads and one write, against the NumPy twin's temporaries. They keep the ``(A, C, B)``
memory order: "rows" (B = 1) run over the rows with the C channels contiguous innermost, so
every row adds into C accumulators at once (vectorised, no reordering of any one sum);
"planes" run over the N·C contiguous planes one at a time. The forward statistics are the
sums of ``x − K`` and ``(x − K)²`` with ``K`` the channel's first value (a shift that keeps
the one-pass variance free of cancellation when ``|μ| ≫ σ``; a non-finite first value
shifts by 0 instead, so NaN and ±inf come out as the NumPy twin's). Above
:data:`SERIAL_MAX_SIZE` elements, blocks of rows (or of planes) go to threads, each adding
into its own partial sums, which are added afterwards in block order: the result depends on
the thread count, never on timing.
"""

from __future__ import annotations

import numpy as np

from fastdl import config
from fastdl.kernels._jit import jit, pair
from fastdl.kernels._threads import chunk_bounds, run_chunks

__all__ = [
    "batchnorm_forward",
    "batchnorm_inference",
    "batchnorm_backward",
    "SERIAL_MAX_SIZE",
]

#: Inputs with fewer elements run on one thread, without waking the thread pool. The passes
#: are memory-bound: on the 2-core reference machine (shared with another job) two threads
#: were slower than one up to ~1M float32 values (a (64, 16, 28, 28) batch: 1.9 ms against
#: 1.7 ms for forward + backward) and 10% faster at 2.4M.
SERIAL_MAX_SIZE = 1_000_000


# -- NumPy twins: the formulas as written ---------------------------------------------------------


def batchnorm_forward_np(x, gamma, beta, eps, relu):
    """Normalise each channel with the batch's mean and variance, then scale and shift
    (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (A, C, B), float32 or float64, C-contiguous
        M = A·B >= 2 values per channel (the layer refuses fewer).
    gamma, beta : ndarray, shape (C,), dtype of ``x``
        γ and β.
    eps : float
        ε > 0.
    relu : bool
        Return ``max(y, 0)`` (``np.maximum``'s: NaN stays NaN).

    Returns
    -------
    y : ndarray, shape (A, C, B), dtype of ``x``, C-contiguous
    mean : ndarray, shape (C,), dtype of ``x``
        μ.
    var : ndarray, shape (C,), dtype of ``x``
        σ², biased (divided by M).
    """
    dtype = x.dtype
    mean = x.mean(axis=(0, 2), dtype=np.float64)  # sums in float64, as PyTorch's CPU kernels
    var = ((x - mean[:, None]) ** 2).mean(axis=(0, 2))
    mean, var = mean.astype(dtype), var.astype(dtype)
    x_hat = (x - mean[:, None]) / np.sqrt(var + eps)[:, None]
    y = gamma[:, None] * x_hat + beta[:, None]
    if relu:
        y = np.maximum(y, 0)
    return np.ascontiguousarray(y, dtype=dtype), mean, var


def batchnorm_inference_np(x, scale, shift, relu):
    """The inference pass, one affine map per channel: ``y = s·x + t`` (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (A, C, B), float32 or float64, C-contiguous
    scale, shift : ndarray, shape (C,), dtype of ``x``
        ``s = γ / √(σ²_run + ε)`` and ``t = β − μ_run · s``.
    relu : bool

    Returns
    -------
    y : ndarray, shape (A, C, B), dtype of ``x``, C-contiguous
    """
    y = x * scale[:, None] + shift[:, None]
    if relu:
        y = np.maximum(y, 0)
    return np.ascontiguousarray(y)


def batchnorm_backward_np(x, y, dy, gamma, mean, var, eps, relu, batch_stats, need_dx):
    """Gradients of the normalisation for input, γ and β (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (A, C, B), C-contiguous
        The forward input.
    y : ndarray, shape (A, C, B), C-contiguous
        The forward output (read only when ``relu`` is true).
    dy : ndarray, shape (A, C, B), C-contiguous
        Gradient of the loss with respect to ``y``.
    gamma, mean, var : ndarray, shape (C,)
        γ, and the μ and σ² the forward pass normalised with.
    eps : float
    relu : bool
        The forward pass had a fused ReLU.
    batch_stats : bool
        True: μ and σ² were the batch's (training), and the gradient flows through them;
        False: they were constants (the running statistics of inference).
    need_dx : bool
        False skips the input gradient: ``dx`` is then empty.

    Returns
    -------
    dx : ndarray, shape (A, C, B), C-contiguous, or (0, C, B) when ``need_dx`` is false
    dgamma, dbeta : ndarray, shape (C,)
        All of the dtype of ``x``.
    """
    a, c, b = x.shape
    m = a * b
    dz = dy * (y > 0) if relu else dy  # gradient before the ReLU
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean[:, None]) * inv_std[:, None]
    dbeta = dz.sum(axis=(0, 2), dtype=np.float64)
    dgamma = (dz * x_hat).sum(axis=(0, 2), dtype=np.float64)
    if not need_dx:
        dx = np.zeros((0, c, b), dtype=x.dtype)
    elif batch_stats:
        # k in float64, as the numba twin's: a tiny γ/σ must not underflow to 0 before it
        # meets an infinite bracket (0·inf is NaN where the product is ±inf)
        k = gamma * inv_std.astype(np.float64) / m
        dx = k[:, None] * (m * dz - dbeta[:, None] - x_hat * dgamma[:, None])
    else:
        dx = dz * (gamma * inv_std)[:, None]
    dtype = x.dtype
    return np.ascontiguousarray(dx, dtype=dtype), dgamma.astype(dtype), dbeta.astype(dtype)


# -- numba twins: a pass of sums, a pass of writes ------------------------------------------------


def _parts(x) -> int:
    """Blocks for the threads: 1 (no parallel region) for small inputs; else one per thread,
    at most one per row (rows) or plane (planes)."""
    if x.size < SERIAL_MAX_SIZE:
        return 1
    a, c, b = x.shape
    return max(1, min(config.get_num_threads(), a if b == 1 else a * c))


@jit
def _shift(x):
    """``K``: each channel's first value, in float64, or 0 where it is not finite."""
    c = x.shape[1]
    k = np.empty(c, dtype=np.float64)
    for j in range(c):
        v = np.float64(x[0, j, 0])
        k[j] = v if np.isfinite(v) else 0.0
    return k


@jit
def _row_sums(x, k, lo, hi, s1, s2):
    """``s1 += Σ (x − K)``, ``s2 += Σ (x − K)²`` over rows ``lo .. hi − 1`` of ``x`` (R, C)."""
    c = x.shape[1]
    for r in range(lo, hi):
        row = x[r]
        for j in range(c):
            d = np.float64(row[j]) - k[j]
            s1[j] += d
            s2[j] += d * d


@jit
def _plane_sums(x, k, i0, i1, s1, s2):
    """``s1[i]``, ``s2[i]``: the shifted sums of planes ``i0 .. i1 − 1`` of ``x`` (N, C, P),
    plane ``i = n·C + c``. Four interleaved partial sums per plane, so the additions need
    not wait for each other (one running sum is bound by the latency of an addition)."""
    c, p = x.shape[1], x.shape[2]
    p4 = p - p % 4
    for i in range(i0, i1):
        plane = x[i // c, i % c]
        kc = k[i % c]
        a0 = a1 = a2 = a3 = 0.0
        b0 = b1 = b2 = b3 = 0.0
        for q in range(0, p4, 4):
            d0 = np.float64(plane[q]) - kc
            d1 = np.float64(plane[q + 1]) - kc
            d2 = np.float64(plane[q + 2]) - kc
            d3 = np.float64(plane[q + 3]) - kc
            a0 += d0
            a1 += d1
            a2 += d2
            a3 += d3
            b0 += d0 * d0
            b1 += d1 * d1
            b2 += d2 * d2
            b3 += d3 * d3
        for q in range(p4, p):
            d0 = np.float64(plane[q]) - kc
            a0 += d0
            b0 += d0 * d0
        s1[i] = (a0 + a1) + (a2 + a3)
        s2[i] = (b0 + b1) + (b2 + b3)


@jit
def _row_sums_chunk(x, k, s1, s2, chunks, ch):
    """Block ``ch`` of ``chunks`` (:func:`run_chunks`' convention): it adds into its own
    partial sums, ``s1[ch]`` and ``s2[ch]``."""
    lo, hi = chunk_bounds(x.shape[0], chunks, ch)
    _row_sums(x, k, lo, hi, s1[ch], s2[ch])


@jit
def _plane_sums_chunk(x, k, s1, s2, chunks, ch):
    """Block ``ch`` of ``chunks`` (:func:`run_chunks`' convention): it writes its own planes'
    sums."""
    lo, hi = chunk_bounds(x.shape[0] * x.shape[1], chunks, ch)
    _plane_sums(x, k, lo, hi, s1, s2)


def _channel_sums(x, parts):
    """``(Σ (x − K), Σ (x − K)², K)`` per channel, float64 ``(C,)`` each."""
    a, c, b = x.shape
    k = _shift(x)
    if b == 1:
        x2 = x.reshape(a, c)
        s1, s2 = np.zeros((parts, c)), np.zeros((parts, c))
        if parts == 1:
            _row_sums(x2, k, 0, a, s1[0], s2[0])
        else:
            run_chunks(_row_sums_chunk, parts, x2, k, s1, s2)
    else:
        s1, s2 = np.empty(a * c), np.empty(a * c)
        if parts == 1:
            _plane_sums(x, k, 0, a * c, s1, s2)
        else:
            run_chunks(_plane_sums_chunk, parts, x, k, s1, s2)
        s1, s2 = s1.reshape(a, c), s2.reshape(a, c)
    return _add_rows(s1), _add_rows(s2), k


@jit
def _add_rows(s):
    """``Σ s[t]`` over the rows of ``s`` (T, C), in row order."""
    out = np.zeros(s.shape[1])
    for t in range(s.shape[0]):
        for j in range(s.shape[1]):
            out[j] += s[t, j]
    return out


@jit
def _affine_rows(x, scale, shift, relu, lo, hi, y):
    """Rows ``lo .. hi − 1``: ``y = x·s + t`` per channel (then ReLU); ``x``, ``y`` (R, C)."""
    c = x.shape[1]
    for r in range(lo, hi):
        xr, yr = x[r], y[r]
        for j in range(c):
            v = xr[j] * scale[j] + shift[j]
            if relu:  # np.maximum(v, 0)'s: NaN stays NaN, −0.0 becomes 0.0
                yr[j] = v if (v > 0 or v != v) else 0
            else:
                yr[j] = v


@jit
def _affine_planes(x, scale, shift, relu, i0, i1, y):
    """Planes ``i0 .. i1 − 1`` of ``x``, ``y`` (N, C, P): ``y = x·s + t`` (then ReLU)."""
    c, p = x.shape[1], x.shape[2]
    for i in range(i0, i1):
        xp, yp = x[i // c, i % c], y[i // c, i % c]
        s, t = scale[i % c], shift[i % c]
        for q in range(p):
            v = xp[q] * s + t
            if relu:
                yp[q] = v if (v > 0 or v != v) else 0
            else:
                yp[q] = v


@jit
def _affine_rows_chunk(x, scale, shift, relu, y, chunks, ch):
    """Block ``ch`` of ``chunks`` (:func:`run_chunks`' convention): it writes its own rows."""
    lo, hi = chunk_bounds(x.shape[0], chunks, ch)
    _affine_rows(x, scale, shift, relu, lo, hi, y)


@jit
def _affine_planes_chunk(x, scale, shift, relu, y, chunks, ch):
    """Block ``ch`` of ``chunks`` (:func:`run_chunks`' convention): it writes its own planes."""
    lo, hi = chunk_bounds(x.shape[0] * x.shape[1], chunks, ch)
    _affine_planes(x, scale, shift, relu, lo, hi, y)


def _affine(x, scale, shift, relu, parts):
    """``y = x·s + t`` per channel (then ReLU), ``y`` a new array of ``x``'s shape."""
    a, c, b = x.shape
    y = np.empty_like(x)
    if b == 1:
        x2, y2 = x.reshape(a, c), y.reshape(a, c)
        if parts == 1:
            _affine_rows(x2, scale, shift, relu, 0, a, y2)
        else:
            run_chunks(_affine_rows_chunk, parts, x2, scale, shift, relu, y2)
    elif parts == 1:
        _affine_planes(x, scale, shift, relu, 0, a * c, y)
    else:
        run_chunks(_affine_planes_chunk, parts, x, scale, shift, relu, y)
    return y


def batchnorm_forward_nb(x, gamma, beta, eps, relu):
    """numba twin of :func:`batchnorm_forward_np`: one pass of shifted float64 sums, one pass
    of ``y = x·s + t`` with ``s = γ / √(σ² + ε)`` and ``t = β − μ·s``."""
    a, c, b = x.shape
    m = a * b
    parts = _parts(x)
    s1, s2, k = _channel_sums(x, parts)
    mean = (k + s1 / m).astype(x.dtype)
    var = np.maximum((s2 - s1 * s1 / m) / m, 0.0).astype(x.dtype)  # rounding can dip below 0
    # the returned statistics, as the backward pass will read them
    inv_std = 1.0 / np.sqrt(var.astype(np.float64) + eps)
    scale = gamma * inv_std
    shift = beta - mean * scale
    y = _affine(x, scale.astype(x.dtype), shift.astype(x.dtype), relu, parts)
    return y, mean, var


def batchnorm_inference_nb(x, scale, shift, relu):
    """numba twin of :func:`batchnorm_inference_np`: one pass in ``x``'s memory order."""
    return _affine(x, scale, shift, relu, _parts(x))


@jit
def _dz(dy, y, relu, one):
    """``dy · (y > 0)`` with ``relu``, else ``dy`` (times ``one``, 1 in ``dy``'s dtype).

    A product, as the NumPy twin's: a NaN or infinite ``dy`` times 0 is NaN, −3 times 0 is
    −0. A select, not a branch: a branch on the sign of ``y`` is mispredicted half of the
    time (7x slower on random signs).
    """
    return dy * (one if (y > 0 or not relu) else one - one)


@jit
def _grad_rows_sums(x, y, dy, mean, relu, one, lo, hi, s_dz, s_dzx):
    """Rows ``lo .. hi − 1``: ``s_dz += Σ dz``, ``s_dzx += Σ dz·(x − μ)`` (float64)."""
    c = x.shape[1]
    for r in range(lo, hi):
        xr, yr, dyr = x[r], y[r], dy[r]
        for j in range(c):
            g64 = np.float64(_dz(dyr[j], yr[j], relu, one))
            s_dz[j] += g64
            s_dzx[j] += g64 * (np.float64(xr[j]) - mean[j])


@jit
def _grad_planes_sums(x, y, dy, mean, relu, one, i0, i1, s_dz, s_dzx):
    """Planes ``i0 .. i1 − 1``: their sums of ``dz`` and ``dz·(x − μ)`` into ``s_dz[i]``,
    ``s_dzx[i]`` (four interleaved partial sums, as :func:`_plane_sums`)."""
    c, p = x.shape[1], x.shape[2]
    p4 = p - p % 4
    for i in range(i0, i1):
        n, ch = i // c, i % c
        xp, yp, dyp = x[n, ch], y[n, ch], dy[n, ch]
        mu = mean[ch]
        a0 = a1 = a2 = a3 = 0.0
        b0 = b1 = b2 = b3 = 0.0
        for q in range(0, p4, 4):
            g0 = np.float64(_dz(dyp[q], yp[q], relu, one))
            g1 = np.float64(_dz(dyp[q + 1], yp[q + 1], relu, one))
            g2 = np.float64(_dz(dyp[q + 2], yp[q + 2], relu, one))
            g3 = np.float64(_dz(dyp[q + 3], yp[q + 3], relu, one))
            a0 += g0
            a1 += g1
            a2 += g2
            a3 += g3
            b0 += g0 * (np.float64(xp[q]) - mu)
            b1 += g1 * (np.float64(xp[q + 1]) - mu)
            b2 += g2 * (np.float64(xp[q + 2]) - mu)
            b3 += g3 * (np.float64(xp[q + 3]) - mu)
        for q in range(p4, p):
            g0 = np.float64(_dz(dyp[q], yp[q], relu, one))
            a0 += g0
            b0 += g0 * (np.float64(xp[q]) - mu)
        s_dz[i] = (a0 + a1) + (a2 + a3)
        s_dzx[i] = (b0 + b1) + (b2 + b3)


@jit
def _grad_rows_sums_chunk(x, y, dy, mean, relu, one, s_dz, s_dzx, chunks, ch):
    """Block ``ch`` of ``chunks`` (:func:`run_chunks`' convention): its own partial sums."""
    lo, hi = chunk_bounds(x.shape[0], chunks, ch)
    _grad_rows_sums(x, y, dy, mean, relu, one, lo, hi, s_dz[ch], s_dzx[ch])


@jit
def _grad_planes_sums_chunk(x, y, dy, mean, relu, one, s_dz, s_dzx, chunks, ch):
    """Block ``ch`` of ``chunks`` (:func:`run_chunks`' convention): it writes its own planes'
    sums."""
    lo, hi = chunk_bounds(x.shape[0] * x.shape[1], chunks, ch)
    _grad_planes_sums(x, y, dy, mean, relu, one, lo, hi, s_dz, s_dzx)


@jit
def _dx_rows(x, y, dy, mean, k, a, c0, relu, one, lo, hi, dx):
    """Rows ``lo .. hi − 1``: ``dx = k·dz + a·(x − μ) + c0`` per channel."""
    c = x.shape[1]
    for r in range(lo, hi):
        xr, yr, dyr, dxr = x[r], y[r], dy[r], dx[r]
        for j in range(c):
            g = _dz(dyr[j], yr[j], relu, one)
            dxr[j] = k[j] * g + a[j] * (xr[j] - mean[j]) + c0[j]


@jit
def _dx_planes(x, y, dy, mean, k, a, c0, relu, one, i0, i1, dx):
    """Planes ``i0 .. i1 − 1``: ``dx = k·dz + a·(x − μ) + c0``."""
    c, p = x.shape[1], x.shape[2]
    for i in range(i0, i1):
        n, ch = i // c, i % c
        xp, yp, dyp, dxp = x[n, ch], y[n, ch], dy[n, ch], dx[n, ch]
        kc, ac, cc, mu = k[ch], a[ch], c0[ch], mean[ch]
        for q in range(p):
            g = _dz(dyp[q], yp[q], relu, one)
            dxp[q] = kc * g + ac * (xp[q] - mu) + cc


@jit
def _dx_rows_chunk(x, y, dy, mean, k, a, c0, relu, one, dx, chunks, ch):
    """Block ``ch`` of ``chunks`` (:func:`run_chunks`' convention): it writes its own rows."""
    lo, hi = chunk_bounds(x.shape[0], chunks, ch)
    _dx_rows(x, y, dy, mean, k, a, c0, relu, one, lo, hi, dx)


@jit
def _dx_planes_chunk(x, y, dy, mean, k, a, c0, relu, one, dx, chunks, ch):
    """Block ``ch`` of ``chunks`` (:func:`run_chunks`' convention): it writes its own planes."""
    lo, hi = chunk_bounds(x.shape[0] * x.shape[1], chunks, ch)
    _dx_planes(x, y, dy, mean, k, a, c0, relu, one, lo, hi, dx)


def batchnorm_backward_nb(x, y, dy, gamma, mean, var, eps, relu, batch_stats, need_dx):
    """numba twin of :func:`batchnorm_backward_np`: one pass of float64 sums of ``dz`` and
    ``dz·(x − μ)``, one pass of ``dx = k·dz + a·(x − μ) + c0`` with, per channel,
    ``k = γ/√(σ² + ε)`` and (training) ``a = −k·Σ dz·x̂ / (M·√(σ² + ε))``,
    ``c0 = −k·Σ dz / M`` (0 and 0 at inference)."""
    na, c, b = x.shape
    m = na * b
    parts = _parts(x)
    dtype = x.dtype
    one = dtype.type(1)
    mean64 = mean.astype(np.float64)
    if b == 1:
        x2, y2, dy2 = x.reshape(na, c), y.reshape(na, c), dy.reshape(na, c)
        s_dz, s_dzx = np.zeros((parts, c)), np.zeros((parts, c))
        if parts == 1:
            _grad_rows_sums(x2, y2, dy2, mean64, relu, one, 0, na, s_dz[0], s_dzx[0])
        else:
            run_chunks(_grad_rows_sums_chunk, parts, x2, y2, dy2, mean64, relu, one, s_dz, s_dzx)
    else:
        s_dz, s_dzx = np.empty(na * c), np.empty(na * c)
        if parts == 1:
            _grad_planes_sums(x, y, dy, mean64, relu, one, 0, na * c, s_dz, s_dzx)
        else:
            run_chunks(_grad_planes_sums_chunk, parts, x, y, dy, mean64, relu, one, s_dz, s_dzx)
        s_dz, s_dzx = s_dz.reshape(na, c), s_dzx.reshape(na, c)
    s_dz, s_dzx = _add_rows(s_dz), _add_rows(s_dzx)
    inv_std = 1.0 / np.sqrt(var.astype(np.float64) + eps)
    dgamma, dbeta = (s_dzx * inv_std).astype(dtype), s_dz.astype(dtype)
    if not need_dx:
        return np.zeros((0, c, b), dtype=dtype), dgamma, dbeta
    k = gamma * inv_std
    if batch_stats:
        # grouped as the NumPy twin's k/M · (x̂ · Σ dz·x̂): a tiny k must not underflow to 0
        # against 1/(σ² + ε) before it meets an infinite sum (0·inf is NaN, NumPy's ±inf)
        a = -(k / m) * (s_dzx * inv_std * inv_std)
        c0 = -(k / m) * s_dz
    else:
        a = c0 = np.zeros(c)
    args = (mean.astype(dtype), k.astype(dtype), a.astype(dtype), c0.astype(dtype), relu, one)
    dx = np.empty_like(x)
    if b == 1:
        if parts == 1:
            _dx_rows(x2, y2, dy2, *args, 0, na, dx.reshape(na, c))
        else:
            run_chunks(_dx_rows_chunk, parts, x2, y2, dy2, *args, dx.reshape(na, c))
    elif parts == 1:
        _dx_planes(x, y, dy, *args, 0, na * c, dx)
    else:
        run_chunks(_dx_planes_chunk, parts, x, y, dy, *args, dx)
    return dx, dgamma, dbeta


batchnorm_forward = pair(batchnorm_forward_np, batchnorm_forward_nb)
batchnorm_inference = pair(batchnorm_inference_np, batchnorm_inference_nb)
batchnorm_backward = pair(batchnorm_backward_np, batchnorm_backward_nb)
