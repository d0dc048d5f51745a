"""WeightMultiply on inputs and gradients of every memory layout, against NumPy's ``@``.

The dense products go through :func:`fastdl.kernels.matmul.matmul` (GEMM with leading
dimensions); these are the arrays a user or an earlier layer can hand it.
"""

import numpy as np
import pytest

import fastdl as fd
from fastdl.ops.dense import WeightMultiply


def layouts(rng, shape):
    base = rng.standard_normal(shape).astype(np.float32)
    wide = rng.standard_normal((*shape[:-1], 2 * shape[-1])).astype(np.float32)
    return {
        "C": base,
        "reversed": base[::-1],
        "broadcast": np.broadcast_to(base[:1], shape),
        "strided": wide[..., ::2],
        "fortran": np.asfortranarray(base),
    }


@pytest.mark.parametrize("layout", ["C", "reversed", "broadcast", "strided", "fortran"])
@pytest.mark.parametrize("shape", [(37, 11), (4, 9, 11)], ids=["2-D", "3-D"])
def test_forward_and_backward_match_numpy(shape, layout):
    rng = np.random.default_rng(0)
    w = rng.standard_normal((11, 6)).astype(np.float32)
    x = layouts(rng, shape)[layout]
    dy = layouts(rng, (*shape[:-1], 6))[layout]
    op = WeightMultiply(w)
    y = op.forward(x)
    dx = op.backward(dy)
    x64, dy64, w64 = (np.asarray(a, np.float64) for a in (x, dy, w))
    np.testing.assert_allclose(y, x64 @ w64, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, dy64 @ w64.T, rtol=1e-5, atol=1e-5)
    dw = x64.reshape(-1, 11).T @ dy64.reshape(-1, 6)
    np.testing.assert_allclose(op.param_grad, dw, rtol=1e-5, atol=1e-4)
    assert y.dtype == dx.dtype == op.param_grad.dtype == np.float32


def test_a_network_predicts_the_same_on_a_reversed_copy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3000, 784)).astype(np.float32)
    net = fd.NeuralNetwork(
        [fd.Dense(32, fd.Tanh()), fd.Dense(10)], fd.SoftmaxCrossEntropy(), seed=1
    )
    np.testing.assert_allclose(
        net.predict(x[::-1]), net.predict(np.ascontiguousarray(x[::-1])), rtol=1e-6, atol=1e-6
    )
