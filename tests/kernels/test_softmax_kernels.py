"""Three tiers for the softmax cross-entropy kernels: per-row loops in float64 → NumPy twin → numba."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import softmax

# "nb-loop" forces the compiled loop at every size; "nb" is the twin as dispatched (it hands
# logit arrays above LOOP_MAX_SIZE to NumPy)
IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb", "nb-loop"]
# (id, M, K)
SHAPES = [
    ("1x1", 1, 1),
    ("1x10", 1, 10),
    ("2x2", 2, 2),
    ("64x10-batch", 64, 10),
    ("257x3-odd", 257, 3),
    ("800x65-sequence", 800, 65),
]
TOL = {np.float32: 2e-6, np.float64: 1e-13}


def twin(fn, impl, monkeypatch):
    if impl == "nb-loop":
        monkeypatch.setattr(softmax, "LOOP_MAX_SIZE", 10**12)
        return fn.nb
    return getattr(fn, impl)


def naive(z, y):
    """Loss, probabilities and gradient, row by row with Python floats."""
    m, k = z.shape
    p = np.zeros((m, k))
    total = 0.0
    for r in range(m):
        row = [float(v) for v in z[r]]
        top = max(row)
        log_sum = math.log(sum(math.exp(v - top) for v in row))
        for j in range(k):
            p[r, j] = math.exp(row[j] - top - log_sum)
        total -= row[y[r]] - top - log_sum
    grad = p.copy()
    grad[np.arange(m), y] -= 1.0
    return total / m, p, grad / m


def logits(m, k, dtype, scale=3.0, layout="C"):
    rng = np.random.default_rng(m * 31 + k)
    z = (rng.standard_normal((m, 2 * k if layout == "strided" else k)) * scale).astype(dtype)
    z = z[:, ::2] if layout == "strided" else z
    return z, rng.integers(0, k, m)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["C", "strided"])
@pytest.mark.parametrize("shape", SHAPES, ids=[s[0] for s in SHAPES])
def test_forward_and_backward_match_the_loops(shape, layout, dtype, impl, monkeypatch):
    _, m, k = shape
    z, y = logits(m, k, dtype, layout=layout)
    loss_e, p_e, grad_e = naive(z, y)
    loss, p = twin(softmax.softmax_ce_forward, impl, monkeypatch)(z, y)
    dz = twin(softmax.softmax_ce_backward, impl, monkeypatch)(p, y)
    assert isinstance(loss, float)
    assert p.shape == dz.shape == (m, k) and p.dtype == dz.dtype == dtype
    tol = TOL[dtype]
    assert loss == pytest.approx(loss_e, rel=tol * 10, abs=tol)
    np.testing.assert_allclose(p, p_e, rtol=tol * 10, atol=tol)
    np.testing.assert_allclose(dz, grad_e, rtol=tol * 10, atol=tol / m)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=10 * tol)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("label_dtype", [np.uint8, np.int32, np.int64])
def test_label_dtypes(label_dtype, impl, monkeypatch):
    z, y = logits(64, 10, np.float32)
    loss_e, _, grad_e = naive(z, y)
    loss, p = twin(softmax.softmax_ce_forward, impl, monkeypatch)(z, y.astype(label_dtype))
    dz = twin(softmax.softmax_ce_backward, impl, monkeypatch)(p, y.astype(label_dtype))
    assert loss == pytest.approx(loss_e, rel=1e-5)
    np.testing.assert_allclose(dz, grad_e, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_huge_logits_do_not_overflow(dtype, impl, monkeypatch):
    """Logits of ±1e4 (exp overflows float32 at 88): finite loss, probabilities and gradient."""
    z = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4 + 1.0, -1e4], [5e3, 5e3, 5e3]], dtype=dtype)
    y = np.array([1, 1, 2])
    loss, p = twin(softmax.softmax_ce_forward, impl, monkeypatch)(z, y)
    dz = twin(softmax.softmax_ce_backward, impl, monkeypatch)(p, y)
    assert np.isfinite(loss) and np.all(np.isfinite(p)) and np.all(np.isfinite(dz))
    # row 0: log p_1 = −1e4; row 1: softmax of (0, 1, 0); row 2: uniform
    expected = (1e4 + (math.log(2 + math.e) - 1.0) + math.log(3.0)) / 3
    assert loss == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(p[2], 1 / 3, rtol=1e-6)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twins unavailable")
def test_numba_twin_runs_the_loop_up_to_its_size_limit(monkeypatch):
    calls = []
    monkeypatch.setattr(softmax, "softmax_ce_forward_np", lambda z, y: calls.append(z.shape))
    z, y = logits(30, 1000, np.float32)  # 30,000 elements: the loop
    softmax.softmax_ce_forward.nb(z, y)
    assert calls == []
    z, y = logits(31, 1000, np.float32)  # 31,000: NumPy
    softmax.softmax_ce_forward.nb(z, y)
    assert calls == [(31, 1000)]
