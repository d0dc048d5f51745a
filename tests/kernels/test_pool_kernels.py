"""Three tiers for the max-pool kernels: naive loops (NCHW) → NumPy twin → numba twin."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import pool

# (id, N, C, H, W, F, S)
CASES = [
    ("batch1-2x2", 1, 3, 4, 4, 2, 2),
    ("odd-image-drops-edge", 2, 2, 5, 7, 2, 2),
    ("overlap-3x3-s2", 2, 3, 7, 6, 3, 2),
    ("overlap-3x3-s1", 1, 2, 5, 5, 3, 1),
    ("stride3>size2", 2, 2, 8, 9, 2, 3),
    ("1x1", 2, 3, 3, 4, 1, 1),
    ("window=image", 2, 4, 3, 3, 3, 3),
]
IDS = [c[0] for c in CASES]
# "nb" pools small inputs on one thread; "nb-par" forces the parallel path
IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb", "nb-par"]


def twin(fn, impl, monkeypatch):
    if impl == "nb-par":
        monkeypatch.setattr(pool, "SERIAL_MAX_SIZE", 0)
        return fn.nb
    return getattr(fn, impl)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_maxpool_matches_naive(case, dtype, impl, monkeypatch):
    _, n, c, h, w, f, s = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y_e, dx_of = naive.maxpool(x, f, s)
    xn = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y, idx = twin(pool.maxpool_forward, impl, monkeypatch)(xn, f, s)
    assert y.dtype == dtype and idx.dtype == np.int32
    assert y.shape == y_e.shape and y.flags.c_contiguous  # NCHW
    np.testing.assert_array_equal(y, y_e)  # a max is exact
    dy = rng.standard_normal(y_e.shape).astype(dtype)
    dx = twin(pool.maxpool_backward, impl, monkeypatch)(dy, idx, h, w, f, s)
    assert dx.dtype == dtype and dx.shape == xn.shape
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(dx.transpose(0, 3, 1, 2), dx_of(dy), rtol=0, atol=tol)


@pytest.mark.parametrize("impl", IMPLS)
def test_ties_pick_the_first_maximum(impl, monkeypatch):
    x = np.zeros((1, 4, 4, 2), dtype=np.float32)
    y, idx = twin(pool.maxpool_forward, impl, monkeypatch)(x, 2, 2)
    np.testing.assert_array_equal(idx[0, 0], [[0, 2], [8, 10]])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_without_indices_the_same_maxima(case, impl, monkeypatch):
    """``need_idx=False`` (an inference pass): no index array, the same values to the bit,
    NaN and infinities included."""
    _, n, c, h, w, f, s = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, h, w, c)).astype(np.float32)
    x.flat[rng.integers(0, x.size, 3)] = [np.nan, np.inf, -np.inf]
    forward = twin(pool.maxpool_forward, impl, monkeypatch)
    want, idx = forward(x, f, s)
    got, none = forward(x, f, s, need_idx=False)
    assert none is None and idx is not None
    assert got.flags.c_contiguous and got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
