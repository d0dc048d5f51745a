"""Reshape: the inverse of Flatten — shapes, gradients, errors, saving, PyTorch's Unflatten."""

import numpy as np
import pytest

import fastdl as fd
from fastdl.testing import gradcheck


@pytest.mark.parametrize(
    ("in_shape", "target"),
    [((2, 24), (2, 3, 4)), ((1, 6), (6,)), ((3, 2, 3, 4), (4, 6)), ((4, 343), (7, 7, 7))],
    ids=["to-3d", "batch1-same", "4d-to-2d", "code-to-image"],
)
def test_shapes_and_gradient(in_shape, target, rng):
    x = rng.standard_normal(in_shape)
    layer = fd.Reshape(target)
    y = layer.forward(x)
    assert y.shape == (in_shape[0], *target)
    np.testing.assert_array_equal(y.reshape(x.shape), x)  # C order: the same numbers
    report = gradcheck(fd.Reshape(target), x)
    assert set(report) == {"input"}  # no parameters; gradcheck raised if it were off


def test_inverts_flatten(rng):
    x = rng.standard_normal((3, 2, 4, 5))
    flat = fd.Flatten().forward(x)
    np.testing.assert_array_equal(fd.Reshape((2, 4, 5)).forward(flat), x)


def test_wrong_size_is_refused_before_arithmetic():
    with pytest.raises(
        ValueError,
        match=r"Reshape: expected input \(N, \.\.\.\) holding 12 "
        r"numbers per example for target_shape \(3, 4\), got shape \(2, 10\)",
    ):
        fd.Reshape((3, 4)).forward(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="holding 12 numbers.*got shape \\(12,\\)"):
        fd.Reshape((3, 4)).forward(np.zeros(12))


@pytest.mark.parametrize("bad", [(), (3, 0), (3, -1), "34", (2.0, 3), None, (True, 2)])
def test_bad_target_shape(bad):
    with pytest.raises(ValueError, match="Reshape: target_shape"):
        fd.Reshape(bad)


def test_int_target_shape():
    assert fd.Reshape(5).target_shape == (5,)


def test_in_a_network_saves_and_loads(tmp_path, rng):
    net = fd.NeuralNetwork(
        [fd.Dense(12, activation=fd.Tanh()), fd.Reshape((3, 2, 2)), fd.Flatten(), fd.Dense(2)],
        fd.MeanSquaredError(),
        seed=3,
    )
    x = rng.standard_normal((4, 5)).astype(np.float32)
    before = net.predict(x)
    net.save(tmp_path / "net.npz")
    again = fd.load(tmp_path / "net.npz")
    assert "Reshape(target_shape=(3, 2, 2))" in repr(again)
    np.testing.assert_array_equal(again.predict(x), before)


def test_network_gradcheck(rng):
    net = fd.NeuralNetwork(
        [fd.Dense(8, activation=fd.Tanh()), fd.Reshape((2, 2, 2)),
         fd.Conv2D(2, 2, activation=fd.Tanh(), flatten=True), fd.Dense(3)],
        fd.MeanSquaredError(), seed=0, dtype=np.float64,
    )  # fmt: skip
    gradcheck(net, rng.standard_normal((3, 4)), rng.standard_normal((3, 3)))
