"""RNNLayer, GRULayer, LSTMLayer: float64 gradient checks (inputs, weights, biases, initial
state) for T = 1 and T > 1, with and without stateful continuation and return_sequences=False;
state semantics; the one-hot shortcut; clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

import fastdl as fd
from fastdl import config
from fastdl.layers.recurrent import GRULayer, LSTMLayer, RNNLayer
from fastdl.testing import numerical_gradient

LAYERS = {"rnn": RNNLayer, "gru": GRULayer, "lstm": LSTMLayer}
IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb"]
ATOL, RTOL = 1e-6, 1e-5


def impl_context(impl):
    return config.use_pure(True) if impl == "np" else config.use_pure(False)


def assert_grad(name, analytic, numeric):
    assert analytic is not None, f"{name}: no analytic gradient"
    assert analytic.shape == numeric.shape, f"{name}: {analytic.shape} vs {numeric.shape}"
    err = np.abs(analytic - numeric)
    bound = ATOL + RTOL * np.abs(numeric)
    assert np.all(err <= bound), f"{name}: max |analytic - numeric| = {err.max():.3g}"


def gradcheck_layer(layer, x, state=None, seed=0):
    """Check d(Σ out·R) w.r.t. x, every parameter and (if given) the initial state."""
    state = None if state is None else [np.array(s) for s in state]

    def forward():
        if state is not None:
            layer.set_state(*state)
        elif layer.stateful:
            layer.reset_state()
        return layer.forward(x)

    out = forward()
    r = np.random.default_rng(seed).standard_normal(out.shape)

    def loss():
        return float(np.sum(forward() * r))

    loss()
    layer.backward(r)
    analytic = {"x": layer.input_grad.copy()}
    analytic.update({f"param[{i}]": g.copy() for i, g in enumerate(layer.param_grads())})
    analytic.update({f"state[{i}]": g.copy() for i, g in enumerate(layer.state_grads)})
    assert_grad("x", analytic["x"], numerical_gradient(loss, x))
    for i, p in enumerate(layer.params()):
        assert_grad(f"param[{i}]", analytic[f"param[{i}]"], numerical_gradient(loss, p))
    if state is not None:
        for i, s in enumerate(state):
            assert_grad(f"state[{i}]", analytic[f"state[{i}]"], numerical_gradient(loss, s))


def randomize(layer, rng):
    """Nonzero biases and moderate weights, so every gradient path is exercised."""
    for p in layer.params():
        p[...] = 0.6 * rng.standard_normal(p.shape)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("mode", ["zero-state", "given-state", "continued"])
@pytest.mark.parametrize("return_sequences", [True, False], ids=["seq", "last"])
@pytest.mark.parametrize("t_len", [1, 4], ids=["T1", "T4"])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_gradcheck(cell, t_len, return_sequences, mode, impl):
    rng = np.random.default_rng(3)
    n, d, h = 2, 3, 4
    layer = LAYERS[cell](h, return_sequences=return_sequences, stateful=mode != "zero-state")
    x_prev = rng.standard_normal((n, 3, d))
    x = rng.standard_normal((n, t_len, d))
    with impl_context(impl):
        layer.forward(x_prev)  # set up (and, if stateful, leave a carried state)
        randomize(layer, rng)
        state = None
        if mode == "given-state":
            state = [0.5 * rng.standard_normal((n, h)) for _ in range(layer._n_states)]
        elif mode == "continued":
            layer.reset_state()
            layer.forward(x_prev)
            state = [s.copy() for s in layer.state]
            assert not np.allclose(state[0], 0)
        gradcheck_layer(layer, x, state)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", list(LAYERS))
def test_stateful_continuation_equals_one_long_sequence(cell, impl):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 7, 5)).astype(np.float32)
    with impl_context(impl):
        whole = LAYERS[cell](6)
        full = whole.forward(x)
        parts = LAYERS[cell](6, stateful=True)
        parts.forward(x[:, :1])
        for mine, theirs in zip(parts.params(), whole.params(), strict=True):
            mine[...] = theirs
        parts.reset_state()
        out = [parts.forward(np.ascontiguousarray(x[:, a:b])) for a, b in ((0, 3), (3, 4), (4, 7))]
    np.testing.assert_allclose(np.concatenate(out, axis=1), full, rtol=1e-5, atol=1e-6)
    parts.reset_state()
    assert parts.state is None


@pytest.mark.parametrize("cell", list(LAYERS))
def test_return_sequences_false_is_the_last_step(cell):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 5, 3))
    seq, last = LAYERS[cell](7), LAYERS[cell](7, return_sequences=False)
    full = seq.forward(x)
    last.forward(x)
    for mine, theirs in zip(last.params(), seq.params(), strict=True):
        mine[...] = theirs
    out = last.forward(x)
    assert out.shape == (4, 7)
    np.testing.assert_allclose(out, full[:, -1], rtol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_one_hot_shortcut_gives_the_dense_results(cell, dtype, impl):
    rng = np.random.default_rng(2)
    x = np.eye(6, dtype=dtype)[rng.integers(0, 6, size=(5, 4))]
    dense, gather = LAYERS[cell](8), LAYERS[cell](8)
    gather.set_skip_input_grad(True)
    r = rng.standard_normal((5, 4, 8)).astype(dtype)
    with impl_context(impl):
        dense.forward(x)
        gather.forward(x)
        for mine, theirs in zip(gather.params(), dense.params(), strict=True):
            mine[...] = theirs
        out_d, out_g = dense.forward(x), gather.forward(x)
        assert gather.operations[0]._kernel_input.ndim == 2, "one-hot input was not detected"
        dense.backward(r)
        assert gather.backward(r) is None
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out_g, out_d, rtol=tol, atol=tol)
    for g, d in zip(gather.param_grads(), dense.param_grads(), strict=True):
        np.testing.assert_allclose(g, d, rtol=tol, atol=tol * (1 + np.abs(d).max()))


def test_not_one_hot_takes_the_dense_path():
    x = np.eye(4)[[[0, 1], [2, 3]]]
    x[1, 1, 0] = 0.5  # one row is not one-hot
    layer = LSTMLayer(3)
    layer.set_skip_input_grad(True)
    layer.forward(x)
    assert layer.operations[0]._kernel_input.ndim == 3


def test_lstm_init_follows_keras_defaults():
    layer = LSTMLayer(5)
    layer.bind(np.random.default_rng(0), np.float32)
    layer.forward(np.zeros((1, 2, 3), np.float32))
    w_ih, w_hh, b = layer.params()
    assert (w_ih.shape, w_hh.shape, b.shape) == ((3, 20), (5, 20), (20,))
    assert w_ih.dtype == w_hh.dtype == b.dtype == np.float32
    np.testing.assert_array_equal(b, np.r_[np.zeros(5), np.ones(5), np.zeros(10)])
    for k in range(4):
        block = w_hh[:, 5 * k : 5 * (k + 1)].astype(np.float64)
        np.testing.assert_allclose(block @ block.T, np.eye(5), atol=1e-5)


def test_same_seed_same_weights():
    def weights():
        layer = GRULayer(4)
        layer.bind(np.random.default_rng(42), np.float32)
        layer.forward(np.zeros((1, 2, 3), np.float32))
        return layer.params()

    for a, b in zip(weights(), weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_in_a_network_with_softmax_cross_entropy(cell):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 5))
    y = rng.integers(0, 6, size=(3, 4))
    net = fd.NeuralNetwork(
        layers=[LAYERS[cell](7), fd.Dense(6)],
        loss=fd.SoftmaxCrossEntropy(),
        seed=0,
        dtype=np.float64,
    )
    fd.testing.gradcheck(net, x, y)


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", list(LAYERS))
def test_bad_input_raises_clear_errors(cell):
    cls = LAYERS[cell]
    name = cls.__name__
    layer = cls(4)
    with pytest.raises(
        ValueError, match=rf"{name}: expected input \(N, T, D\), got shape \(2, 3\)"
    ):
        layer.forward(np.zeros((2, 3), np.float32))
    with pytest.raises(TypeError, match=f"{name}: expected floating-point input"):
        layer.forward(np.zeros((2, 3, 4), np.int64))
    layer.forward(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match=rf"{name}: expected 4 input features .* \(2, 3, 5\)"):
        layer.forward(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(TypeError, match=f"{name}: expected dtype float32, got float64"):
        layer.forward(np.zeros((2, 3, 4), np.float64))
    with pytest.raises(ValueError, match=rf"{name}: output_grad has shape \(2, 3, 5\)"):
        layer.backward(np.zeros((2, 3, 5), np.float32))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=f"{name}: hidden_size must be a positive int"):
            cls(bad)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_stateful_errors(cell):
    cls = LAYERS[cell]
    name = cls.__name__
    layer = cls(4, stateful=True)
    layer.forward(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match=f"{name}: stateful layer carries state for batch size 2"):
        layer.forward(np.zeros((3, 3, 4)))
    layer.reset_state()
    layer.forward(np.zeros((3, 3, 4)))  # fine after a reset
    with pytest.raises(ValueError, match=rf"{name}: state arrays must be \(N, 4\)"):
        layer.set_state(*[np.zeros((3, 5))] * layer._n_states)
    with pytest.raises(ValueError, match=f"{name}: set_state takes"):
        layer.set_state(*[np.zeros((3, 4))] * (layer._n_states + 1))
    with pytest.raises(ValueError, match=f"{name}: set_state needs stateful=True"):
        cls(4).set_state(*[np.zeros((3, 4))] * layer._n_states)


def test_non_contiguous_input_is_accepted():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 8, 4))
    a, b = LSTMLayer(5), LSTMLayer(5)
    out_a = a.forward(x[:, ::2])
    out_b = b.forward(np.ascontiguousarray(x[:, ::2]))
    np.testing.assert_allclose(out_a, out_b, rtol=1e-12)


@pytest.mark.parametrize("return_sequences", [True, False], ids=["seq", "last"])
@pytest.mark.parametrize("cell", list(LAYERS))
def test_output_dropout_gradcheck_and_inference(cell, return_sequences):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 2))
    layer = LAYERS[cell](5, dropout=0.6, return_sequences=return_sequences)
    fd.testing.gradcheck(layer, x)
    plain = LAYERS[cell](5, return_sequences=return_sequences)
    plain.forward(x)
    for mine, theirs in zip(plain.params(), layer.params(), strict=True):
        mine[...] = theirs
    np.testing.assert_allclose(layer.forward(x, inference=True), plain.forward(x), rtol=1e-12)
    train_out = layer.forward(x)
    assert np.any(train_out == 0), "training pass should drop some outputs"
    with pytest.raises(ValueError, match=f"{LAYERS[cell].__name__}: dropout is the keep"):
        LAYERS[cell](5, dropout=0.0)
