"""LSTM time loops, forward and backward through time: NumPy twins first, numba twins second.

Notation
--------
N      batch size
T      time steps
D      input features (or the vocabulary size, for token ids standing for one-hot rows)
H_hid  hidden size, written H below; G·H = 4H gate columns

Cell (the standard LSTM, gates in PyTorch's order i, f, g, o)::

    a_t = x_t W_ih + h_{t-1} W_hh + b                   (N, 4H), blocks [i | f | g | o]
    i = σ(a_i)    f = σ(a_f)    g = tanh(a_g)    o = σ(a_o)
    c_t = f ⊙ c_{t-1} + i ⊙ g
    h_t = o ⊙ tanh(c_t)

Weight layout: ``w_ih`` ``(D, 4H)``, ``w_hh`` ``(H, 4H)``, ``b`` ``(4H,)``; column block
``k·H:(k+1)·H`` belongs to gate ``k`` of (i, f, g, o). PyTorch's ``nn.LSTM`` stores the
transposes with the same gate order and two biases, so ``weight_ih_l0 = w_ih.T``,
``weight_hh_l0 = w_hh.T``, ``bias_ih_l0 + bias_hh_l0 = b`` (e.g. ``bias_ih_l0 = b``,
``bias_hh_l0 = 0``).

Backward through time, with ``dh`` and ``dc`` the gradients reaching ``h_t`` and ``c_t``::

    dc  += dh ⊙ o ⊙ (1 − tanh²(c_t))
    da_i = dc ⊙ g ⊙ i(1 − i)        da_f = dc ⊙ c_{t-1} ⊙ f(1 − f)
    da_g = dc ⊙ i ⊙ (1 − g²)        da_o = dh ⊙ tanh(c_t) ⊙ o(1 − o)
    dc_{t-1} = dc ⊙ f               dh_{t-1} = da_t W_hhᵀ  (+ the output gradient at t − 1)

and after the loop, one product each: ``dW_hh = Σ_t h_{t-1}ᵀ da_t``, ``dW_ih = Σ_t x_tᵀ da_t``,
``db = Σ da``, ``dx = da W_ihᵀ``.

The numba twins split the batch into one chunk per thread (``_threads.run_chunks``: nogil
kernels on plain threads, not a ``prange`` region); each thread runs the whole time loop on
its rows with single-threaded BLAS (the recurrent product per step, the projections and
weight-gradient products once per chunk), and the per-chunk weight gradients are summed at
the end. For float32 they use a rational tanh (error < 4e-7, see ``_activation_rows``). The staged
twins (``_st``, the ``numpy`` BLAS path) run the same compiled steps with the time loop in
Python and every product by numpy's ``matmul``.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels import _recurrent as rec
from fastdl.kernels._activation_rows import ONE, gate_scales, scaled_tanh_into, tanh_into
from fastdl.kernels._blas import gemm, serial_blas
from fastdl.kernels._jit import jit, pair
from fastdl.kernels._threads import chunk_bounds, n_chunks, run_chunks

__all__ = ["lstm_forward", "lstm_backward"]


def lstm_forward_np(x, w_ih, w_hh, b, h0, c0):
    """Run an LSTM over a batch of sequences (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (N, T, D) float, or (N, T) integer token ids
        As for :func:`fastdl.kernels.rnn.rnn_forward_np`.
    w_ih : ndarray, shape (D, 4H)
    w_hh : ndarray, shape (H, 4H)
    b : ndarray, shape (4H,)
    h0, c0 : ndarray, shape (N, H)
        Initial hidden and cell state.

    Returns
    -------
    hs : ndarray, shape (N, T, H)
        Hidden states ``h_1 … h_T`` (the layer's output).
    cs : ndarray, shape (N, T, H)
        Cell states ``c_1 … c_T``.
    acts : ndarray, shape (N, T, 4H)
        Gate activations ``[i | f | g | o]`` after their nonlinearities (kept for backward).

    All outputs have the dtype of ``w_hh``.
    """
    n, t_len = x.shape[:2]
    hid = w_hh.shape[0]
    xp = rec.project_np(x, w_ih) + b  # x_t W_ih + b for every step at once
    hs = np.empty((n, t_len, hid), w_hh.dtype)
    cs = np.empty_like(hs)
    acts = np.empty((n, t_len, 4 * hid), w_hh.dtype)
    h, c = h0, c0
    for t in range(t_len):
        a = xp[:, t] + h @ w_hh  # (N, 4H): blocks [i | f | g | o]
        i = rec.sigmoid(a[:, :hid])
        f = rec.sigmoid(a[:, hid : 2 * hid])
        g = np.tanh(a[:, 2 * hid : 3 * hid])
        o = rec.sigmoid(a[:, 3 * hid :])
        c = f * c + i * g
        h = o * np.tanh(c)
        acts[:, t, :hid], acts[:, t, hid : 2 * hid] = i, f
        acts[:, t, 2 * hid : 3 * hid], acts[:, t, 3 * hid :] = g, o
        cs[:, t], hs[:, t] = c, h
    return hs, cs, acts


def lstm_backward_np(x, w_ih, w_hh, h0, c0, hs, cs, acts, dhs, need_dx):
    """Backpropagate through an LSTM's time loop (NumPy twin).

    Parameters
    ----------
    x, w_ih, w_hh, h0, c0 : as for :func:`lstm_forward_np`
    hs, cs, acts : ndarray
        The outputs of :func:`lstm_forward_np` for these inputs.
    dhs, need_dx
        As for :func:`fastdl.kernels.rnn.rnn_backward_np`: the gradient with respect to
        ``hs``, and whether to compute ``dx``.

    Returns
    -------
    dx : ndarray, shape (N, T, D), or None
    dw_ih : ndarray, shape (D, 4H)
    dw_hh : ndarray, shape (H, 4H)
    db : ndarray, shape (4H,)
    dh0, dc0 : ndarray, shape (N, H)
        Gradients with respect to the initial state.
    """
    n, t_len, hid = hs.shape
    # Everything that does not depend on the recursion, for all steps at once:
    tcs = np.tanh(cs)  # tanh(c_t)
    deriv = acts * (1 - acts)  # σ' = y(1 − y) for i, f, o ...
    deriv[..., 2 * hid : 3 * hid] = 1 - acts[..., 2 * hid : 3 * hid] ** 2  # ... tanh' for g
    dc_dh = acts[..., 3 * hid :] * (1 - tcs * tcs)  # ∂c-path of h_t = o ⊙ tanh(c_t)
    c_prevs = np.concatenate([c0[:, None], cs[:, :-1]], axis=1)
    da = np.empty_like(acts)
    dh = np.zeros_like(h0)
    dc = np.zeros_like(c0)
    for t in range(t_len - 1, -1, -1):
        dh += dhs[:, t]
        a, d = acts[:, t], da[:, t]
        dc += dh * dc_dh[:, t]
        np.multiply(dc, a[:, 2 * hid : 3 * hid], out=d[:, :hid])  # ∂L/∂i = dc ⊙ g
        np.multiply(dc, c_prevs[:, t], out=d[:, hid : 2 * hid])  # ∂L/∂f = dc ⊙ c_{t-1}
        np.multiply(dc, a[:, :hid], out=d[:, 2 * hid : 3 * hid])  # ∂L/∂g = dc ⊙ i
        np.multiply(dh, tcs[:, t], out=d[:, 3 * hid :])  # ∂L/∂o = dh ⊙ tanh(c_t)
        d *= deriv[:, t]  # through the nonlinearities: da_t
        dc *= a[:, hid : 2 * hid]  # dc_{t-1} = dc ⊙ f
        dh = d @ w_hh.T  # dh_{t-1}
    da2 = da.reshape(n * t_len, 4 * hid)
    dw_hh = rec.shifted_np(h0, hs).T @ da2
    db = da2.sum(axis=0)
    dx, dw_ih = rec.input_grads_np(x, w_ih, da, need_dx)
    return dx, dw_ih, dw_hh, db, dh, dc


@jit
def _forward_step(a, xp, b, scale, shift, h, c, hs, cs, acts, n0, t, ar, tc):
    """Step ``t`` on the chunk's rows, given ``a = h_{t-1} W_hh`` ``(nc, 4H)``: the gates,
    then ``c`` and ``h`` in place (``ar`` ``(4H,)`` and ``tc`` ``(H,)`` are scratch)."""
    nc, t_len, hid = h.shape[0], hs.shape[1], hs.shape[2]
    g4 = 4 * hid
    for r in range(nc):
        xr, a_r = xp[r * t_len + t], a[r]
        for k in range(g4):
            ar[k] = a_r[k] + xr[k] + b[k]
        act = acts[n0 + r, t]
        scaled_tanh_into(ar, act, scale, shift)  # σ for i, f, o; tanh for g
        cr, hr = c[r], h[r]
        for k in range(hid):
            cr[k] = act[hid + k] * cr[k] + act[k] * act[2 * hid + k]
        tanh_into(cr, tc)
        for k in range(hid):
            hr[k] = act[3 * hid + k] * tc[k]
        cs[n0 + r, t] = cr
        hs[n0 + r, t] = hr


@jit
def _backward_step(c0, cs, acts, dhs, da, dh, dc, dab, tc, n0, t):
    """Step ``t`` backwards on the chunk's rows: ``da_t`` into ``dab`` and ``da``, ``dc``
    carried to ``t − 1`` in place; ``dh`` holds the gradient reaching ``h_t`` (before this
    step's output gradient is added)."""
    nc, hid = dh.shape
    for r in range(nc):
        row = n0 + r
        act = acts[row, t]
        c_prev = cs[row, t - 1] if t > 0 else c0[row]
        dhr, dcr, dar, dhsr = dh[r], dc[r], dab[r], dhs[row, t]
        for k in range(hid):
            dhr[k] += dhsr[k]
        tanh_into(cs[row, t], tc)
        for k in range(hid):
            i = act[k]
            f = act[hid + k]
            g = act[2 * hid + k]
            o = act[3 * hid + k]
            dck = dcr[k] + dhr[k] * o * (ONE - tc[k] * tc[k])
            dar[k] = dck * g * i * (ONE - i)
            dar[hid + k] = dck * c_prev[k] * f * (ONE - f)
            dar[2 * hid + k] = dck * i * (ONE - g * g)
            dar[3 * hid + k] = dhr[k] * tc[k] * o * (ONE - o)
            dcr[k] = dck * f
        da[row, t] = dar


def _scratch(nc, hid, dtype):
    """Per-chunk arrays of the time loops: ``(nc, 4H)``, ``(4H,)``, ``(H,)``."""
    return np.empty((nc, 4 * hid), dtype), np.empty(4 * hid, dtype), np.empty(hid, dtype)


@jit
def _forward_frame(x, weights, state0, outs, chunks, ch):
    """The forward time loop on one chunk of rows.

    The recurrent product is ``h W_hh`` on the weight as it is stored: on the AVX2 machine of
    PERFORMANCE.md OpenBLAS computes it as fast as ``W_hhᵀ hᵀ`` from a transposed copy
    (172 against 168 µs for 16 rows), and the copy cost 0.3-0.4 ms per pass (on an earlier
    AVX-512 machine the transposed form was 1.7x faster; ``bench_recurrent``'s docstring).
    """
    w_ih, w_hh, b, scale, shift = weights
    (h0, c0), (hs, cs, acts) = state0, outs
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    nc, t_len, hid = n1 - n0, hs.shape[1], hs.shape[2]
    xp = np.empty((nc * t_len, 4 * hid), hs.dtype)
    rec.project(x, w_ih, n0, n1, xp)
    h, c = h0[n0:n1].copy(), c0[n0:n1].copy()
    a = np.empty((nc, 4 * hid), hs.dtype)
    ar, tc = np.empty(4 * hid, hs.dtype), np.empty(hid, hs.dtype)
    for t in range(t_len):
        gemm(False, False, 1.0, h, w_hh, 0.0, a)
        _forward_step(a, xp, b, scale, shift, h, c, hs, cs, acts, n0, t, ar, tc)


def _forward_frame_st(x, weights, state0, outs, chunks, ch):
    """Staged :func:`_forward_frame`: the products by numpy's ``matmul``."""
    w_ih, w_hh, b, scale, shift = weights
    (h0, c0), (hs, cs, acts) = state0, outs
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    xp = rec.project_st(x, w_ih, n0, n1)
    h, c = h0[n0:n1].copy(), c0[n0:n1].copy()
    a, ar, tc = _scratch(n1 - n0, hs.shape[2], hs.dtype)
    for t in range(hs.shape[1]):
        np.matmul(h, w_hh, out=a)
        _forward_step(a, xp, b, scale, shift, h, c, hs, cs, acts, n0, t, ar, tc)


@jit
def _backward_frame(x, weights, saved, dhs, need_dx, grads, partials, chunks, ch):
    """Backward through time on one chunk of rows, then its weight gradients (into ``[ch]``
    of the per-chunk arrays). ``dh_{t-1} = da_t W_hhᵀ`` uses the contiguous copy ``w_hh_t``
    (no transposed operand: faster for few rows)."""
    (w_ih, w_hh_t), (h0, c0, hs, cs, acts) = weights, saved
    (da, dx, dh0, dc0), (dw_ih_p, dw_hh_p, db_p) = grads, partials
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    nc, t_len, hid = n1 - n0, hs.shape[1], hs.shape[2]
    dh = np.zeros((nc, hid), hs.dtype)
    dc = np.zeros((nc, hid), hs.dtype)
    dab = np.empty((nc, 4 * hid), hs.dtype)
    tc = np.empty(hid, hs.dtype)
    for t in range(t_len - 1, -1, -1):
        _backward_step(c0, cs, acts, dhs, da, dh, dc, dab, tc, n0, t)
        gemm(False, False, 1.0, dab, w_hh_t, 0.0, dh)
    dh0[n0:n1] = dh
    dc0[n0:n1] = dc
    da_c = rec.weight_grads(h0, hs, da, n0, n1, dw_hh_p[ch], db_p[ch])
    rec.input_grads(x, w_ih, da_c, n0, n1, dw_ih_p[ch], dx, need_dx)


def _backward_frame_st(x, weights, saved, dhs, need_dx, grads, partials, chunks, ch):
    """Staged :func:`_backward_frame`: the products by numpy's ``matmul``."""
    (w_ih, w_hh_t), (h0, c0, hs, cs, acts) = weights, saved
    (da, dx, dh0, dc0), (dw_ih_p, dw_hh_p, db_p) = grads, partials
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    nc, hid = n1 - n0, hs.shape[2]
    dh, dc = np.zeros((nc, hid), hs.dtype), np.zeros((nc, hid), hs.dtype)
    dab, _, tc = _scratch(nc, hid, hs.dtype)
    for t in range(hs.shape[1] - 1, -1, -1):
        _backward_step(c0, cs, acts, dhs, da, dh, dc, dab, tc, n0, t)
        np.matmul(dab, w_hh_t, out=dh)
    dh0[n0:n1] = dh
    dc0[n0:n1] = dc
    da_c = rec.weight_grads_st(h0, hs, da, n0, n1, dw_hh_p[ch], db_p[ch])
    rec.input_grads_st(x, w_ih, da_c, n0, n1, dw_ih_p[ch], dx, need_dx)


def _forward(frame, x, w_ih, w_hh, b, h0, c0):
    n, t_len = x.shape[:2]
    hid = w_hh.shape[0]
    hs = np.empty((n, t_len, hid), w_hh.dtype)
    cs = np.empty_like(hs)
    acts = np.empty((n, t_len, 4 * hid), w_hh.dtype)
    scale, shift = gate_scales("ssts", hid, w_hh.dtype)
    with serial_blas():
        weights = (w_ih, np.ascontiguousarray(w_hh), b, scale, shift)
        run_chunks(frame, n_chunks(n), x, weights, (h0, c0), (hs, cs, acts))
    return hs, cs, acts


def _backward(frame, x, w_ih, w_hh, h0, c0, hs, cs, acts, dhs, need_dx):
    n, _, hid = hs.shape
    dt = w_hh.dtype
    need_dx = bool(need_dx) and x.ndim == 3
    da = np.empty_like(acts)
    dh0, dc0 = np.empty((n, hid), dt), np.empty((n, hid), dt)
    dx = np.empty(x.shape, dt) if need_dx else np.empty((0, 0, 0), dt)
    args = (
        x,
        (w_ih, rec.transposed(w_hh)),
        (h0, c0, hs, cs, acts),
        dhs,
        need_dx,
        (da, dx, dh0, dc0),
    )
    with serial_blas():
        dw_ih, dw_hh, db = rec.chunked_grads(
            frame, n_chunks(n), args, [w_ih.shape, w_hh.shape, (4 * hid,)], dt
        )
    return (dx if need_dx else None), dw_ih, dw_hh, db, dh0, dc0


def lstm_forward_nb(x, w_ih, w_hh, b, h0, c0):
    """numba twin of :func:`lstm_forward_np`: same arguments, dtypes and output shapes."""
    return _forward(_forward_frame, x, w_ih, w_hh, b, h0, c0)


def lstm_backward_nb(x, w_ih, w_hh, h0, c0, hs, cs, acts, dhs, need_dx):
    """numba twin of :func:`lstm_backward_np`: same arguments, dtypes and output shapes."""
    return _backward(_backward_frame, x, w_ih, w_hh, h0, c0, hs, cs, acts, dhs, need_dx)


def lstm_forward_st(x, w_ih, w_hh, b, h0, c0):
    """Staged twin of :func:`lstm_forward_np` (compiled steps, numpy's ``matmul``)."""
    return _forward(_forward_frame_st, x, w_ih, w_hh, b, h0, c0)


def lstm_backward_st(x, w_ih, w_hh, h0, c0, hs, cs, acts, dhs, need_dx):
    """Staged twin of :func:`lstm_backward_np` (compiled steps, numpy's ``matmul``)."""
    return _backward(_backward_frame_st, x, w_ih, w_hh, h0, c0, hs, cs, acts, dhs, need_dx)


lstm_forward = pair(lstm_forward_np, lstm_forward_nb, lstm_forward_st)
lstm_backward = pair(lstm_backward_np, lstm_backward_nb, lstm_backward_st)
