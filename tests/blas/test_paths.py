"""Every BLAS path gives the NumPy twins' results, and the path in use is the one asked for."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from conftest import assert_matches_twins, run_sample
from kernel_sample import reference, sample

import fastdl as fd
from fastdl import config

pytestmark = pytest.mark.skipif(config.PURE_AT_IMPORT, reason="no compiled kernels when pure")


def blas():
    from fastdl.kernels import _blas

    return _blas


@pytest.fixture(scope="module")
def twins():
    return reference()


@pytest.mark.parametrize("path", config.BLAS_PATHS)
def test_every_path_matches_the_numpy_twins(path, twins):
    if path not in blas().available_paths():
        pytest.fail(f"BLAS path {path} cannot run here: {blas()._why_not(path)}")
    with config.use_blas(path):
        assert config.blas_path() == path
        got = sample()
    assert_matches_twins(got, twins)


@pytest.mark.parametrize("path", config.BLAS_PATHS)
def test_every_path_chosen_at_import_matches_the_numpy_twins(path, twins, tmp_path):
    got, info = run_sample(tmp_path, FASTDL_BLAS=path)
    assert info["path"] == path and info["requested"] == path
    assert_matches_twins(got, twins)


def test_auto_takes_the_first_path_that_can_run(tmp_path):
    _, info = run_sample(tmp_path, FASTDL_BLAS="auto")
    assert info["path"] == info["available"][0] == "cblas"


def test_the_cblas_path_gives_the_bits_of_calling_the_library_directly():
    """What the kernels get through the slot is what the library's own sgemm returns."""
    found = blas().FOUND.gemm
    lib = ctypes.CDLL(found.library.path)
    index = ctypes.c_int64 if found.int_bits == 64 else ctypes.c_int32
    rng = np.random.default_rng(3)
    for dtype, name, real in ((np.float32, found.sgemm, ctypes.c_float),
                              (np.float64, found.dgemm, ctypes.c_double)):  # fmt: skip
        a = rng.standard_normal((37, 53)).astype(dtype)
        b = rng.standard_normal((29, 53)).astype(dtype)  # used transposed
        c0 = rng.standard_normal((37, 29)).astype(dtype)
        direct = c0.copy()
        fn = lib[name]
        fn.restype = None
        fn.argtypes = [ctypes.c_int32] * 3 + [index] * 3 + [real, ctypes.c_void_p, index,
                       ctypes.c_void_p, index, real, ctypes.c_void_p, index]  # fmt: skip
        fn(101, 111, 112, 37, 29, 53, 0.5, a.ctypes.data, 53, b.ctypes.data, 53, 1.5,
           direct.ctypes.data, 29)  # fmt: skip
        with config.use_blas("cblas"):
            via = c0.copy()
            blas().gemm(False, True, 0.5, a, b, 1.5, via)
        np.testing.assert_array_equal(via, direct)


@pytest.mark.parametrize("path", config.BLAS_PATHS)
def test_a_cnn_trains_alike_on_every_path(path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 1, 10, 10)).astype(np.float32)
    y = rng.integers(0, 3, 8)

    def losses():
        net = fd.NeuralNetwork(
            [fd.Conv2D(4, 3, activation=fd.ReLU()), fd.MaxPool2D(2), fd.Flatten(), fd.Dense(3)],
            fd.SoftmaxCrossEntropy(), seed=1,
        )  # fmt: skip
        optim = fd.SGDMomentum(lr=0.05, momentum=0.9)
        fd.Trainer(net, optim)
        out = []
        for _ in range(5):
            out.append(net.train_batch(x, y))
            optim.step()
        return np.array(out)

    with config.use_pure():
        want = losses()
    with config.use_blas(path):
        got = losses()
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_the_numpy_path_runs_the_staged_twins(monkeypatch):
    from fastdl.kernels import conv

    calls = []
    for name, tag in (("_forward_group", "st"), ("_conv2d_forward_serial", "nb")):
        real = getattr(conv, name)
        monkeypatch.setattr(conv, name, lambda *a, _r=real, _t=tag: calls.append(_t) or _r(*a))
    x = np.ones((1, 4, 4, 1), np.float32)
    w, b = np.ones((3, 3, 1, 2), np.float32), np.zeros(2, np.float32)
    for path in config.BLAS_PATHS:
        with config.use_blas(path):
            conv.conv2d_forward(x, w, b, 1, (0, 0, 0, 0), False)
    assert calls == ["nb", "nb", "st", "nb"]


def test_a_path_that_cannot_run_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(blas(), "available_paths", lambda: ["numpy", "loops"])
    before = config.blas_path()
    with pytest.raises(RuntimeError, match="FASTDL_BLAS=cblas: cannot run here: no CBLAS"):
        with config.use_blas("cblas"):
            pass
    assert config.blas_path() == before


def test_auto_warns_when_only_loops_are_left(monkeypatch):
    before = config.blas_path()
    monkeypatch.setattr(blas(), "available_paths", lambda: ["loops"])
    try:
        with pytest.warns(RuntimeWarning, match="compiled loops"):
            assert blas()._switch("auto") == "loops"
    finally:
        monkeypatch.undo()
        config._set_blas(before)  # point the GEMM back
    assert config.blas_path() == before


def test_a_forced_path_that_cannot_run_fails_at_import(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import fastdl"], capture_output=True, text=True,
        env={**__import__("os").environ, "FASTDL_BLAS": "cblas",
             "FASTDL_BLAS_LIBRARY": str(tmp_path / "missing.so")},
    )  # fmt: skip
    assert done.returncode != 0
    assert "FASTDL_BLAS=cblas: cannot run here: no CBLAS library" in done.stderr
    assert "missing.so" in done.stderr


def test_bad_fastdl_blas_value_is_an_error():
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import fastdl"], capture_output=True,
                          text=True, env={**os.environ, "FASTDL_BLAS": "mkl"})  # fmt: skip
    assert done.returncode != 0
    assert "FASTDL_BLAS: expected auto, cblas, scipy, numpy, loops; got 'mkl'" in done.stderr
    with pytest.raises(ValueError, match="use_blas: expected auto"):
        with config.use_blas("fast"):
            pass
