"""Embedding: lookup, scatter-add gradient (float64 check), kernels' twins, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import fastdl as fd
from fastdl import config
from fastdl.kernels.embedding import embedding_backward, embedding_forward, onehot_ids
from fastdl.layers.embedding import Embedding
from fastdl.layers.recurrent import LSTMLayer
from fastdl.testing import numerical_gradient

IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", [(1,), (4, 1), (3, 7)], ids=["N1", "N4-T1", "N3-T7"])
def test_kernels_against_loops(shape, impl):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 5)).astype(np.float32)
    ids = rng.integers(0, 6, size=shape)
    dout = rng.standard_normal(shape + (5,)).astype(np.float32)
    out = getattr(embedding_forward, impl)(w, ids)
    want_dw = np.zeros_like(w)
    for pos in np.ndindex(*shape):
        np.testing.assert_array_equal(out[pos], w[ids[pos]])
        want_dw[ids[pos]] += dout[pos]
    dw = getattr(embedding_backward, impl)(ids, dout, 6)
    np.testing.assert_allclose(dw, want_dw, rtol=1e-6, atol=1e-6)
    onehot = np.eye(6, dtype=np.float32)[ids]
    np.testing.assert_array_equal(getattr(onehot_ids, impl)(onehot), ids)
    for bad in (2 * onehot, onehot + np.eye(6, dtype=np.float32)[(ids + 1) % 6], 0 * onehot):
        assert getattr(onehot_ids, impl)(bad) is None


@pytest.mark.parametrize("impl", IMPLS)
def test_gradcheck_weights(impl):
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 5, size=(3, 4))
    layer = Embedding(5, 3)
    layer.bind(np.random.default_rng(0), np.float64)
    r = rng.standard_normal((3, 4, 3))
    with config.use_pure(impl == "np"):
        layer.forward(ids)
        assert layer.backward(r) is None
        analytic = layer.param_grads()[0].copy()
        numeric = numerical_gradient(
            lambda: float(np.sum(layer.forward(ids) * r)), layer.params()[0]
        )
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6)


def test_embedding_then_lstm_network_gradcheck():
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 7, size=(2, 5))
    y = rng.integers(0, 7, size=(2, 5))
    net = fd.NeuralNetwork(
        layers=[Embedding(7, 3), LSTMLayer(4), fd.Dense(7)],
        loss=fd.SoftmaxCrossEntropy(),
        seed=0,
        dtype=np.float64,
    )
    fd.testing.gradcheck(net, ids, y)


def test_bad_input_raises_clear_errors():
    layer = Embedding(10, 4)
    with pytest.raises(ValueError, match=r"Embedding: token ids must lie in \[0, 10\), got .*12"):
        layer.forward(np.array([[1, 12]]))
    with pytest.raises(
        ValueError, match=r"Embedding: token ids must lie in \[0, 10\), got values in \[-1"
    ):
        layer.forward(np.array([[-1, 2]]))
    with pytest.raises(TypeError, match="Embedding: expected integer token ids, got dtype float32"):
        layer.forward(np.zeros((2, 3), np.float32))
    for bad in (0, -3, 1.5, True):
        with pytest.raises(ValueError, match="Embedding: vocab_size must be a positive int"):
            Embedding(bad, 4)
        with pytest.raises(ValueError, match="Embedding: dim must be a positive int"):
            Embedding(4, bad)
    out = layer.forward(np.array([[1, 9]], dtype=np.int32))
    assert out.shape == (1, 2, 4) and out.dtype == np.float32
