"""Three tiers for the batch-normalisation kernels: naive loops on the layers' layouts (NCHW,
``(N, D)``, ``(N, T, D)``) → NumPy twin → numba twin, serial and on threads, in both memory
layouts a ``BatchNorm2D`` meets (channels-last rows, NCHW planes)."""

from __future__ import annotations

import naive_batchnorm as naive
import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import batchnorm as bn

# (id, shape as the layer sees it, channel axis)
CASES = [
    ("2d-batch2-c1-1x1", (2, 1, 1, 1), 1),
    ("2d-batch1-3x3", (1, 3, 3, 3), 1),
    ("2d-3x4x5x6", (3, 4, 5, 6), 1),
    ("2d-odd-plane15", (2, 5, 3, 5), 1),
    ("2d-c33-1x2", (2, 33, 1, 2), 1),
    ("2d-nonsquare-c2", (4, 2, 2, 7), 1),
    ("1d-batch2", (2, 3), -1),
    ("1d-7x5", (7, 5), -1),
    ("1d-c1", (5, 1), -1),
    ("1d-seq-batch1", (1, 4, 3), -1),
    ("1d-seq-3x2x6", (3, 2, 6), -1),
]
IDS = [c[0] for c in CASES]
DTYPES = [np.float32, np.float64]
# "nb-par" forces the threaded path (blocks of rows or planes, partial sums per block)
IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb", "nb-par"]
EPS = 1e-5


def layouts(case):
    return ["rows", "planes"] if case[2] == 1 else ["rows"]


GRID = [(c, lay) for c in CASES for lay in layouts(c)]
GRID_IDS = [f"{c[0]}-{lay}" for c, lay in GRID]


@pytest.fixture
def kernel(monkeypatch):
    def pick(fn, impl):
        if impl.endswith("-par"):
            monkeypatch.setattr(bn, "SERIAL_MAX_SIZE", 0)
        return getattr(fn, impl.removesuffix("-par"))

    return pick


def to_kernel(a, axis, layout):
    """The layer-layout array ``a`` as the kernels' ``(A, C, B)``."""
    if axis != 1 or a.ndim == 2:
        return np.ascontiguousarray(a).reshape(-1, a.shape[-1], 1)
    n, c, h, w = a.shape
    if layout == "rows":
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).reshape(n * h * w, c, 1)
    return np.ascontiguousarray(a).reshape(n, c, h * w)


def from_kernel(r, shape, axis, layout):
    if axis != 1 or len(shape) == 2:
        return r.reshape(shape)
    n, c, h, w = shape
    if layout == "rows":
        return r.reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return r.reshape(shape)


def make(case, dtype, seed, offset=0.0, scale=1.0):
    _, shape, axis = case
    c = shape[axis]
    rng = np.random.default_rng(seed)
    x = offset + scale * rng.standard_normal(shape)
    gamma = 1 + 0.5 * rng.standard_normal(c)
    beta = rng.standard_normal(c)
    return x.astype(dtype), gamma.astype(dtype), beta.astype(dtype), axis


def tol(dtype, magnitude):
    """Absolute tolerance for results whose terms have absolute size ``magnitude``."""
    return (2e-5 if dtype == np.float32 else 1e-12) * (1.0 + float(np.max(magnitude)))


def trainable(shape, axis):
    return np.prod(shape) // shape[axis] >= 2


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case, layout", GRID, ids=GRID_IDS)
def test_forward_matches_naive(case, layout, dtype, relu, impl, kernel):
    x, gamma, beta, axis = make(case, dtype, 0)
    if not trainable(x.shape, axis):
        pytest.skip("one value per channel: the layers refuse to train on it")
    y_e, mean_e, var_e = naive.forward(x, gamma, beta, EPS, axis, relu)
    y, mean, var = kernel(bn.batchnorm_forward, impl)(
        to_kernel(x, axis, layout), gamma, beta, EPS, relu
    )
    assert y.dtype == mean.dtype == var.dtype == dtype and y.flags.c_contiguous
    assert mean.shape == var.shape == gamma.shape
    np.testing.assert_allclose(mean, mean_e, rtol=0, atol=tol(dtype, np.abs(x)))
    np.testing.assert_allclose(var, var_e, rtol=0, atol=tol(dtype, x * x))
    got = from_kernel(y, x.shape, axis, layout)
    np.testing.assert_allclose(got, y_e, rtol=0, atol=tol(dtype, np.abs(y_e) * 4))
    if relu:
        assert np.all(got >= 0)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case, layout", GRID, ids=GRID_IDS)
def test_inference_matches_naive(case, layout, dtype, relu, impl, kernel):
    x, gamma, beta, axis = make(case, dtype, 1)
    rng = np.random.default_rng(2)
    mean = rng.standard_normal(gamma.shape).astype(dtype)
    var = (0.5 + rng.random(gamma.shape)).astype(dtype)
    y_e, _, _ = naive.forward(x, gamma, beta, EPS, axis, relu, mean, var)
    scale = gamma / np.sqrt(var + EPS)
    shift = beta - mean * scale
    y = kernel(bn.batchnorm_inference, impl)(to_kernel(x, axis, layout), scale, shift, relu)
    assert y.dtype == dtype and y.flags.c_contiguous
    got = from_kernel(y, x.shape, axis, layout)
    np.testing.assert_allclose(got, y_e, rtol=0, atol=tol(dtype, np.abs(y_e) * 4))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("batch_stats", [True, False], ids=["training", "inference"])
@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case, layout", GRID, ids=GRID_IDS)
def test_backward_matches_naive(case, layout, dtype, relu, batch_stats, impl, kernel):
    x, gamma, beta, axis = make(case, dtype, 3)
    if batch_stats and not trainable(x.shape, axis):
        pytest.skip("one value per channel: the layers refuse to train on it")
    rng = np.random.default_rng(4)
    dy = rng.standard_normal(x.shape).astype(dtype)
    running = None
    if not batch_stats:
        running = (rng.standard_normal(gamma.shape).astype(dtype),
                   (0.5 + rng.random(gamma.shape)).astype(dtype))  # fmt: skip
    dx_e, dg_e, db_e = naive.backward(x, gamma, beta, dy, EPS, axis, relu, *(running or ()))
    xk = to_kernel(x, axis, layout)
    if batch_stats:
        y, mean, var = bn.batchnorm_forward.np(xk, gamma, beta, EPS, relu)
    else:
        mean, var = running
        scale = gamma / np.sqrt(var + EPS)
        y = bn.batchnorm_inference.np(xk, scale, beta - mean * scale, relu)
    dyk = to_kernel(dy, axis, layout)
    dx, dg, db = kernel(bn.batchnorm_backward, impl)(
        xk, y, dyk, gamma, mean, var, EPS, relu, batch_stats, True
    )
    assert dx.dtype == dg.dtype == db.dtype == dtype and dx.flags.c_contiguous
    m = x.size // x.shape[axis]
    magnitude = 10 * m * (1 + np.abs(gamma).max())
    np.testing.assert_allclose(from_kernel(dx, x.shape, axis, layout), dx_e, rtol=0,
                               atol=tol(dtype, magnitude))  # fmt: skip
    np.testing.assert_allclose(dg, dg_e, rtol=0, atol=tol(dtype, magnitude))
    np.testing.assert_allclose(db, db_e, rtol=0, atol=tol(dtype, magnitude))
    _, dg2, db2 = kernel(bn.batchnorm_backward, impl)(
        xk, y, dyk, gamma, mean, var, EPS, relu, batch_stats, False
    )
    np.testing.assert_array_equal(dg2, dg)
    np.testing.assert_array_equal(db2, db)
    assert _.shape == (0,) + xk.shape[1:]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_the_two_layouts_give_the_same_numbers(dtype, impl, kernel):
    """Rows (channels-last memory) and planes (NCHW memory) of one image batch."""
    x, gamma, beta, axis = make(("", (3, 6, 5, 4), 1), dtype, 5)
    dy = np.random.default_rng(6).standard_normal(x.shape).astype(dtype)
    fwd, bwd = kernel(bn.batchnorm_forward, impl), kernel(bn.batchnorm_backward, impl)
    results = []
    for layout in ("rows", "planes"):
        xk = to_kernel(x, axis, layout)
        y, mean, var = fwd(xk, gamma, beta, EPS, True)
        dx, dg, db = bwd(xk, y, to_kernel(dy, axis, layout), gamma, mean, var, EPS, True, True,
                         True)  # fmt: skip
        results.append((from_kernel(y, x.shape, axis, layout), mean, var,
                        from_kernel(dx, x.shape, axis, layout), dg, db))  # fmt: skip
    atol = 2e-5 if dtype == np.float32 else 1e-13
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=atol * (1 + np.abs(b).max()))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", ["rows", "planes"])
def test_the_variance_of_values_far_from_zero_stays_accurate(layout, impl, kernel):
    """float32 values 1000 ± 0.01: a one-pass Σx² − (Σx)²/M would lose every digit of the
    variance (1e-4 against 1e6 squared); the twins keep it to float32 rounding of the data."""
    x, gamma, beta, axis = make(("", (4, 3, 6, 5), 1), np.float32, 7, offset=1000.0,
                                scale=0.01)  # fmt: skip
    _, mean_e, var_e = naive.forward(x, gamma, beta, EPS, axis)
    _, mean, var = kernel(bn.batchnorm_forward, impl)(to_kernel(x, axis, layout), gamma, beta,
                                                     EPS, False)  # fmt: skip
    np.testing.assert_allclose(var, var_e, rtol=1e-4)
    np.testing.assert_allclose(mean, mean_e, rtol=1e-7)


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="compiled twins unavailable in pure mode")
@pytest.mark.parametrize("layout", ["rows", "planes"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_numba_matches_numpy_at_a_cnn_shape(layout, dtype):
    """The benchmark's shape, (64, 32, 26, 26) — a first 3×3 convolution's output on MNIST —
    where the threads take blocks of rows or planes."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((64, 32, 26, 26)).astype(dtype)
    gamma, beta = (1 + rng.standard_normal(32)).astype(dtype), rng.standard_normal(32).astype(dtype)
    xk = to_kernel(x, 1, layout)
    dy = to_kernel(rng.standard_normal(x.shape).astype(dtype), 1, layout)
    want = bn.batchnorm_forward.np(xk, gamma, beta, EPS, True)
    got = bn.batchnorm_forward.nb(xk, gamma, beta, EPS, True)
    scale = 1e-5 if dtype == np.float32 else 1e-12
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=0, atol=scale * (1 + np.abs(w).max()))
    y, mean, var = want
    want_grads = bn.batchnorm_backward.np(xk, y, dy, gamma, mean, var, EPS, True, True, True)
    got_grads = bn.batchnorm_backward.nb(xk, y, dy, gamma, mean, var, EPS, True, True, True)
    m = x.size // 32
    for g, w in zip(got_grads, want_grads, strict=True):  # sums of M = 43,264 terms
        np.testing.assert_allclose(g, w, rtol=0, atol=scale * (np.abs(w).max() + m**0.5))
