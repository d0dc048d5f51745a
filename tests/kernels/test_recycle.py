"""The very large output arrays are reused only when nothing refers to them any more."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import fastdl as fd
from fastdl import config
from fastdl.kernels import _recycle as recycle


@pytest.fixture
def small_pool(monkeypatch):
    """Keep arrays of 1 KiB and more, starting from an empty pool."""
    monkeypatch.setattr(recycle, "MIN_BYTES", 1024)
    monkeypatch.setattr(recycle, "_kept", [])
    return recycle


def test_small_arrays_are_not_kept(small_pool):
    a = small_pool.empty((10, 10), np.float32)  # 400 bytes
    assert a.shape == (10, 10) and a.dtype == np.float32 and a.flags.c_contiguous
    assert small_pool._kept == []


def test_an_unreferenced_array_is_reused_with_the_shape_asked_for(small_pool):
    a = small_pool.empty((64, 32), np.float32)
    a[:] = 7
    address = a.__array_interface__["data"][0]
    del a
    b = small_pool.empty((32, 64), np.float32)  # the same bytes, another shape
    assert b.__array_interface__["data"][0] == address
    assert b.shape == (32, 64) and b.flags.c_contiguous
    assert len(small_pool._kept) == 1


@pytest.mark.parametrize("hold", ["array", "view", "transpose", "slice"])
def test_an_array_still_referred_to_is_never_reused(small_pool, hold):
    a = small_pool.empty((64, 32), np.float32)
    a[:] = 7
    held = {"array": a, "view": a.reshape(-1), "transpose": a.T, "slice": a[3:5]}[hold]
    del a
    b = small_pool.empty((64, 32), np.float32)
    b[:] = -1
    assert not np.shares_memory(held, b)
    assert (held == 7).all()


def test_another_dtype_or_size_gets_a_new_array(small_pool):
    a = small_pool.empty((64, 32), np.float32)
    del a
    b = small_pool.empty((32, 32), np.float64)  # same bytes, another dtype
    assert b.dtype == np.float64 and b.shape == (32, 32)
    assert [k.dtype for k in small_pool._kept] == [np.float64]  # the float32 one was dropped


def test_a_miss_drops_the_unreferenced_arrays_of_other_sizes(small_pool):
    kept = small_pool.empty((64, 32), np.float32)
    gone = small_pool.empty((128, 32), np.float32)
    del gone
    small_pool.empty((256, 32), np.float32)  # fits neither: the free one is dropped
    sizes = sorted(k.size for k in small_pool._kept)
    assert sizes == [64 * 32, 256 * 32]
    del kept
    small_pool.trim()
    assert small_pool._kept == []


def _reference_cnn():
    return fd.NeuralNetwork(
        layers=[
            fd.Conv2D(8, 3, padding=0, activation=fd.ReLU()),
            fd.Conv2D(16, 3, padding=0, activation=fd.ReLU()),
            fd.MaxPool2D(2),
            fd.Flatten(),
            fd.Dense(10),
        ],
        loss=fd.SoftmaxCrossEntropy(),
        seed=0,
    )


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="the NumPy twins allocate with numpy")
def test_a_network_reuses_its_last_pass_arrays_and_spares_the_ones_held(small_pool, monkeypatch):
    monkeypatch.setattr(fd.network, "RELEASE_MIN_BYTES", 1024)  # release these small arrays
    rng = np.random.default_rng(0)
    x1, x2 = (rng.standard_normal((6, 1, 12, 12)).astype(np.float32) for _ in range(2))
    net = _reference_cnn()
    out1 = net.forward(x1, inference=True).copy()
    held = net.layers[1].output  # the user keeps conv2's output of the first pass
    held_copy = held.copy()
    conv1_first = net.layers[0].output.__array_interface__["data"][0]  # not held
    out2 = net.forward(x2, inference=True)
    assert np.array_equal(held, held_copy)
    assert not np.shares_memory(held, net.layers[1].output)
    assert net.layers[0].output.__array_interface__["data"][0] == conv1_first  # reused
    fresh = _reference_cnn()
    assert np.array_equal(out2, fresh.forward(x2, inference=True))
    assert np.array_equal(out1, fresh.forward(x1, inference=True))


def _in_use(pool, i):
    """Whether something besides the pool refers to kept array ``i`` (a loop variable
    would be one more reference)."""
    return sys.getrefcount(pool._kept[i]) > 2


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="the NumPy twins allocate with numpy")
def test_a_pass_trims_what_it_did_not_take_again(monkeypatch):
    """An inference pass on another batch size leaves only its own arrays kept; a training
    step on batches too small to be kept drops them at its backward pass."""
    monkeypatch.setattr(recycle, "MIN_BYTES", 5000)  # the outputs of 5 and 6 images, not of 1
    monkeypatch.setattr(recycle, "_kept", [])
    monkeypatch.setattr(fd.network, "RELEASE_MIN_BYTES", 1024)
    rng = np.random.default_rng(0)
    net = _reference_cnn()
    for n in (6, 5):
        net.forward(rng.standard_normal((n, 1, 12, 12)).astype(np.float32), inference=True)
        assert sorted(k.shape[0] for k in recycle._kept) == [n * 256, n * 800, n * 1024]
        assert all(_in_use(recycle, i) for i in range(3))
    optim = fd.SGD(lr=0.1)
    fd.Trainer(net, optim)
    net.train_batch(rng.standard_normal((1, 1, 12, 12)).astype(np.float32), np.array([3]))
    assert recycle._kept == []


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="the NumPy twins allocate with numpy")
def test_training_with_recycled_arrays_gives_the_same_weights(monkeypatch):
    """Three steps with every array of 1 KiB and more released and recycled, then none
    recycled: the same bits."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    weights = []
    for min_bytes in (1024, 1 << 62):
        monkeypatch.setattr(recycle, "MIN_BYTES", min_bytes)
        monkeypatch.setattr(recycle, "_kept", [])
        monkeypatch.setattr(fd.network, "RELEASE_MIN_BYTES", min_bytes)
        net = _reference_cnn()
        optim = fd.SGDMomentum(lr=0.1, momentum=0.9)
        fd.Trainer(net, optim)
        for _ in range(3):
            net.train_batch(x, y)
            optim.step()
        weights.append(net.get_weights())
        assert (min_bytes > 1024) == (recycle._kept == [])  # the first run did recycle
    for a, b in zip(*weights, strict=True):
        assert np.array_equal(a, b)
