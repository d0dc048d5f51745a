"""Naive per-sample, per-step, per-gate oracles of the RNN, GRU and LSTM kernels.

Deliberately structured unlike the kernels: one sequence at a time, one gate at a time with
its own weight slices and matrix-vector products, ``1 / (1 + exp(-v))`` for the sigmoid, and
weight gradients accumulated as one outer product per step. Everything is computed in float64.

Each function takes the kernels' arguments (``x`` float ``(N, T, D)``; ``w_ih`` ``(D, G·H)``;
``w_hh`` ``(H, G·H)``; biases; initial state ``(N, H)``) plus ``dhs`` ``(N, T, H)``, the
gradient with respect to every hidden state, and returns ``(outputs, grads)``.
"""

from __future__ import annotations

import numpy as np


def _f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def _block(w, k, h):
    return w[:, k * h : (k + 1) * h]


def lstm(x, w_ih, w_hh, b, h0, c0, dhs):
    """Returns ``(hs, cs), (dx, dw_ih, dw_hh, db, dh0, dc0)``; gates i, f, g, o."""
    x, w_ih, w_hh, b, h0, c0, dhs = _f64(x, w_ih, w_hh, b, h0, c0, dhs)
    n_seq, t_len, _ = x.shape
    hid = h0.shape[1]
    hs = np.zeros((n_seq, t_len, hid))
    cs = np.zeros((n_seq, t_len, hid))
    dx = np.zeros_like(x)
    dw_ih, dw_hh, db = np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros_like(b)
    dh0, dc0 = np.zeros_like(h0), np.zeros_like(c0)
    for n in range(n_seq):
        h, c = h0[n], c0[n]
        steps = []
        for t in range(t_len):
            pre = [
                x[n, t] @ _block(w_ih, k, hid)
                + h @ _block(w_hh, k, hid)
                + b[k * hid : (k + 1) * hid]
                for k in range(4)
            ]
            i, f, g, o = _sig(pre[0]), _sig(pre[1]), np.tanh(pre[2]), _sig(pre[3])
            c_new = f * c + i * g
            h_new = o * np.tanh(c_new)
            steps.append((h, c, i, f, g, o, c_new))
            h, c = h_new, c_new
            hs[n, t], cs[n, t] = h, c
        dh, dc = np.zeros(hid), np.zeros(hid)
        for t in reversed(range(t_len)):
            h_prev, c_prev, i, f, g, o, c_new = steps[t]
            dh = dh + dhs[n, t]
            do = dh * np.tanh(c_new)
            dc = dc + dh * o * (1 - np.tanh(c_new) ** 2)
            di, df, dg = dc * g, dc * c_prev, dc * i
            dpre = [di * i * (1 - i), df * f * (1 - f), dg * (1 - g**2), do * o * (1 - o)]
            dh_prev = np.zeros(hid)
            for k in range(4):
                _block(dw_ih, k, hid)[...] += np.outer(x[n, t], dpre[k])
                _block(dw_hh, k, hid)[...] += np.outer(h_prev, dpre[k])
                db[k * hid : (k + 1) * hid] += dpre[k]
                dx[n, t] += _block(w_ih, k, hid) @ dpre[k]
                dh_prev += _block(w_hh, k, hid) @ dpre[k]
            dh, dc = dh_prev, dc * f
        dh0[n], dc0[n] = dh, dc
    return (hs, cs), (dx, dw_ih, dw_hh, db, dh0, dc0)


def gru(x, w_ih, w_hh, b_ih, b_hh, h0, dhs):
    """Returns ``(hs,), (dx, dw_ih, dw_hh, db_ih, db_hh, dh0)``; PyTorch's nn.GRU (r, z, n)."""
    x, w_ih, w_hh, b_ih, b_hh, h0, dhs = _f64(x, w_ih, w_hh, b_ih, b_hh, h0, dhs)
    n_seq, t_len, _ = x.shape
    hid = h0.shape[1]
    hs = np.zeros((n_seq, t_len, hid))
    dx = np.zeros_like(x)
    dw_ih, dw_hh = np.zeros_like(w_ih), np.zeros_like(w_hh)
    db_ih, db_hh, dh0 = np.zeros_like(b_ih), np.zeros_like(b_hh), np.zeros_like(h0)

    def bias(vec, k):
        return vec[k * hid : (k + 1) * hid]

    for n in range(n_seq):
        h = h0[n]
        steps = []
        for t in range(t_len):
            xi = [x[n, t] @ _block(w_ih, k, hid) + bias(b_ih, k) for k in range(3)]
            hh = [h @ _block(w_hh, k, hid) + bias(b_hh, k) for k in range(3)]
            r = _sig(xi[0] + hh[0])
            z = _sig(xi[1] + hh[1])
            cand = np.tanh(xi[2] + r * hh[2])
            steps.append((h, r, z, cand, hh[2]))
            h = (1 - z) * cand + z * h
            hs[n, t] = h
        dh = np.zeros(hid)
        for t in reversed(range(t_len)):
            h_prev, r, z, cand, hn = steps[t]
            dh = dh + dhs[n, t]
            dcand = dh * (1 - z)
            dz = dh * (h_prev - cand)
            dpre_n = dcand * (1 - cand**2)
            dr = dpre_n * hn
            dpre_r = dr * r * (1 - r)
            dpre_z = dz * z * (1 - z)
            d_in = [dpre_r, dpre_z, dpre_n]  # gradients of x W_i* + b_i*
            d_hid = [dpre_r, dpre_z, dpre_n * r]  # gradients of h W_h* + b_h*
            dh_prev = dh * z
            for k in range(3):
                _block(dw_ih, k, hid)[...] += np.outer(x[n, t], d_in[k])
                _block(dw_hh, k, hid)[...] += np.outer(h_prev, d_hid[k])
                bias(db_ih, k)[...] += d_in[k]
                bias(db_hh, k)[...] += d_hid[k]
                dx[n, t] += _block(w_ih, k, hid) @ d_in[k]
                dh_prev = dh_prev + _block(w_hh, k, hid) @ d_hid[k]
            dh = dh_prev
        dh0[n] = dh
    return (hs,), (dx, dw_ih, dw_hh, db_ih, db_hh, dh0)


def rnn(x, w_ih, w_hh, b, h0, dhs):
    """Returns ``(hs,), (dx, dw_ih, dw_hh, db, dh0)``; ``h_t = tanh(x W_ih + h W_hh + b)``."""
    x, w_ih, w_hh, b, h0, dhs = _f64(x, w_ih, w_hh, b, h0, dhs)
    n_seq, t_len, _ = x.shape
    hid = h0.shape[1]
    hs = np.zeros((n_seq, t_len, hid))
    dx = np.zeros_like(x)
    dw_ih, dw_hh, db, dh0 = (
        np.zeros_like(w_ih),
        np.zeros_like(w_hh),
        np.zeros_like(b),
        np.zeros_like(h0),
    )
    for n in range(n_seq):
        h = h0[n]
        prevs = []
        for t in range(t_len):
            prevs.append(h)
            h = np.tanh(x[n, t] @ w_ih + h @ w_hh + b)
            hs[n, t] = h
        dh = np.zeros(hid)
        for t in reversed(range(t_len)):
            dh = dh + dhs[n, t]
            da = dh * (1 - hs[n, t] ** 2)
            dw_ih += np.outer(x[n, t], da)
            dw_hh += np.outer(prevs[t], da)
            db += da
            dx[n, t] = w_ih @ da
            dh = w_hh @ da
        dh0[n] = dh
    return (hs,), (dx, dw_ih, dw_hh, db, dh0)


# -- harness shared by tests/kernels/test_{rnn,gru,lstm}.py --------------------------------

GATES = {"rnn": 1, "gru": 3, "lstm": 4}
N_STATES = {"rnn": 1, "gru": 1, "lstm": 2}
N_BIASES = {"rnn": 1, "gru": 2, "lstm": 1}
ORACLES = {"rnn": rnn, "gru": gru, "lstm": lstm}


def make_case(cell, n, t, d, h, dtype, seed, ids=False):
    """Random inputs for ``cell``: dict with x (float, one-hot if ``ids``), tokens, params,
    state and dhs. Weights are scaled by 1/sqrt(fan-in) so the gates are not saturated."""
    rng = np.random.default_rng(seed)
    g = GATES[cell]
    tokens = rng.integers(0, d, size=(n, t)) if ids else None
    x = np.eye(d)[tokens] if ids else rng.standard_normal((n, t, d))
    params = [
        rng.standard_normal((d, g * h)) / np.sqrt(d),
        rng.standard_normal((h, g * h)) / np.sqrt(h),
    ] + [0.5 * rng.standard_normal(g * h) for _ in range(N_BIASES[cell])]
    state = [0.5 * rng.standard_normal((n, h)) for _ in range(N_STATES[cell])]
    dhs = rng.standard_normal((n, t, h))

    def cast(a):
        return np.ascontiguousarray(a, dtype=dtype)

    return {
        "x": cast(x),
        "tokens": tokens,
        "params": [cast(p) for p in params],
        "state": [cast(s) for s in state],
        "dhs": cast(dhs),
    }


def run_kernels(cell, impl, inp, params, state, dhs, need_dx=True):
    """Call the ``impl`` twin ("np" or "nb") of ``cell``'s kernels.

    Returns ``(visible, saved, grads)``: the states the oracle also returns (``[hs]`` or
    ``[hs, cs]``), everything forward returned, and backward's tuple.
    """
    from fastdl.kernels import gru as kgru
    from fastdl.kernels import lstm as klstm
    from fastdl.kernels import rnn as krnn

    if cell == "lstm":
        saved = getattr(klstm.lstm_forward, impl)(inp, *params, *state)
        grads = getattr(klstm.lstm_backward, impl)(
            inp, params[0], params[1], *state, *saved, dhs, need_dx
        )
        return list(saved[:2]), list(saved), list(grads)
    if cell == "gru":
        saved = getattr(kgru.gru_forward, impl)(inp, *params, *state)
        grads = getattr(kgru.gru_backward, impl)(
            inp, params[0], params[1], *state, *saved, dhs, need_dx
        )
        return [saved[0]], list(saved), list(grads)
    hs = getattr(krnn.rnn_forward, impl)(inp, *params, *state)
    grads = getattr(krnn.rnn_backward, impl)(inp, params[0], params[1], *state, hs, dhs, need_dx)
    return [hs], [hs], list(grads)


def assert_close(got, want, dtype, what):
    """``got ≈ want`` with a tolerance scaled to the magnitude of ``want`` (float32: 1e-5
    relative to the largest element, to absorb rounding in sums; float64: 1e-10)."""
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    eps = 3e-5 if dtype == np.float32 else 1e-10
    scale = 1.0 + float(np.max(np.abs(want), initial=0.0))
    np.testing.assert_allclose(got, want, rtol=eps, atol=eps * scale, err_msg=what)
