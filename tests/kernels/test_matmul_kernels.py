"""Three tiers for the batched matrix product: naive loops → NumPy twin → numba twin."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import matmul

IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb"]
SHAPES = [(1, 1, 1, 1), (1, 3, 4, 5), (5, 7, 2, 6), (3, 16, 33, 9)]  # (B, M, K, N)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "trans",
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["nn", "tn", "nt", "tt"],
)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_batched_matmul_matches_naive(shape, trans, dtype, impl):
    bsz, m, k, n = shape
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((bsz, m, k)) * 10).astype(dtype)
    b = rng.standard_normal((bsz, k, n)).astype(dtype)
    ta, tb = trans
    a_in = np.ascontiguousarray(a.transpose(0, 2, 1)) if ta else a
    b_in = np.ascontiguousarray(b.transpose(0, 2, 1)) if tb else b
    got = getattr(matmul.batched_matmul, impl)(a_in, b_in, ta, tb)
    assert got.dtype == dtype and got.shape == (bsz, m, n)
    magnitude = naive.matmul(np.abs(a), np.abs(b))
    eps = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(got, naive.matmul(a, b), rtol=0, atol=eps * (1 + magnitude.max()))
