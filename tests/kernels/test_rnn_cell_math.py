"""The recurrent kernels' vectorised tanh/sigmoid (kernels/_cell.py) against NumPy in float64."""

from __future__ import annotations

import numpy as np
import pytest

from fastdl import config
from fastdl.kernels import _activation_rows as _cell

pytestmark = pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba helpers when not pure")


def test_float32_rational_tanh_accuracy_and_range():
    x = np.concatenate(
        [np.linspace(-20, 20, 200_001), [0.0, -0.0, 1e-30, -1e-30, 7.9, 8.0, 1e30, -1e30]]
    ).astype(np.float32)
    out = np.empty_like(x)
    _cell.tanh_into(x, out)
    err = np.abs(out.astype(np.float64) - np.tanh(x.astype(np.float64)))
    assert err.max() < 4e-7
    assert np.all(np.abs(out) <= 1)
    line = out[:200_001]
    np.testing.assert_array_equal(line, -line[::-1])  # odd


def test_float64_tanh_is_exact_to_rounding():
    x = np.linspace(-30, 30, 10_001)
    out = np.empty_like(x)
    _cell.tanh_into(x, out)
    np.testing.assert_allclose(out, np.tanh(x), rtol=4e-16, atol=1e-300)


def test_nan_propagates():
    for dtype in (np.float32, np.float64):
        x = np.array([np.nan, 1.0], dtype)
        out = np.empty_like(x)
        _cell.tanh_into(x, out)
        assert np.isnan(out[0]) and not np.isnan(out[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_sigmoid_and_scaled_tanh(dtype):
    rng = np.random.default_rng(0)
    hid = 5
    x = (4 * rng.standard_normal(4 * hid)).astype(dtype)
    sig = 1 / (1 + np.exp(-x.astype(np.float64)))
    out = np.empty_like(x)
    _cell.sigmoid_into(x.copy(), out)
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out, sig, atol=tol)
    scale, shift = _cell.gate_scales("ssts", hid, dtype)
    _cell.scaled_tanh_into(x.copy(), out, scale, shift)
    want = sig.copy()
    want[2 * hid : 3 * hid] = np.tanh(x[2 * hid : 3 * hid].astype(np.float64))
    np.testing.assert_allclose(out, want, atol=tol)
