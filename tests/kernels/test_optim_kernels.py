"""The optimizer-update kernels: numba twin = NumPy twin bit for bit (special values and odd
layouts included), NumPy twin = a naive per-element oracle, and the optimizers' updates
through them."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fastdl import config
from fastdl.kernels import optim

compiled = pytest.mark.skipif(config.PURE_AT_IMPORT, reason="no compiled twins when pure")

SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, 1e30, -1e30, 3.5, -2.25]

# name → (NumPy twin, numba twin, number of state arrays, scalar arguments)
KERNELS = {
    "sgd_momentum": (optim.sgd_momentum_update_np, optim.sgd_momentum_update_nb, 1,
                     (0.1, 0.9, False)),
    "sgd_nesterov": (optim.sgd_momentum_update_np, optim.sgd_momentum_update_nb, 1,
                     (0.1, 0.9, True)),
    "adagrad": (optim.adagrad_update_np, optim.adagrad_update_nb, 1, (0.01, 1e-7)),
    "rmsprop": (optim.rmsprop_update_np, optim.rmsprop_update_nb, 1, (0.001, 0.9, 1e-7)),
    "adam": (optim.adam_update_np, optim.adam_update_nb, 2,
             (0.001 / (1 - 0.9**3), 0.9, 0.999, 1 / (1 - 0.999**3), 1e-8)),
    "adadelta": (optim.adadelta_update_np, optim.adadelta_update_nb, 2, (1.0, 0.9, 1e-6)),
}  # fmt: skip


def naive(name, p, g, states, scalars):
    """The formulas one element at a time, with the scalars in the arrays' dtype."""
    t = p.dtype.type
    p, states = p.copy(), [s.copy() for s in states]
    with np.errstate(all="ignore"):
        for i in np.ndindex(p.shape):
            gi = g[i]
            if name.startswith("sgd"):
                lr, mu, nesterov = t(scalars[0]), t(scalars[1]), scalars[2]
                step = gi * lr
                v = states[0][i] * mu + step
                states[0][i] = v
                p[i] -= step + v * mu if nesterov else v
            elif name == "adagrad":
                lr, eps = map(t, scalars)
                states[0][i] += gi * gi
                p[i] -= (gi * lr) / (np.sqrt(states[0][i]) + eps)
            elif name == "rmsprop":
                lr, rho, eps = map(t, scalars)
                states[0][i] = states[0][i] * rho + gi * t(1.0 - scalars[1]) * gi
                p[i] -= (gi * lr) / (np.sqrt(states[0][i]) + eps)
            elif name == "adam":
                lr_m, b1, b2, v_scale, eps = map(t, scalars)
                states[0][i] = states[0][i] * b1 + gi * t(1.0 - scalars[1])
                states[1][i] = states[1][i] * b2 + gi * gi * t(1.0 - scalars[2])
                p[i] -= states[0][i] / (np.sqrt(states[1][i] * v_scale) + eps) * lr_m
            else:
                lr, rho, eps = map(t, scalars)
                states[0][i] = states[0][i] * rho + gi * gi * t(1.0 - scalars[1])
                delta = np.sqrt(states[1][i] + eps) / np.sqrt(states[0][i] + eps) * gi
                states[1][i] = states[1][i] * rho + delta * delta * t(1.0 - scalars[1])
                p[i] -= delta * lr
    return p, states


def make(shape, dtype, n_states, seed, positive_states=True):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=shape).astype(dtype)
    g = rng.normal(size=shape).astype(dtype)
    states = [(np.abs if positive_states else np.asarray)(rng.normal(size=shape)).astype(dtype)
              for _ in range(n_states)]  # fmt: skip
    return p, g, states


def run(fn, p, g, states, scalars):
    p, states = p.copy(), [s.copy() for s in states]
    with np.errstate(all="ignore"):
        fn(p, g, *states, *scalars)
    return p, states


def assert_same_bits(a, b):
    """Equal bits, except that a NaN equals any NaN (the sign and payload of a NaN made by,
    e.g., √−∞ differ between the CPU's vector square root and LLVM's)."""
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    keep = ~np.isnan(a)
    np.testing.assert_array_equal(a[keep].view(np.uint8), b[keep].view(np.uint8))


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 4, 5), (0,), (2, 1, 3, 3)])
def test_numpy_twin_matches_the_naive_oracle(name, dtype, shape):
    np_fn, _, n, scalars = KERNELS[name]
    p, g, states = make(shape, dtype, n, seed=len(shape))
    got_p, got_s = run(np_fn, p, g, states, scalars)
    want_p, want_s = naive(name, p, g, states, scalars)
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(got_p, want_p, rtol=rtol, atol=0)
    for a, b in zip(got_s, want_s, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=0)


@compiled
@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 4, 5), (0,), (1000, 13)])
def test_numba_twin_gives_the_numpy_twins_bits(name, dtype, shape):
    np_fn, nb_fn, n, scalars = KERNELS[name]
    p, g, states = make(shape, dtype, n, seed=3)
    a_p, a_s = run(np_fn, p, g, states, scalars)
    b_p, b_s = run(nb_fn, p, g, states, scalars)
    assert_same_bits(a_p, b_p)
    for a, b in zip(a_s, b_s, strict=True):
        assert_same_bits(a, b)


@compiled
@pytest.mark.parametrize("name", KERNELS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_special_values_give_the_same_bits(name, data):
    """NaN, ±Inf, −0, subnormals and huge values in the parameters, gradients and states."""
    np_fn, nb_fn, n, scalars = KERNELS[name]
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    size = data.draw(st.integers(1, 12))
    values = st.sampled_from(SPECIAL)
    draw = [data.draw(arrays(dtype, (size,), elements=values)) for _ in range(2 + n)]
    p, g, states = draw[0], draw[1], draw[2:]
    a_p, a_s = run(np_fn, p, g, states, scalars)
    b_p, b_s = run(nb_fn, p, g, states, scalars)
    assert_same_bits(a_p, b_p)
    for a, b in zip(a_s, b_s, strict=True):
        assert_same_bits(a, b)


@compiled
@pytest.mark.parametrize("name", KERNELS)
def test_odd_layouts_update_in_place_as_the_numpy_twin(name):
    """A transposed gradient, or transposed parameters and states: still in place, same bits
    (the numba twin hands such calls to the NumPy twin)."""
    np_fn, nb_fn, n, scalars = KERNELS[name]
    p, g, states = make((6, 5), np.float32, n, seed=5)
    g_t = np.asfortranarray(g)
    for layout in ("grad", "all"):
        conv = (lambda a: a) if layout == "grad" else (lambda a: np.asfortranarray(a))
        pa, sa = conv(p.copy()), [conv(s.copy()) for s in states]
        pb, sb = conv(p.copy()), [conv(s.copy()) for s in states]
        with np.errstate(all="ignore"):
            np_fn(pa, g, *sa, *scalars)
            nb_fn(pb, g_t, *sb, *scalars)
        assert_same_bits(np.ascontiguousarray(pa), np.ascontiguousarray(pb))
        for a, b in zip(sa, sb, strict=True):
            assert_same_bits(np.ascontiguousarray(a), np.ascontiguousarray(b))
        assert not np.array_equal(pb, p)  # updated in place
