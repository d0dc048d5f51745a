"""GRU time loops, forward and backward through time: NumPy twins first, numba twins second.

Notation
--------
N      batch size
T      time steps
D      input features (or the vocabulary size, for token ids standing for one-hot rows)
H_hid  hidden size, written H below; G·H = 3H gate columns

Cell (PyTorch's ``nn.GRU``, gates in the order r, z, n; the reset gate multiplies the whole
recurrent term of the candidate, bias included)::

    p_t = x_t W_ih + b_ih                               (N, 3H), blocks [r | z | n]
    q_t = h_{t-1} W_hh + b_hh                           (N, 3H), blocks [r | z | n]
    r = σ(p_r + q_r)      z = σ(p_z + q_z)
    n = tanh(p_n + r ⊙ q_n)
    h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}

Weight layout: ``w_ih`` ``(D, 3H)``, ``w_hh`` ``(H, 3H)``, ``b_ih`` and ``b_hh`` ``(3H,)``;
column block ``k·H:(k+1)·H`` belongs to gate ``k`` of (r, z, n). PyTorch stores the
transposes with the same gate order: ``weight_ih_l0 = w_ih.T``, ``weight_hh_l0 = w_hh.T``,
``bias_ih_l0 = b_ih``, ``bias_hh_l0 = b_hh``. (The two biases of the n block are not
interchangeable, which is why a GRU has two bias vectors.)

Backward through time, with ``dh`` the gradient reaching ``h_t``::

    dn = dh ⊙ (1 − z)                 dz = dh ⊙ (h_{t-1} − n)
    dp_n = dn ⊙ (1 − n²)              dq_n = dp_n ⊙ r
    dp_r = dq_r = dp_n ⊙ q_n ⊙ r(1 − r)
    dp_z = dq_z = dz ⊙ z(1 − z)
    dh_{t-1} = dh ⊙ z + dq_t W_hhᵀ  (+ the output gradient at t − 1)

and after the loop ``dW_hh = Σ_t h_{t-1}ᵀ dq_t``, ``db_hh = Σ dq``, ``dW_ih = Σ_t x_tᵀ dp_t``,
``db_ih = Σ dp``, ``dx = dp W_ihᵀ``.

The numba twins split the batch over threads as in :mod:`fastdl.kernels.lstm`.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels import _recurrent as rec
from fastdl.kernels._activation_rows import ONE, sigmoid_into, tanh_into
from fastdl.kernels._blas import gemm, serial_blas
from fastdl.kernels._jit import jit, pair
from fastdl.kernels._threads import chunk_bounds, n_chunks, run_chunks

__all__ = ["gru_forward", "gru_backward"]


def gru_forward_np(x, w_ih, w_hh, b_ih, b_hh, h0):
    """Run a GRU over a batch of sequences (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (N, T, D) float, or (N, T) integer token ids
        As for :func:`fastdl.kernels.rnn.rnn_forward_np`.
    w_ih : ndarray, shape (D, 3H)
    w_hh : ndarray, shape (H, 3H)
    b_ih, b_hh : ndarray, shape (3H,)
    h0 : ndarray, shape (N, H)
        Initial hidden state.

    Returns
    -------
    hs : ndarray, shape (N, T, H)
        Hidden states ``h_1 … h_T`` (the layer's output).
    acts : ndarray, shape (N, T, 3H)
        ``[r | z | n]`` after their nonlinearities (kept for backward).
    qn : ndarray, shape (N, T, H)
        ``q_n = h_{t-1} W_hh[:, 2H:] + b_hh[2H:]``, the term the reset gate multiplies.
    """
    n, t_len = x.shape[:2]
    hid = w_hh.shape[0]
    xp = rec.project_np(x, w_ih) + b_ih
    hs = np.empty((n, t_len, hid), w_hh.dtype)
    acts = np.empty((n, t_len, 3 * hid), w_hh.dtype)
    qn = np.empty_like(hs)
    h = h0
    for t in range(t_len):
        p = xp[:, t]
        q = h @ w_hh + b_hh
        rz = rec.sigmoid(p[:, : 2 * hid] + q[:, : 2 * hid])
        r, z = rz[:, :hid], rz[:, hid:]
        cand = np.tanh(p[:, 2 * hid :] + r * q[:, 2 * hid :])
        h = (1 - z) * cand + z * h
        acts[:, t, : 2 * hid], acts[:, t, 2 * hid :] = rz, cand
        qn[:, t], hs[:, t] = q[:, 2 * hid :], h
    return hs, acts, qn


def gru_backward_np(x, w_ih, w_hh, h0, hs, acts, qn, dhs, need_dx):
    """Backpropagate through a GRU's time loop (NumPy twin).

    Parameters
    ----------
    x, w_ih, w_hh, h0 : as for :func:`gru_forward_np`
    hs, acts, qn : ndarray
        The outputs of :func:`gru_forward_np` for these inputs.
    dhs, need_dx
        As for :func:`fastdl.kernels.rnn.rnn_backward_np`: the gradient with respect to
        ``hs``, and whether to compute ``dx``.

    Returns
    -------
    dx : ndarray, shape (N, T, D), or None
    dw_ih : ndarray, shape (D, 3H)
    dw_hh : ndarray, shape (H, 3H)
    db_ih, db_hh : ndarray, shape (3H,)
    dh0 : ndarray, shape (N, H)
    """
    n, t_len, hid = hs.shape
    dp = np.empty_like(acts)
    dq = np.empty_like(acts)
    dh = np.zeros_like(h0)
    for t in range(t_len - 1, -1, -1):
        dh = dh + dhs[:, t]
        r, z, cand = acts[:, t, :hid], acts[:, t, hid : 2 * hid], acts[:, t, 2 * hid :]
        h_prev = hs[:, t - 1] if t > 0 else h0
        dpn = dh * (1 - z) * (1 - cand * cand)
        dp[:, t, :hid] = dpn * qn[:, t] * r * (1 - r)
        dp[:, t, hid : 2 * hid] = dh * (h_prev - cand) * z * (1 - z)
        dp[:, t, 2 * hid :] = dpn
        dq[:, t, : 2 * hid] = dp[:, t, : 2 * hid]
        dq[:, t, 2 * hid :] = dpn * r
        dh = dh * z + dq[:, t] @ w_hh.T
    dq2 = dq.reshape(n * t_len, 3 * hid)
    dw_hh = rec.shifted_np(h0, hs).T @ dq2
    db_hh = dq2.sum(axis=0)
    db_ih = dp.reshape(n * t_len, 3 * hid).sum(axis=0)
    dx, dw_ih = rec.input_grads_np(x, w_ih, dp, need_dx)
    return dx, dw_ih, dw_hh, db_ih, db_hh, dh


@jit
def _forward_step(q_t, xp, b_ih, b_hh, h, hs, acts, qn, n0, t, qr, s, u):
    """Step ``t`` on the chunk's rows, given ``q_t = W_hhᵀ h_{t-1}ᵀ`` ``(3H, nc)`` (without
    ``b_hh``): the gates, then ``h`` in place (``qr`` ``(3H,)``, ``s`` ``(2H,)`` and ``u``
    ``(H,)`` are scratch)."""
    nc, t_len, hid = h.shape[0], hs.shape[1], hs.shape[2]
    for r in range(nc):
        for k in range(3 * hid):
            qr[k] = q_t[k, r]
        xr, hr = xp[r * t_len + t], h[r]
        act = acts[n0 + r, t]
        qnr = qn[n0 + r, t]
        for k in range(2 * hid):
            s[k] = xr[k] + b_ih[k] + qr[k] + b_hh[k]
        sigmoid_into(s, act[: 2 * hid])
        for k in range(hid):
            qnr[k] = qr[2 * hid + k] + b_hh[2 * hid + k]
            u[k] = xr[2 * hid + k] + b_ih[2 * hid + k] + act[k] * qnr[k]
        tanh_into(u, act[2 * hid :])
        for k in range(hid):
            cand = act[2 * hid + k]
            hr[k] = cand + act[hid + k] * (hr[k] - cand)
        hs[n0 + r, t] = hr


@jit
def _backward_step(h0, hs, acts, qn, dhs, dp, dq, dh, dqb, n0, t):
    """Step ``t`` backwards on the chunk's rows: ``dp_t`` and ``dq_t`` (also into ``dqb``),
    and ``dh ← dh ⊙ z``, to which the caller adds ``dq_t W_hhᵀ``."""
    nc, hid = dh.shape
    for r in range(nc):
        row = n0 + r
        act, qnr = acts[row, t], qn[row, t]
        h_prev = hs[row, t - 1] if t > 0 else h0[row]
        dhr, dqr, dpr, dhsr = dh[r], dqb[r], dp[row, t], dhs[row, t]
        for k in range(hid):
            rg = act[k]
            z = act[hid + k]
            cand = act[2 * hid + k]
            d = dhr[k] + dhsr[k]
            dpn = d * (ONE - z) * (ONE - cand * cand)
            dpr[k] = dpn * qnr[k] * rg * (ONE - rg)
            dpr[hid + k] = d * (h_prev[k] - cand) * z * (ONE - z)
            dpr[2 * hid + k] = dpn
            dqr[k] = dpr[k]
            dqr[hid + k] = dpr[hid + k]
            dqr[2 * hid + k] = dpn * rg
            dhr[k] = d * z
        dq[row, t] = dqr


@jit
def _forward_frame(x, weights, state0, outs, chunks, ch):
    """The forward time loop on one chunk of rows; the recurrent product computed
    transposed, ``qᵀ = W_hhᵀ hᵀ`` (see ``lstm._forward_frame``)."""
    w_ih, w_hh_t, b_ih, b_hh = weights
    (h0,), (hs, acts, qn) = state0, outs
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    nc, t_len, hid = n1 - n0, hs.shape[1], hs.shape[2]
    xp = np.empty((nc * t_len, 3 * hid), hs.dtype)
    rec.project(x, w_ih, n0, n1, xp)
    h = h0[n0:n1].copy()
    q_t = np.empty((3 * hid, nc), hs.dtype)
    qr, s, u = np.empty(3 * hid, hs.dtype), np.empty(2 * hid, hs.dtype), np.empty(hid, hs.dtype)
    for t in range(t_len):
        gemm(False, True, 1.0, w_hh_t, h, 0.0, q_t)
        _forward_step(q_t, xp, b_ih, b_hh, h, hs, acts, qn, n0, t, qr, s, u)


def _forward_frame_st(x, weights, state0, outs, chunks, ch):
    """Staged :func:`_forward_frame`: the products by numpy's ``matmul``."""
    w_ih, w_hh_t, b_ih, b_hh = weights
    (h0,), (hs, acts, qn) = state0, outs
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    nc, hid, dt = n1 - n0, hs.shape[2], hs.dtype
    xp = rec.project_st(x, w_ih, n0, n1)
    h = h0[n0:n1].copy()
    q_t = np.empty((3 * hid, nc), dt)
    qr, s, u = np.empty(3 * hid, dt), np.empty(2 * hid, dt), np.empty(hid, dt)
    for t in range(hs.shape[1]):
        np.matmul(w_hh_t, h.T, out=q_t)
        _forward_step(q_t, xp, b_ih, b_hh, h, hs, acts, qn, n0, t, qr, s, u)


@jit
def _backward_frame(x, weights, saved, dhs, need_dx, grads, partials, chunks, ch):
    """Backward through time on one chunk of rows, then its weight gradients."""
    (w_ih, w_hh_t), (h0, hs, acts, qn) = weights, saved
    (dp, dq, dx, dh0), (dw_ih_p, dw_hh_p, dbi_p, dbh_p) = grads, partials
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    nc, t_len, hid = n1 - n0, hs.shape[1], hs.shape[2]
    dh = np.zeros((nc, hid), hs.dtype)
    dqb = np.empty((nc, 3 * hid), hs.dtype)
    for t in range(t_len - 1, -1, -1):
        _backward_step(h0, hs, acts, qn, dhs, dp, dq, dh, dqb, n0, t)
        gemm(False, False, 1.0, dqb, w_hh_t, 1.0, dh)
    dh0[n0:n1] = dh
    rec.weight_grads(h0, hs, dq, n0, n1, dw_hh_p[ch], dbh_p[ch])
    dp_c = dp[n0:n1].reshape(nc * t_len, 3 * hid)
    rec.colsum_into(dp_c, dbi_p[ch])
    rec.input_grads(x, w_ih, dp_c, n0, n1, dw_ih_p[ch], dx, need_dx)


def _backward_frame_st(x, weights, saved, dhs, need_dx, grads, partials, chunks, ch):
    """Staged :func:`_backward_frame`: the products by numpy's ``matmul``."""
    (w_ih, w_hh_t), (h0, hs, acts, qn) = weights, saved
    (dp, dq, dx, dh0), (dw_ih_p, dw_hh_p, dbi_p, dbh_p) = grads, partials
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    nc, hid = n1 - n0, hs.shape[2]
    dh = np.zeros((nc, hid), hs.dtype)
    dqb = np.empty((nc, 3 * hid), hs.dtype)
    for t in range(hs.shape[1] - 1, -1, -1):
        _backward_step(h0, hs, acts, qn, dhs, dp, dq, dh, dqb, n0, t)
        dh += dqb @ w_hh_t
    dh0[n0:n1] = dh
    rec.weight_grads_st(h0, hs, dq, n0, n1, dw_hh_p[ch], dbh_p[ch])
    dp_c = dp[n0:n1].reshape(-1, 3 * hid)
    rec.colsum_into(dp_c, dbi_p[ch])
    rec.input_grads_st(x, w_ih, dp_c, n0, n1, dw_ih_p[ch], dx, need_dx)


def _forward(frame, x, w_ih, w_hh, b_ih, b_hh, h0):
    n, t_len = x.shape[:2]
    hid = w_hh.shape[0]
    hs = np.empty((n, t_len, hid), w_hh.dtype)
    acts = np.empty((n, t_len, 3 * hid), w_hh.dtype)
    qn = np.empty_like(hs)
    with serial_blas():
        weights = (w_ih, rec.transposed(w_hh), b_ih, b_hh)
        run_chunks(frame, n_chunks(n), x, weights, (h0,), (hs, acts, qn))
    return hs, acts, qn


def _backward(frame, x, w_ih, w_hh, h0, hs, acts, qn, dhs, need_dx):
    n, _, hid = hs.shape
    dt = w_hh.dtype
    need_dx = bool(need_dx) and x.ndim == 3
    dp, dq = np.empty_like(acts), np.empty_like(acts)
    dh0 = np.empty((n, hid), dt)
    dx = np.empty(x.shape, dt) if need_dx else np.empty((0, 0, 0), dt)
    args = (x, (w_ih, rec.transposed(w_hh)), (h0, hs, acts, qn), dhs, need_dx, (dp, dq, dx, dh0))
    shapes = [w_ih.shape, w_hh.shape, (3 * hid,), (3 * hid,)]
    with serial_blas():
        dw_ih, dw_hh, db_ih, db_hh = rec.chunked_grads(frame, n_chunks(n), args, shapes, dt)
    return (dx if need_dx else None), dw_ih, dw_hh, db_ih, db_hh, dh0


def gru_forward_nb(x, w_ih, w_hh, b_ih, b_hh, h0):
    """numba twin of :func:`gru_forward_np`: same arguments, dtypes and output shapes."""
    return _forward(_forward_frame, x, w_ih, w_hh, b_ih, b_hh, h0)


def gru_backward_nb(x, w_ih, w_hh, h0, hs, acts, qn, dhs, need_dx):
    """numba twin of :func:`gru_backward_np`: same arguments, dtypes and output shapes."""
    return _backward(_backward_frame, x, w_ih, w_hh, h0, hs, acts, qn, dhs, need_dx)


def gru_forward_st(x, w_ih, w_hh, b_ih, b_hh, h0):
    """Staged twin of :func:`gru_forward_np` (compiled steps, numpy's ``matmul``)."""
    return _forward(_forward_frame_st, x, w_ih, w_hh, b_ih, b_hh, h0)


def gru_backward_st(x, w_ih, w_hh, h0, hs, acts, qn, dhs, need_dx):
    """Staged twin of :func:`gru_backward_np` (compiled steps, numpy's ``matmul``)."""
    return _backward(_backward_frame_st, x, w_ih, w_hh, h0, hs, acts, qn, dhs, need_dx)


gru_forward = pair(gru_forward_np, gru_forward_nb, gru_forward_st)
gru_backward = pair(gru_backward_np, gru_backward_nb, gru_backward_st)
