"""Three tiers for the dense layer's matrix product: naive loops → NumPy twin → numba and staged twins."""

from __future__ import annotations

import naive_conv as naive
import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import matmul

# -- the 2-D product split over threads --------------------------------------------------------

# "nb" as dispatched (small products on one thread); "nb-par" forces blocks on every product;
# "st"/"st-par" the same for the staged twin (the numpy BLAS path)
IMPLS_2D = ["np"] if config.PURE_AT_IMPORT else ["np", "nb", "nb-par", "st", "st-par"]
# (M, K, N): single rows and columns, K = 1, taller than wide (row blocks), wider than tall
# (column blocks), odd sizes that split unevenly
SHAPES_2D = [(1, 1, 1), (1, 5, 3), (4, 1, 6), (7, 3, 1), (33, 17, 5), (5, 17, 33), (24, 40, 9)]


def operands(m, k, n, trans, layout, dtype, rng):
    """``a``, ``b`` for ``op(a) @ op(b)`` of shape (M, N), stored as ``layout`` says."""
    a = (rng.standard_normal((m, k)) * 10).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    ta, tb = trans
    a_in, b_in = (a.T if ta else a), (b.T if tb else b)  # op(a_in) == a
    if layout == "contiguous":
        a_in, b_in = np.ascontiguousarray(a_in), np.ascontiguousarray(b_in)
    elif layout == "column-slices":  # rows contiguous, row stride larger than the width
        a_in = np.pad(np.ascontiguousarray(a_in), ((0, 0), (2, 3)))[:, 2:-3]
        b_in = np.pad(np.ascontiguousarray(b_in), ((0, 0), (1, 1)))[:, 1:-1]
    # "views": the transposed views as they are (rows not contiguous when the flag is set)
    return a, b, a_in, b_in


@pytest.mark.parametrize("impl", IMPLS_2D)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["contiguous", "column-slices", "views"])
@pytest.mark.parametrize(
    "trans",
    [(False, False), (True, False), (False, True), (True, True)],
    ids=["nn", "tn", "nt", "tt"],
)
@pytest.mark.parametrize("shape", SHAPES_2D, ids=lambda s: "x".join(map(str, s)))
def test_matmul_matches_naive(shape, trans, layout, dtype, impl, monkeypatch):
    m, k, n = shape
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a, b, a_in, b_in = operands(m, k, n, trans, layout, dtype, rng)
    if impl.endswith("-par"):
        monkeypatch.setattr(matmul, "SERIAL_MAX_FLOPS", 0)
        impl = impl.removesuffix("-par")
    got = getattr(matmul.matmul, impl)(a_in, b_in, *trans)
    assert got.dtype == dtype and got.shape == (m, n) and got.flags.c_contiguous
    expected = naive.matmul(a[None], b[None])[0]
    magnitude = naive.matmul(np.abs(a)[None], np.abs(b)[None])[0]
    eps = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(got, expected, rtol=0, atol=eps * (1 + magnitude.max()))


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twins unavailable")
@pytest.mark.parametrize(
    ("shape", "trans"),
    [
        ((64, 9216, 128), (False, False)),
        ((64, 128, 9216), (False, True)),
        ((9216, 64, 128), (True, False)),
    ],
    ids=["forward", "input-grad", "weight-grad"],
)
def test_matmul_blocks_agree_with_one_call_and_repeat_exactly(shape, trans, monkeypatch):
    """The product split into blocks of output rows or columns (the reference CNN's dense
    layer) agrees with the one-call product within float32 rounding, and repeats bit for bit.

    Not bitwise equal to the one-call product: OpenBLAS's micro-kernels for the edges of a
    block sum in another order than its main kernel (seen with its Haswell kernels on this
    machine's Zen 3 CPU), so the bits depend on where the blocks are cut. The thread count
    fixes the cut, which is why same seed + same thread count gives the same weights.
    """
    m, k, n = shape
    rng = np.random.default_rng(1)
    a = rng.standard_normal((k, m) if trans[0] else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans[1] else (k, n)).astype(np.float32)
    monkeypatch.setattr(matmul, "SERIAL_MAX_FLOPS", 0)  # blocks, whatever the thread count
    split = matmul.matmul.nb(a, b, *trans)
    np.testing.assert_array_equal(split, matmul.matmul.nb(a, b, *trans))
    monkeypatch.setattr(matmul, "SERIAL_MAX_FLOPS", 10**15)
    whole = matmul.matmul.nb(a, b, *trans)
    opa, opb = (a.T if trans[0] else a), (b.T if trans[1] else b)
    scale = np.abs(opa).astype(np.float64) @ np.abs(opb).astype(np.float64)
    assert np.all(np.abs(split - whole) <= 1e-6 * scale)


def odd_views(rng, dtype):
    """Operands whose rows GEMM cannot describe with a leading dimension: reversed rows,
    broadcast rows (stride 0), overlapping rows (a sliding window), negative column steps."""
    base = rng.standard_normal((40, 12)).astype(dtype)
    return {
        "reversed-rows": base[::-1],
        "broadcast-rows": np.broadcast_to(base[0], base.shape),
        "overlapping-rows": np.lib.stride_tricks.sliding_window_view(base.ravel(), 12)[:40],
        "reversed-columns": base[:, ::-1],
    }


@pytest.mark.parametrize("impl", IMPLS_2D)
@pytest.mark.parametrize(
    "view", ["reversed-rows", "broadcast-rows", "overlapping-rows", "reversed-columns"]
)
@pytest.mark.parametrize("side", ["a", "b-transposed"])
def test_matmul_on_views_gemm_cannot_read_in_place(view, side, impl, monkeypatch):
    rng = np.random.default_rng(5)
    odd = odd_views(rng, np.float32)[view]  # (40, 12)
    other = rng.standard_normal((12, 7)).astype(np.float32)
    if impl.endswith("-par"):
        monkeypatch.setattr(matmul, "SERIAL_MAX_FLOPS", 0)
        impl = impl.removesuffix("-par")
    fn = getattr(matmul.matmul, impl)
    if side == "a":  # odd @ other: (40, 7)
        got, expected = fn(odd, other, False, False), np.asarray(odd, np.float64) @ other
    else:  # other.T @ odd.T: (7, 40), odd given as the transposed operand b
        got, expected = fn(other, odd, True, True), other.T.astype(np.float64) @ np.asarray(odd).T
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS_2D)
def test_matmul_promotes_mixed_dtypes_as_numpy_does(impl, monkeypatch):
    rng = np.random.default_rng(6)
    a = rng.standard_normal((9, 5))  # float64
    b = rng.standard_normal((5, 4)).astype(np.float32)
    if impl.endswith("-par"):
        monkeypatch.setattr(matmul, "SERIAL_MAX_FLOPS", 0)
        impl = impl.removesuffix("-par")
    for x, y in ((a, b), (b.T, a.T)):
        got = getattr(matmul.matmul, impl)(x, y, False, False)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, x.astype(np.float64) @ y.astype(np.float64), rtol=1e-12)
