"""Optimizer updates, each in one pass over a parameter: SGD with momentum, AdaGrad, RMSprop,
Adam and Adadelta.

Every function updates ``param`` and its state arrays **in place** from ``grad`` and returns
nothing. All arrays of one call have one shape (any rank) and one dtype, float32 or float64;
the scalars are Python floats, used in that dtype (as NumPy uses a Python float with a
float32 array).

- ``sgd_momentum_update(p, g, v, lr, mu, nesterov)``: ``v ← μ·v + lr·g``;
  ``p ← p − v`` (Nesterov: ``p ← p − (μ·v + lr·g)``).
- ``adagrad_update(p, g, s, lr, eps)``: ``s ← s + g²``; ``p ← p − lr·g / (√s + eps)``.
- ``rmsprop_update(p, g, s, lr, rho, eps)``: ``s ← ρ·s + (1−ρ)·g²``;
  ``p ← p − lr·g / (√s + eps)``.
- ``adam_update(p, g, m, v, lr_m, beta1, beta2, v_scale, eps)``: ``m ← β1·m + (1−β1)·g``;
  ``v ← β2·v + (1−β2)·g²``; ``p ← p − lr_m · m / (√(v·v_scale) + eps)``, where the caller
  folds the bias corrections into ``lr_m = lr / (1 − β1ᵗ)`` and ``v_scale = 1 / (1 − β2ᵗ)``.
- ``adadelta_update(p, g, s, u, lr, rho, eps)``: ``s ← ρ·s + (1−ρ)·g²``;
  ``Δ = √(u + eps) / √(s + eps) · g``; ``u ← ρ·u + (1−ρ)·Δ²``; ``p ← p − lr·Δ``.

The NumPy twins are the formulas, a few whole-array operations each, in place where the
formula allows (each makes a temporary or two of the parameter's size). The numba
twins make one pass over the elements, computing each one with the same operations in the
same order as the NumPy twin, so both give the same bits; that pass reads each array once
instead of once per operation (Adadelta's NumPy form makes 16 passes). They need every array
C-contiguous (parameters and their state always are); a call with another layout runs the
NumPy twin.
"""

from __future__ import annotations

import numpy as np

from fastdl.kernels._jit import jit, pair

__all__ = [
    "sgd_momentum_update",
    "adagrad_update",
    "rmsprop_update",
    "adam_update",
    "adadelta_update",
]


# -- NumPy twins: the formulas as written -------------------------------------------------------


def sgd_momentum_update_np(param, grad, velocity, lr, momentum, nesterov):
    """``v ← μ·v + lr·g``; ``p ← p − v``, or ``p − (μ·v + lr·g)`` with Nesterov (NumPy twin).

    Parameters
    ----------
    param : ndarray, any shape, float32 or float64
        Updated in place.
    grad : ndarray, shape and dtype of ``param``
    velocity : ndarray, shape and dtype of ``param``
        ``v``, updated in place.
    lr, momentum : float
    nesterov : bool
    """
    step = grad * lr
    velocity *= momentum
    velocity += step
    if nesterov:
        step += velocity * momentum
        param -= step
    else:
        param -= velocity


def adagrad_update_np(param, grad, sum_sq, lr, eps):
    """``s ← s + g²``; ``p ← p − lr·g / (√s + eps)`` (NumPy twin).

    Parameters
    ----------
    param : ndarray, any shape, float32 or float64
        Updated in place.
    grad : ndarray, shape and dtype of ``param``
    sum_sq : ndarray, shape and dtype of ``param``
        ``s``, updated in place.
    lr, eps : float
    """
    sum_sq += grad * grad
    denom = np.sqrt(sum_sq)
    denom += eps
    step = grad * lr
    step /= denom
    param -= step


def rmsprop_update_np(param, grad, mean_sq, lr, rho, eps):
    """``s ← ρ·s + (1−ρ)·g²``; ``p ← p − lr·g / (√s + eps)`` (NumPy twin).

    Parameters
    ----------
    param : ndarray, any shape, float32 or float64
        Updated in place.
    grad : ndarray, shape and dtype of ``param``
    mean_sq : ndarray, shape and dtype of ``param``
        ``s``, updated in place.
    lr, rho, eps : float
    """
    mean_sq *= rho
    mean_sq += grad * (1.0 - rho) * grad
    denom = np.sqrt(mean_sq)
    denom += eps
    step = grad * lr
    step /= denom
    param -= step


def adam_update_np(param, grad, m, v, lr_m, beta1, beta2, v_scale, eps):
    """``m ← β1·m + (1−β1)·g``; ``v ← β2·v + (1−β2)·g²``;
    ``p ← p − lr_m·m / (√(v·v_scale) + eps)`` (NumPy twin).

    Parameters
    ----------
    param : ndarray, any shape, float32 or float64
        Updated in place.
    grad : ndarray, shape and dtype of ``param``
    m, v : ndarray, shape and dtype of ``param``
        The moving averages, updated in place.
    lr_m : float
        ``lr / (1 − β1ᵗ)``: the learning rate with the first moment's bias correction.
    beta1, beta2 : float
    v_scale : float
        ``1 / (1 − β2ᵗ)``, the second moment's bias correction.
    eps : float
    """
    m *= beta1
    m += grad * (1.0 - beta1)
    v *= beta2
    v += (grad * grad) * (1.0 - beta2)
    denom = v * v_scale
    np.sqrt(denom, out=denom)
    denom += eps
    step = m / denom
    step *= lr_m
    param -= step


def adadelta_update_np(param, grad, mean_sq_grad, mean_sq_delta, lr, rho, eps):
    """``s ← ρ·s + (1−ρ)·g²``; ``Δ = √(u + eps)/√(s + eps)·g``; ``u ← ρ·u + (1−ρ)·Δ²``;
    ``p ← p − lr·Δ`` (NumPy twin).

    Parameters
    ----------
    param : ndarray, any shape, float32 or float64
        Updated in place.
    grad : ndarray, shape and dtype of ``param``
    mean_sq_grad, mean_sq_delta : ndarray, shape and dtype of ``param``
        ``s`` and ``u``, updated in place.
    lr, rho, eps : float
    """
    mean_sq_grad *= rho
    mean_sq_grad += (grad * grad) * (1.0 - rho)
    delta = np.sqrt(mean_sq_delta + eps)
    delta /= np.sqrt(mean_sq_grad + eps)
    delta *= grad
    mean_sq_delta *= rho
    mean_sq_delta += (delta * delta) * (1.0 - rho)
    delta *= lr
    param -= delta


# -- numba twins: one pass, the same operations per element --------------------------------------
# The scalars arrive in the arrays' dtype: a float64 literal would turn float32 arithmetic into
# float64 and round differently from the NumPy twin.


@jit
def _sgd_momentum_1d(p, g, v, lr, mu, nesterov):
    for i in range(p.size):
        step = g[i] * lr
        vi = v[i] * mu + step
        v[i] = vi
        p[i] = p[i] - (step + vi * mu) if nesterov else p[i] - vi


@jit
def _adagrad_1d(p, g, s, lr, eps):
    for i in range(p.size):
        gi = g[i]
        si = s[i] + gi * gi
        s[i] = si
        p[i] = p[i] - (gi * lr) / (np.sqrt(si) + eps)


@jit
def _rmsprop_1d(p, g, s, lr, rho, one_minus_rho, eps):
    for i in range(p.size):
        gi = g[i]
        si = s[i] * rho + (gi * one_minus_rho) * gi
        s[i] = si
        p[i] = p[i] - (gi * lr) / (np.sqrt(si) + eps)


@jit
def _adam_1d(p, g, m, v, lr_m, beta1, one_minus_beta1, beta2, one_minus_beta2, v_scale, eps):
    for i in range(p.size):
        gi = g[i]
        mi = m[i] * beta1 + gi * one_minus_beta1
        vi = v[i] * beta2 + (gi * gi) * one_minus_beta2
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - (mi / (np.sqrt(vi * v_scale) + eps)) * lr_m


@jit
def _adadelta_1d(p, g, s, u, lr, rho, one_minus_rho, eps):
    for i in range(p.size):
        gi = g[i]
        si = s[i] * rho + (gi * gi) * one_minus_rho
        s[i] = si
        delta = (np.sqrt(u[i] + eps) / np.sqrt(si + eps)) * gi
        u[i] = u[i] * rho + (delta * delta) * one_minus_rho
        p[i] = p[i] - delta * lr


def _flat(arrays):
    """1-D views of ``arrays`` when all are C-contiguous with one dtype, else None."""
    dtype = arrays[0].dtype
    if all(a.flags.c_contiguous and a.dtype == dtype for a in arrays):
        return [a.reshape(-1) for a in arrays], dtype.type
    return None, None


def sgd_momentum_update_nb(param, grad, velocity, lr, momentum, nesterov):
    """numba twin of :func:`sgd_momentum_update_np`."""
    flat, t = _flat([param, grad, velocity])
    if flat is None:
        return sgd_momentum_update_np(param, grad, velocity, lr, momentum, nesterov)
    _sgd_momentum_1d(*flat, t(lr), t(momentum), bool(nesterov))


def adagrad_update_nb(param, grad, sum_sq, lr, eps):
    """numba twin of :func:`adagrad_update_np`."""
    flat, t = _flat([param, grad, sum_sq])
    if flat is None:
        return adagrad_update_np(param, grad, sum_sq, lr, eps)
    _adagrad_1d(*flat, t(lr), t(eps))


def rmsprop_update_nb(param, grad, mean_sq, lr, rho, eps):
    """numba twin of :func:`rmsprop_update_np`."""
    flat, t = _flat([param, grad, mean_sq])
    if flat is None:
        return rmsprop_update_np(param, grad, mean_sq, lr, rho, eps)
    _rmsprop_1d(*flat, t(lr), t(rho), t(1.0 - rho), t(eps))


def adam_update_nb(param, grad, m, v, lr_m, beta1, beta2, v_scale, eps):
    """numba twin of :func:`adam_update_np`."""
    flat, t = _flat([param, grad, m, v])
    if flat is None:
        return adam_update_np(param, grad, m, v, lr_m, beta1, beta2, v_scale, eps)
    _adam_1d(*flat, t(lr_m), t(beta1), t(1.0 - beta1), t(beta2), t(1.0 - beta2), t(v_scale),
             t(eps))  # fmt: skip


def adadelta_update_nb(param, grad, mean_sq_grad, mean_sq_delta, lr, rho, eps):
    """numba twin of :func:`adadelta_update_np`."""
    flat, t = _flat([param, grad, mean_sq_grad, mean_sq_delta])
    if flat is None:
        return adadelta_update_np(param, grad, mean_sq_grad, mean_sq_delta, lr, rho, eps)
    _adadelta_1d(*flat, t(lr), t(rho), t(1.0 - rho), t(eps))


sgd_momentum_update = pair(sgd_momentum_update_np, sgd_momentum_update_nb)
adagrad_update = pair(adagrad_update_np, adagrad_update_nb)
rmsprop_update = pair(rmsprop_update_np, rmsprop_update_nb)
adam_update = pair(adam_update_np, adam_update_nb)
adadelta_update = pair(adadelta_update_np, adadelta_update_nb)
