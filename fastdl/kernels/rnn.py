"""Elman RNN (tanh) time loops, forward and backward: NumPy twins first, numba twins second.

Notation
--------
N      batch size
T      time steps
D      input features (or the vocabulary size, for token ids standing for one-hot rows)
H_hid  hidden size, written H below

Cell (PyTorch's ``nn.RNN`` with ``nonlinearity="tanh"``)::

    h_t = tanh(x_t W_ih + h_{t-1} W_hh + b)

Weight layout: ``w_ih`` ``(D, H)``, ``w_hh`` ``(H, H)``, ``b`` ``(H,)``. PyTorch stores the
transposes and two biases: ``weight_ih_l0 = w_ih.T``, ``weight_hh_l0 = w_hh.T``,
``bias_ih_l0 + bias_hh_l0 = b``.

Backward through time, with ``dh`` the gradient reaching ``h_t``::

    da_t = dh ⊙ (1 − h_t²)          dh_{t-1} = da_t W_hhᵀ  (+ the output gradient at t − 1)

and after the loop ``dW_hh = Σ_t h_{t-1}ᵀ da_t``, ``dW_ih = Σ_t x_tᵀ da_t``, ``db = Σ da``,
``dx = da W_ihᵀ``.

The numba twins split the batch over threads as in :mod:`fastdl.kernels.lstm`.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels import _recurrent as rec
from fastdl.kernels._activation_rows import ONE, tanh_into
from fastdl.kernels._blas import gemm, serial_blas
from fastdl.kernels._jit import jit, pair
from fastdl.kernels._threads import chunk_bounds, n_chunks, run_chunks

__all__ = ["rnn_forward", "rnn_backward"]


def rnn_forward_np(x, w_ih, w_hh, b, h0):
    """Run a tanh RNN over a batch of sequences (NumPy twin).

    Parameters
    ----------
    x : ndarray, shape (N, T, D), float32 or float64; or shape (N, T), integer
        Inputs; integer token ids in ``[0, D)`` stand for one-hot rows.
    w_ih : ndarray, shape (D, H)
    w_hh : ndarray, shape (H, H)
    b : ndarray, shape (H,)
    h0 : ndarray, shape (N, H)
        Initial hidden state.

    Returns
    -------
    hs : ndarray, shape (N, T, H)
        Hidden states ``h_1 … h_T`` (the layer's output; also all backward needs).
    """
    n, t_len = x.shape[:2]
    xp = rec.project_np(x, w_ih) + b
    hs = np.empty((n, t_len, w_hh.shape[0]), w_hh.dtype)
    h = h0
    for t in range(t_len):
        h = np.tanh(xp[:, t] + h @ w_hh)
        hs[:, t] = h
    return hs


def rnn_backward_np(x, w_ih, w_hh, h0, hs, dhs, need_dx):
    """Backpropagate through a tanh RNN's time loop (NumPy twin).

    Parameters
    ----------
    x, w_ih, w_hh, h0 : as for :func:`rnn_forward_np`
    hs : ndarray, shape (N, T, H)
        The output of :func:`rnn_forward_np` for these inputs.
    dhs : ndarray, shape (N, T, H)
        Gradient of the loss with respect to ``hs``.
    need_dx : bool
        Compute ``dx`` (False for the first layer; always None for token ids).

    Returns
    -------
    dx : ndarray, shape (N, T, D), or None
    dw_ih : ndarray, shape (D, H)
    dw_hh : ndarray, shape (H, H)
    db : ndarray, shape (H,)
    dh0 : ndarray, shape (N, H)
    """
    n, t_len, hid = hs.shape
    da = np.empty_like(hs)
    dh = np.zeros_like(h0)
    for t in range(t_len - 1, -1, -1):
        dh = dh + dhs[:, t]
        da[:, t] = dh * (1 - hs[:, t] * hs[:, t])
        dh = da[:, t] @ w_hh.T
    da2 = da.reshape(n * t_len, hid)
    dw_hh = rec.shifted_np(h0, hs).T @ da2
    db = da2.sum(axis=0)
    dx, dw_ih = rec.input_grads_np(x, w_ih, da, need_dx)
    return dx, dw_ih, dw_hh, db, dh


@jit
def _forward_step(a_t, xp, b, h, hs, n0, t, ar):
    """Step ``t`` on the chunk's rows, given ``a_t = W_hhᵀ h_{t-1}ᵀ`` ``(H, nc)``: ``h`` in
    place (``ar`` ``(H,)`` is scratch)."""
    nc, t_len, hid = h.shape[0], hs.shape[1], hs.shape[2]
    for r in range(nc):
        xr = xp[r * t_len + t]
        for k in range(hid):
            ar[k] = a_t[k, r] + xr[k] + b[k]
        tanh_into(ar, h[r])
        hs[n0 + r, t] = h[r]


@jit
def _backward_step(hs, dhs, da, dh, dab, n0, t):
    """Step ``t`` backwards on the chunk's rows: ``da_t`` into ``dab`` and ``da`` from the
    gradient ``dh`` reaching ``h_t`` (before this step's output gradient is added)."""
    nc, hid = dh.shape
    for r in range(nc):
        row = n0 + r
        hr, dhr, dar, dhsr = hs[row, t], dh[r], dab[r], dhs[row, t]
        for k in range(hid):
            dar[k] = (dhr[k] + dhsr[k]) * (ONE - hr[k] * hr[k])
        da[row, t] = dar


@jit
def _forward_frame(x, weights, state0, outs, chunks, ch):
    """The forward time loop on one chunk of rows; the recurrent product computed
    transposed, ``aᵀ = W_hhᵀ hᵀ`` (see ``lstm._forward_frame``)."""
    (w_ih, w_hh_t, b), (h0,), (hs,) = weights, state0, outs
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    nc, t_len, hid = n1 - n0, hs.shape[1], hs.shape[2]
    xp = np.empty((nc * t_len, hid), hs.dtype)
    rec.project(x, w_ih, n0, n1, xp)
    h = h0[n0:n1].copy()
    a_t = np.empty((hid, nc), hs.dtype)
    ar = np.empty(hid, hs.dtype)
    for t in range(t_len):
        gemm(False, True, 1.0, w_hh_t, h, 0.0, a_t)
        _forward_step(a_t, xp, b, h, hs, n0, t, ar)


def _forward_frame_st(x, weights, state0, outs, chunks, ch):
    """Staged :func:`_forward_frame`: the products by numpy's ``matmul``."""
    (w_ih, w_hh_t, b), (h0,), (hs,) = weights, state0, outs
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    hid = hs.shape[2]
    xp = rec.project_st(x, w_ih, n0, n1)
    h = h0[n0:n1].copy()
    a_t = np.empty((hid, n1 - n0), hs.dtype)
    ar = np.empty(hid, hs.dtype)
    for t in range(hs.shape[1]):
        np.matmul(w_hh_t, h.T, out=a_t)
        _forward_step(a_t, xp, b, h, hs, n0, t, ar)


@jit
def _backward_frame(x, weights, saved, dhs, need_dx, grads, partials, chunks, ch):
    """Backward through time on one chunk of rows, then its weight gradients."""
    (w_ih, w_hh_t), (h0, hs), (da, dx, dh0) = weights, saved, grads
    dw_ih_p, dw_hh_p, db_p = partials
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    nc, t_len, hid = n1 - n0, hs.shape[1], hs.shape[2]
    dh = np.zeros((nc, hid), hs.dtype)
    dab = np.empty((nc, hid), hs.dtype)
    for t in range(t_len - 1, -1, -1):
        _backward_step(hs, dhs, da, dh, dab, n0, t)
        gemm(False, False, 1.0, dab, w_hh_t, 0.0, dh)
    dh0[n0:n1] = dh
    da_c = rec.weight_grads(h0, hs, da, n0, n1, dw_hh_p[ch], db_p[ch])
    rec.input_grads(x, w_ih, da_c, n0, n1, dw_ih_p[ch], dx, need_dx)


def _backward_frame_st(x, weights, saved, dhs, need_dx, grads, partials, chunks, ch):
    """Staged :func:`_backward_frame`: the products by numpy's ``matmul``."""
    (w_ih, w_hh_t), (h0, hs), (da, dx, dh0) = weights, saved, grads
    dw_ih_p, dw_hh_p, db_p = partials
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    nc, hid = n1 - n0, hs.shape[2]
    dh = np.zeros((nc, hid), hs.dtype)
    dab = np.empty((nc, hid), hs.dtype)
    for t in range(hs.shape[1] - 1, -1, -1):
        _backward_step(hs, dhs, da, dh, dab, n0, t)
        np.matmul(dab, w_hh_t, out=dh)
    dh0[n0:n1] = dh
    da_c = rec.weight_grads_st(h0, hs, da, n0, n1, dw_hh_p[ch], db_p[ch])
    rec.input_grads_st(x, w_ih, da_c, n0, n1, dw_ih_p[ch], dx, need_dx)


def _forward(frame, x, w_ih, w_hh, b, h0):
    n, t_len = x.shape[:2]
    hs = np.empty((n, t_len, w_hh.shape[0]), w_hh.dtype)
    with serial_blas():
        run_chunks(frame, n_chunks(n), x, (w_ih, rec.transposed(w_hh), b), (h0,), (hs,))
    return hs


def _backward(frame, x, w_ih, w_hh, h0, hs, dhs, need_dx):
    n, _, hid = hs.shape
    dt = w_hh.dtype
    need_dx = bool(need_dx) and x.ndim == 3
    da = np.empty_like(hs)
    dh0 = np.empty((n, hid), dt)
    dx = np.empty(x.shape, dt) if need_dx else np.empty((0, 0, 0), dt)
    args = (x, (w_ih, rec.transposed(w_hh)), (h0, hs), dhs, need_dx, (da, dx, dh0))
    with serial_blas():
        dw_ih, dw_hh, db = rec.chunked_grads(
            frame, n_chunks(n), args, [w_ih.shape, w_hh.shape, (hid,)], dt
        )
    return (dx if need_dx else None), dw_ih, dw_hh, db, dh0


def rnn_forward_nb(x, w_ih, w_hh, b, h0):
    """numba twin of :func:`rnn_forward_np`: same arguments, dtypes and output shapes."""
    return _forward(_forward_frame, x, w_ih, w_hh, b, h0)


def rnn_backward_nb(x, w_ih, w_hh, h0, hs, dhs, need_dx):
    """numba twin of :func:`rnn_backward_np`: same arguments, dtypes and output shapes."""
    return _backward(_backward_frame, x, w_ih, w_hh, h0, hs, dhs, need_dx)


def rnn_forward_st(x, w_ih, w_hh, b, h0):
    """Staged twin of :func:`rnn_forward_np` (compiled steps, numpy's ``matmul``)."""
    return _forward(_forward_frame_st, x, w_ih, w_hh, b, h0)


def rnn_backward_st(x, w_ih, w_hh, h0, hs, dhs, need_dx):
    """Staged twin of :func:`rnn_backward_np` (compiled steps, numpy's ``matmul``)."""
    return _backward(_backward_frame_st, x, w_ih, w_hh, h0, hs, dhs, need_dx)


rnn_forward = pair(rnn_forward_np, rnn_forward_nb, rnn_forward_st)
rnn_backward = pair(rnn_backward_np, rnn_backward_nb, rnn_backward_st)
