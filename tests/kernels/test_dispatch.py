"""The public kernels route: numba twin by default, NumPy twin under ``use_pure()``."""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import fastdl.kernels
from fastdl import config
from fastdl.kernels import conv, pool
from fastdl.kernels._jit import pair
from fastdl.layers.conv import Conv2D
from fastdl.layers.pool import MaxPool2D


def public_pairs():
    """Every kernel pair that a kernel module exports in ``__all__``."""
    found = []
    for info in pkgutil.iter_modules(fastdl.kernels.__path__):
        module = importlib.import_module(f"fastdl.kernels.{info.name}")
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if hasattr(obj, "np") and hasattr(obj, "nb"):
                found.append(obj)
    return found


PUBLIC = public_pairs()
# The kernels that multiply matrices, which have a staged twin for the numpy BLAS path
STAGED = {"conv2d_forward", "conv2d_backward", "conv2d_first_forward", "conv2d_first_backward",
          "conv_pool_forward", "conv_pool_backward", "conv_transpose2d_forward",
          "conv_transpose2d_backward", "matmul", "rnn_forward", "rnn_backward", "gru_forward",
          "gru_backward", "lstm_forward", "lstm_backward"}  # fmt: skip


def test_every_kernel_family_is_found():
    names = {fn.__name__ for fn in PUBLIC}
    assert STAGED | {"maxpool_forward", "embedding_backward", "softmax_ce_forward",
                     "dropout_forward", "tanh_backward", "translate", "batchnorm_forward",
                     "batchnorm_inference", "batchnorm_backward"} <= names  # fmt: skip


needs_numba = pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba twins unavailable")


@pytest.mark.parametrize("fn", PUBLIC, ids=lambda f: f.__name__)
def test_public_kernels_pair_a_numpy_twin_with_a_numba_twin(fn):
    assert fn.np.__name__ == fn.__name__ + "_np"
    assert fn.nb.__name__ == fn.__name__ + "_nb"
    assert fn.__doc__ == fn.np.__doc__ and "Parameters" in fn.__doc__
    if fn.__name__ in STAGED:
        assert fn.st.__name__ == fn.__name__ + "_st"
    else:
        assert not hasattr(fn, "st")


def test_pair_routes_on_the_switch():
    calls = []
    fn = pair(lambda: calls.append("np"), lambda: calls.append("nb"))
    with config.use_pure(True):
        fn()
    if not config.PURE_AT_IMPORT:
        with config.use_pure(False):
            fn()
    fn()
    expected = (
        ["np"]
        + ([] if config.PURE_AT_IMPORT else ["nb"])
        + ["np" if config.PURE_AT_IMPORT else "nb"]
    )
    assert calls == expected


@needs_numba
def test_conv_and_pool_layers_call_the_numba_twin_by_default(monkeypatch):
    """Spy on what each twin calls: the compiled entry points vs the NumPy im2col."""
    import numba

    calls = []

    def spy(name, fn):
        def wrapped(*args):
            calls.append(name)
            return fn(*args)

        return wrapped

    for compiled in (conv._forward_chunk, conv._backward_chunk, pool._pool_chunk):
        assert isinstance(compiled, numba.core.registry.CPUDispatcher)  # a thread's block
    for name in ("_conv2d_forward", "_conv2d_forward_serial"):  # parallel, and for small work
        monkeypatch.setattr(conv, name, spy("nb-forward", getattr(conv, name)))
    for name in ("_conv2d_backward", "_conv2d_backward_serial"):
        monkeypatch.setattr(conv, name, spy("nb-backward", getattr(conv, name)))
    monkeypatch.setattr(conv, "im2col_np", spy("np-im2col", conv.im2col_np))
    big = np.zeros((9, 3, 64, 64), np.float32)  # past SERIAL_MAX_SIZE: the parallel path
    assert big.size >= pool.SERIAL_MAX_SIZE
    MaxPool2D(2).forward(big)  # compile the parallel kernel (it calls _pool_images) before
    # _pool_images is replaced by a Python spy below, which compiled code cannot call
    monkeypatch.setattr(pool, "_pool_images", spy("nb-pool-serial", pool._pool_images))
    monkeypatch.setattr(pool, "_maxpool_forward", spy("nb-pool-parallel", pool._maxpool_forward))
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    layer = Conv2D(4, 3)
    y = layer.forward(x)
    layer.backward(np.ones_like(y))
    assert calls == ["nb-forward", "nb-backward"]
    calls.clear()
    with config.use_pure():
        y = layer.forward(x)
        layer.backward(np.ones_like(y))
    assert calls == ["np-im2col", "np-im2col"]  # the NumPy forward, then the NumPy backward
    calls.clear()
    pooled = MaxPool2D(2).forward(x)  # small input: the one-thread entry point
    assert calls == ["nb-pool-serial"] and pooled.shape == (2, 3, 3, 3)
    calls.clear()
    MaxPool2D(2).forward(big)
    assert calls == ["nb-pool-parallel"]


@needs_numba
def test_batch_norm_layers_call_the_numba_twin_by_default(monkeypatch):
    """Spy on the numba twins' compiled stages (the NumPy twins have none)."""
    from fastdl.kernels import batchnorm
    from fastdl.layers.batchnorm import BatchNorm2D

    calls = []

    def spy(name):
        real = getattr(batchnorm, name)
        monkeypatch.setattr(batchnorm, name, lambda *a: calls.append(name) or real(*a))

    for name in ("_channel_sums", "_affine", "_dx_rows", "_dx_planes"):
        spy(name)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4)).astype(np.float32)
    layer = BatchNorm2D()
    y = layer.forward(x)  # C-ordered: the planes
    layer.backward(np.ones_like(y))
    layer.forward(x, inference=True)
    assert calls == ["_channel_sums", "_affine", "_dx_planes", "_affine"]
    calls.clear()
    with config.use_pure():
        layer.backward(np.ones_like(layer.forward(x)))
        layer.forward(x, inference=True)
    assert calls == []


def test_one_thread_pool_at_a_time():
    """Inside a network pass numpy's BLAS is single-threaded (beside fastdl's threads, and on
    the NumPy twins too); the previous count comes back afterwards."""
    from fastdl.kernels._blas import blas_threads, get_blas_threads, threads

    if not threads.controlled():
        pytest.skip("no BLAS whose threads can be steered (threadpoolctl)")
    with blas_threads(2):
        outside = get_blas_threads()
        with config.use_pure(True), config.compute():
            assert get_blas_threads() == 1
        if not config.PURE_AT_IMPORT:
            with config.use_pure(False), config.compute():
                assert get_blas_threads() == 1
        assert get_blas_threads() == outside


@needs_numba
def test_kernels_called_outside_a_network_pass_still_use_one_blas_thread(monkeypatch):
    from fastdl.kernels import _blas

    seen = []
    for name in ("_conv2d_forward", "_conv2d_forward_serial"):
        monkeypatch.setattr(conv, name, lambda *a: seen.append(_blas.get_blas_threads()))
    with _blas.blas_threads(2):
        conv.conv2d_forward(
            np.zeros((1, 3, 3, 1), np.float32),
            np.zeros((1, 1, 1, 1), np.float32),
            np.zeros(1, np.float32),
            1,
            (0, 0, 0, 0),
            False,
        )
    assert seen == [1]


@needs_numba
def test_kernels_never_start_numbas_threading_layer(monkeypatch):
    """Kernels use both cores through ``run_chunks`` (plain threads, the caller taking the
    first block), never a numba ``prange`` region: a training step of a network with every
    multi-threaded kernel past its one-thread size, on 2 threads, splits each kernel's batch
    (named: the chunk kernels that ran), and numba has no threading layer afterwards."""
    import numba

    import fastdl as fd
    from fastdl.kernels import _threads, augment, batchnorm, conv_transpose, matmul, winograd
    from fastdl.layers.batchnorm import BatchNorm2D
    from fastdl.layers.conv_transpose import Conv2DTranspose

    modules = (conv, winograd, conv_transpose, matmul, pool, batchnorm, augment)
    for module, name in ((conv, "SERIAL_MAX_FLOPS"), (matmul, "SERIAL_MAX_FLOPS"),
                         (pool, "SERIAL_MAX_SIZE"), (batchnorm, "SERIAL_MAX_SIZE"),
                         (augment, "SERIAL_MAX_SIZE")):  # fmt: skip
        monkeypatch.setattr(module, name, 0)
    monkeypatch.setitem(config._state, "threads", 2)
    ran = set()
    for module in modules:

        def spy(kernel, chunks, *args, _real=_threads.run_chunks, _module=module):
            ran.add((_module.__name__.rsplit(".", 1)[1], kernel.__name__, chunks))
            return _real(kernel, chunks, *args)

        monkeypatch.setattr(module, "run_chunks", spy)
    net = fd.NeuralNetwork(
        [Conv2D(16, 3, activation=fd.ReLU()), BatchNorm2D(),  # channels-last: rows
         Conv2D(4, 3, activation=fd.ReLU()), MaxPool2D(2),  # Winograd (16 channels in)
         BatchNorm2D(), Conv2DTranspose(2, 2, stride=2),  # NCHW after the pool: planes
         MaxPool2D(2), fd.Flatten(), fd.Dense(3)],
        fd.SoftmaxCrossEntropy(), seed=0,
    )  # fmt: skip
    x = np.random.default_rng(0).standard_normal((4, 1, 12, 12)).astype(np.float32)
    with config.use_blas("cblas" if config.blas_path() == "numpy" else config.blas_path()):
        net.train_batch(x, np.eye(3, dtype=np.float32)[[0, 1, 2, 0]])
        augment.translate(x, np.zeros((4, 2), np.int64), 0.0)
    bn = [f"{name}_{layout}{tail}_chunk" for layout in ("rows", "planes")
          for name, tail in (("_affine", ""), ("_grad", "_sums"), ("_dx", ""))]  # fmt: skip
    bn += ["_row_sums_chunk", "_plane_sums_chunk"]
    expected = {("conv", "_forward_chunk"), ("conv", "_backward_chunk"),
                ("winograd", "_images_chunk"), ("conv_transpose", "_forward_chunk"),
                ("matmul", "_matmul_chunk"), ("pool", "_pool_chunk"), ("pool", "_unpool_chunk"),
                ("augment", "_translate_chunk"), *(("batchnorm", name) for name in bn)}  # fmt: skip
    assert {(m, k) for m, k, _ in ran} == expected
    assert {n for _, _, n in ran} == {2}
    with pytest.raises(ValueError, match="not initialized"):
        numba.threading_layer()
