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

from fastdl.kernels._blas import gemm, serial_blas
from fastdl.kernels._cell import ONE, chunk_bounds, tanh_into
from fastdl.kernels._jit import jit, pair
from fastdl.kernels._seq import (
    colsum_into,
    input_grads_dense,
    input_grads_ids,
    n_chunks,
    project_dense,
    project_ids,
    run_chunks,
    shifted_states,
    transposed,
)
from fastdl.kernels.lstm import _input_grads_np, _project_np, _shifted_np

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
    xp = _project_np(x, w_ih) + b
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
    dw_hh = _shifted_np(h0, hs).T @ da2
    db = da2.sum(axis=0)
    dx, dw_ih = _input_grads_np(x, w_ih, da, need_dx)
    return dx, dw_ih, dw_hh, db, dh


@jit
def _forward_chunk(xp, w_hh_t, b, h0, hs, n0, n1):
    """The time loop on rows ``n0:n1``; the recurrent product computed transposed,
    ``aᵀ = W_hhᵀ hᵀ`` (see ``lstm._forward_chunk``)."""
    nc, t_len, hid = n1 - n0, hs.shape[1], hs.shape[2]
    h = h0[n0:n1].copy()
    a_t = np.empty((hid, nc), hs.dtype)
    ar = np.empty(hid, hs.dtype)
    for t in range(t_len):
        gemm(False, True, 1.0, w_hh_t, h, 0.0, a_t)
        for r in range(nc):
            xr = xp[r * t_len + t]
            for k in range(hid):
                ar[k] = a_t[k, r] + xr[k] + b[k]
            tanh_into(ar, h[r])
            hs[n0 + r, t] = h[r]


@jit
def _backward_chunk(w_hh_t, hs, dhs, da, dh0, n0, n1):
    nc, t_len, hid = n1 - n0, hs.shape[1], hs.shape[2]
    dh = np.zeros((nc, hid), hs.dtype)
    dab = np.empty((nc, hid), hs.dtype)
    for t in range(t_len - 1, -1, -1):
        for r in range(nc):
            row = n0 + r
            hr, dhr, dar, dhsr = hs[row, t], dh[r], dab[r], dhs[row, t]
            for k in range(hid):
                dar[k] = (dhr[k] + dhsr[k]) * (ONE - hr[k] * hr[k])
            da[row, t] = dar
        gemm(False, False, 1.0, dab, w_hh_t, 0.0, dh)
    dh0[n0:n1] = dh


@jit
def _weight_grads_chunk(h0, hs, da, n0, n1, dw_hh, db):
    nc, t_len, hid = n1 - n0, hs.shape[1], hs.shape[2]
    hprev = np.empty((nc * t_len, hid), hs.dtype)
    shifted_states(h0, hs, n0, n1, hprev)
    da_c = da[n0:n1].reshape(nc * t_len, hid)
    gemm(True, False, 1.0, hprev, da_c, 0.0, dw_hh)
    colsum_into(da_c, db)
    return da_c


@jit
def _forward_dense(x, w_ih, w_hh_t, b, h0, hs, chunks, ch):
    t_len, hid = x.shape[1], w_hh_t.shape[0]
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    xp = np.empty(((n1 - n0) * t_len, hid), hs.dtype)
    project_dense(x, w_ih, n0, n1, xp)
    _forward_chunk(xp, w_hh_t, b, h0, hs, n0, n1)


@jit
def _forward_ids(ids, w_ih, w_hh_t, b, h0, hs, chunks, ch):
    t_len, hid = ids.shape[1], w_hh_t.shape[0]
    n0, n1 = chunk_bounds(ids.shape[0], chunks, ch)
    xp = np.empty(((n1 - n0) * t_len, hid), hs.dtype)
    project_ids(ids, w_ih, n0, n1, xp)
    _forward_chunk(xp, w_hh_t, b, h0, hs, n0, n1)


@jit
def _backward_dense(
    x, w_ih, w_hh_t, h0, hs, dhs, need_dx, da, dx, dh0, dw_ih_p, dw_hh_p, db_p, chunks, ch
):
    n0, n1 = chunk_bounds(x.shape[0], chunks, ch)
    _backward_chunk(w_hh_t, hs, dhs, da, dh0, n0, n1)
    da_c = _weight_grads_chunk(h0, hs, da, n0, n1, dw_hh_p[ch], db_p[ch])
    input_grads_dense(x, w_ih, da_c, n0, n1, dw_ih_p[ch], dx, need_dx)


@jit
def _backward_ids(ids, w_hh_t, h0, hs, dhs, da, dh0, dw_ih_p, dw_hh_p, db_p, chunks, ch):
    n0, n1 = chunk_bounds(ids.shape[0], chunks, ch)
    _backward_chunk(w_hh_t, hs, dhs, da, dh0, n0, n1)
    da_c = _weight_grads_chunk(h0, hs, da, n0, n1, dw_hh_p[ch], db_p[ch])
    input_grads_ids(ids, da_c, n0, n1, dw_ih_p[ch])


def rnn_forward_nb(x, w_ih, w_hh, b, h0):
    """numba twin of :func:`rnn_forward_np`: same arguments, dtypes and output shapes."""
    n, t_len = x.shape[:2]
    hs = np.empty((n, t_len, w_hh.shape[0]), w_hh.dtype)
    chunks = n_chunks(n)
    w_hh_t = transposed(w_hh)
    with serial_blas():
        if x.ndim == 2:
            run_chunks(_forward_ids, chunks, x, w_ih, w_hh_t, b, h0, hs)
        else:
            run_chunks(_forward_dense, chunks, x, w_ih, w_hh_t, b, h0, hs)
    return hs


def rnn_backward_nb(x, w_ih, w_hh, h0, hs, dhs, need_dx):
    """numba twin of :func:`rnn_backward_np`: same arguments, dtypes and output shapes."""
    n, t_len, hid = hs.shape
    chunks = n_chunks(n)
    dt = w_hh.dtype
    w_hh_t = transposed(w_hh)
    da = np.empty_like(hs)
    dh0 = np.empty((n, hid), dt)
    dw_ih_p = np.empty((chunks,) + w_ih.shape, dt)
    dw_hh_p = np.empty((chunks,) + w_hh.shape, dt)
    db_p = np.empty((chunks, hid), dt)
    with serial_blas():
        if x.ndim == 2:
            run_chunks(
                _backward_ids, chunks, x, w_hh_t, h0, hs, dhs, da, dh0, dw_ih_p, dw_hh_p, db_p
            )
            dx = None
        else:
            need_dx = bool(need_dx)
            dx = np.empty(x.shape, dt) if need_dx else np.empty((0, 0, 0), dt)
            run_chunks(
                _backward_dense, chunks, x, w_ih, w_hh_t, h0, hs, dhs, need_dx, da, dx, dh0,
                dw_ih_p, dw_hh_p, db_p,
            )  # fmt: skip
            dx = dx if need_dx else None
    return dx, dw_ih_p.sum(axis=0), dw_hh_p.sum(axis=0), db_p.sum(axis=0), dh0


rnn_forward = pair(rnn_forward_np, rnn_forward_nb)
rnn_backward = pair(rnn_backward_np, rnn_backward_nb)
