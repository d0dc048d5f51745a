"""fastdl.book.rnn (chapter 6): forward parity with naive oracles of the book's node formulas
(the GRU: of the fixed formulation), float64 gradient checks, the book's carried state, the
trainer's windows and sampling, a short real training run, errors, and that the layers run
on fastdl's compiled recurrent operations."""

# The book draws its weights and samples from NumPy's global generator; these tests repeat
# its draws, so the legacy calls are the point here.
# ruff: noqa: NPY002

from __future__ import annotations

import os
from collections import deque
from copy import deepcopy

import numpy as np
import pytest

import fastdl as fd
from fastdl import config
from fastdl.book.rnn import (
    SGD,
    AdaGrad,
    GRULayer,
    LSTMLayer,
    RNNLayer,
    RNNModel,
    RNNTrainer,
    SoftmaxCrossEntropy,
)
from fastdl.ops.dense import BiasAdd, WeightMultiply
from fastdl.ops.recurrent import GRULoop, LSTMLoop, RNNLoop
from fastdl.testing import gradcheck, numerical_gradient

IMPLS = ["np"] if config.PURE_AT_IMPORT else ["np", "nb"]
LAYERS = {"rnn": RNNLayer, "lstm": LSTMLayer, "gru": GRULayer}


def impl_context(impl):
    return config.use_pure(impl == "np")


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# -- naive oracles: the book's node formulas, one step at a time, book-layout weights ------------


def book_weights(cell, d, h, o, scale, seed):
    """The book's ``_init_params`` draws, by name, after ``np.random.seed(seed)``."""
    np.random.seed(seed)
    normal = np.random.normal
    if cell == "rnn":
        s = scale if scale else 2 / (d + o)
        names = [("W_f", (h + d, h), s), ("B_f", (1, h), s), ("W_v", (h, o), s), ("B_v", (1, o), s)]
    elif cell == "lstm":
        names = []
        for g in "fico":
            names += [(f"W_{g}", (h + d, h), scale), (f"B_{g}", (1, h), scale)]
        names += [("W_v", (h, o), scale), ("B_v", (1, o), scale)]
    else:
        names = []
        for g in "ruh":
            names += [
                (f"W_x{g}", (d, h), scale),
                (f"W_h{g}", (h, h), scale),
                (f"B_{g}", (1, h), scale),
            ]
        names[-1] = ("B_h", (1, h), 1.0)
        names += [("W_v", (h, o), 1.0), ("B_v", (1, o), 1.0)]
    return {name: normal(loc=0.0, scale=s, size=shape) for name, shape, s in names}


def oracle_step(cell, p, x, state, book_gru_bug=False):
    """One time step: ``(y, new state)`` for ``x`` (N, D) and ``state`` a tuple of (N, H)."""
    if cell == "rnn":
        z = np.column_stack((x, state[0]))
        h = np.tanh(z @ p["W_f"] + p["B_f"])
        new = (h,)
    elif cell == "lstm":
        h_in, c_in = state
        z = np.column_stack((x, h_in))
        f = sigmoid(z @ p["W_f"] + p["B_f"])
        i = sigmoid(z @ p["W_i"] + p["B_i"])
        c_bar = np.tanh(z @ p["W_c"] + p["B_c"])
        c = f * c_in + i * c_bar
        o = sigmoid(z @ p["W_o"] + p["B_o"])
        h = o * np.tanh(c)
        new = (h, c)
    else:
        h_in = state[0]
        r = sigmoid(x @ p["W_xr"] + h_in @ p["W_hr"] + p["B_r"])
        if book_gru_bug:  # the book: u_int = X_r + H_r + B_u, reset before the product
            u = sigmoid(x @ p["W_xr"] + h_in @ p["W_hr"] + p["B_u"])
            h_bar = np.tanh(x @ p["W_xh"] + (r * h_in) @ p["W_hh"] + p["B_h"])
        else:  # fixed: the update gate's own weights, reset after the product (PyTorch)
            u = sigmoid(x @ p["W_xu"] + h_in @ p["W_hu"] + p["B_u"])
            h_bar = np.tanh(x @ p["W_xh"] + p["B_h"] + r * (h_in @ p["W_hh"]))
        h = u * h_in + (1 - u) * h_bar
        new = (h,)
    return new[0] @ p["W_v"] + p["B_v"], new


def oracle_layer(cell, p, x, start, book_gru_bug=False):
    """The book's ``Layer.forward``: rows start from ``start`` (tuple of (1, H)) repeated;
    returns the outputs (N, T, O) and the next start (the batch means of the last state)."""
    state = tuple(np.repeat(s, x.shape[0], axis=0) for s in start)
    outs = []
    for t in range(x.shape[1]):
        y, state = oracle_step(cell, p, x[:, t, :], state, book_gru_bug)
        outs.append(y)
    return np.stack(outs, axis=1), tuple(s.mean(axis=0, keepdims=True) for s in state)


def n_states(cell):
    return 2 if cell == "lstm" else 1


# -- forward parity -------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", list(LAYERS))
def test_forward_equals_the_book_formulas_over_two_batches(cell, impl):
    """Weights drawn as the book draws them, mapped exactly; the carried start state
    (batch mean, repeated to a different batch size) as the book's."""
    d, h, o = 5, 4, 3
    scale = None if cell == "rnn" else 0.5
    p = book_weights(cell, d, h, o, scale, seed=7)
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((4, 6, d)), rng.standard_normal((3, 2, d))
    layer = LAYERS[cell](h, o, scale) if scale else LAYERS[cell](h, o)
    np.random.seed(7)
    start = tuple(np.zeros((1, h)) for _ in range(n_states(cell)))
    with impl_context(impl):
        for x in (x1, x2):
            expected, start = oracle_layer(cell, p, x, start)
            out = layer.forward(x)
            np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
            for mine, theirs in zip(layer.state, start, strict=True):
                np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-12)
    assert not np.allclose(layer.state[0], 0)  # the second batch did start from a state


def test_rnn_default_weight_scale_is_the_books():
    d, h, o = 30, 8, 10
    np.random.seed(1)
    layer = RNNLayer(h, o)
    layer.forward(np.zeros((1, 1, d)))
    w_ih = layer.params()[0]
    np.random.seed(1)
    expected = np.random.normal(0.0, 2 / (d + o), size=(h + d, h))[:d]
    np.testing.assert_array_equal(w_ih, expected)


def test_gru_update_gate_uses_its_own_weights():
    """The book's bug (update gate from the reset gate's products) is not reproduced:
    W_xu and W_hu change the output, and the output is not the book's."""
    d, h, o = 4, 5, 3
    p = book_weights("gru", d, h, o, 0.5, seed=3)
    x = np.random.default_rng(1).standard_normal((2, 4, d))
    start = (np.zeros((1, h)),)
    np.random.seed(3)
    layer = GRULayer(h, o, 0.5)
    out = layer.forward(x)
    buggy, _ = oracle_layer("gru", p, x, start, book_gru_bug=True)
    assert np.abs(out - buggy).max() > 1e-3
    w_ih, w_hh = layer.params()[:2]
    for w in (w_ih, w_hh):  # the z (update) block, fastdl's second block of H columns
        layer.reset_state()
        before = layer.forward(x)
        w[:, h : 2 * h] += 0.3
        layer.reset_state()
        assert np.abs(layer.forward(x) - before).max() > 1e-3


# -- the same kernels ------------------------------------------------------------------------


@pytest.mark.parametrize(("cell", "loop"), [("rnn", RNNLoop), ("lstm", LSTMLoop), ("gru", GRULoop)])
def test_operations_are_fastdls_compiled_ops(cell, loop):
    layer = LAYERS[cell](4, 3)
    layer.forward(np.zeros((2, 3, 5)))
    assert [type(op) for op in layer.operations] == [loop, WeightMultiply, BiasAdd]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", list(LAYERS))
def test_same_numbers_as_fastdl_layers(cell, impl):
    """A book layer computes bit for bit what fastdl's recurrent layer + Dense compute with
    its weights: the same kernels, nothing in between."""
    x = np.eye(7)[np.random.default_rng(2).integers(0, 7, size=(3, 5))]
    book = LAYERS[cell](6, 7, 0.3)
    fd_layers = {"rnn": fd.RNNLayer, "lstm": fd.LSTMLayer, "gru": fd.GRULayer}
    plain = fd.NeuralNetwork(
        [fd_layers[cell](6), fd.Dense(7)], fd.SoftmaxCrossEntropy(), dtype=np.float64
    )
    model = RNNModel([book], sequence_length=5, vocab_size=7, loss=SoftmaxCrossEntropy())
    model.layers[0].forward(x)
    plain.build((5, 7))
    plain.set_weights(book.params())
    book.reset_state()
    with impl_context(impl):
        np.testing.assert_array_equal(model.forward(x), plain.forward(x))


# -- gradients -------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", list(LAYERS))
def test_gradcheck_layer_from_a_carried_state(cell, impl):
    rng = np.random.default_rng(4)
    layer = LAYERS[cell](4, 3, 0.5)
    with impl_context(impl):
        layer.forward(rng.standard_normal((3, 4, 5)))  # leaves a nonzero start_H
        assert not np.allclose(layer.state[0], 0)
        gradcheck(layer, rng.standard_normal((2, 3, 5)))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gradcheck_model_with_one_hot_input(cell):
    """Two layers, the first on one-hot input (the gather path), the ch6 loss summed."""
    rng = np.random.default_rng(5)
    v = 6
    layers = [LAYERS[cell](4, 5, 0.3), LSTMLayer(3, v, 0.3)]
    model = RNNModel(layers, sequence_length=4, vocab_size=v, loss=SoftmaxCrossEntropy())
    x = np.eye(v)[rng.integers(0, v, size=(2, 4))]
    y = np.eye(v)[rng.integers(0, v, size=(2, 4))]
    model.single_step(x, y)
    gradcheck(model, x, y, check_input=False)


@pytest.mark.parametrize("target_kind", ["one-hot", "ids"])
def test_loss_is_the_summed_cross_entropy_and_its_gradient(target_kind):
    rng = np.random.default_rng(6)
    z = rng.standard_normal((3, 4, 5)) * 3
    ids = rng.integers(0, 5, size=(3, 4))
    onehot = np.eye(5)[ids]
    target = onehot if target_kind == "one-hot" else ids
    loss = SoftmaxCrossEntropy()
    value = loss.forward(z, target)
    p = np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True)
    assert value == pytest.approx(-(onehot * np.log(p)).sum(), rel=1e-12)
    np.testing.assert_allclose(loss.backward(), p - onehot, rtol=0, atol=1e-12)
    gradcheck(SoftmaxCrossEntropy(), z, target)


def test_no_gradient_across_batches():
    """The gradient of batch 2 holds its start state constant (truncated BPTT): it is the
    derivative with the state fixed, not the derivative through batch 1."""
    rng = np.random.default_rng(7)
    layer = RNNLayer(3, 2, 0.8)
    x1, x2 = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 3, 3))
    layer.forward(x1)
    start = layer.state
    r = rng.standard_normal((2, 3, 2))
    layer.forward(x2)
    layer.backward(r)
    analytic = [g.copy() for g in layer.param_grads()]

    def truncated():
        layer.set_state(*start)
        return float(np.sum(layer.forward(x2) * r))

    def through_batch_1():
        layer.reset_state()
        layer.forward(x1)
        return float(np.sum(layer.forward(x2) * r))

    for g, p in zip(analytic, layer.params(), strict=True):
        np.testing.assert_allclose(g, numerical_gradient(truncated, p), rtol=1e-5, atol=1e-7)
    w_hh = layer.params()[1]
    assert np.abs(analytic[1] - numerical_gradient(through_batch_1, w_hh)).max() > 1e-3


def test_state_is_the_batch_mean_and_repeated():
    rng = np.random.default_rng(8)
    layer = LSTMLayer(4, 3, 0.5)
    layer.forward(rng.standard_normal((5, 3, 2)))
    loop = layer.operations[0]
    for mine, last in zip(layer.state, loop.final_state, strict=True):
        assert mine.shape == (1, 4)
        np.testing.assert_allclose(mine, last.mean(axis=0, keepdims=True), rtol=1e-15)
    start = layer.state
    layer.forward(rng.standard_normal((2, 3, 2)))
    for used, s in zip(loop.initial_state, start, strict=True):
        np.testing.assert_array_equal(used, np.repeat(s, 2, axis=0))
    layer.reset_state()
    assert all(not s.any() for s in layer.state)


def test_rejected_batch_leaves_the_state():
    model = RNNModel([RNNLayer(4, 3, 0.5)], 3, 3, SoftmaxCrossEntropy())
    x = np.eye(3)[np.random.default_rng(0).integers(0, 3, size=(2, 3))]
    model.single_step(x, x)
    before = model.layers[0].state[0].copy()
    with pytest.raises(ValueError, match="SoftmaxCrossEntropy"):
        model.single_step(x, np.ones((2, 3, 3)))  # rows not summing to 1
    np.testing.assert_array_equal(model.layers[0].state[0], before)


# -- optimizers ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [SGD, AdaGrad])
def test_optimizers_clip_by_default(cls):
    assert cls().clip_value == 2.0 and cls(lr=0.1).lr == 0.1
    assert cls(gradient_clipping=False).clip_value is None
    model = RNNModel([RNNLayer(3, 2, 0.5)], 2, 2, SoftmaxCrossEntropy())
    x = np.eye(2)[[[0, 1], [1, 1]]]
    model.single_step(x, x)
    opt = SGD(lr=0.5)
    opt.bind(model)
    for g in model.param_grads():
        g *= 100  # beyond the clip
    before = [p.copy() for p in model.params()]
    grads = [g.copy() for g in model.param_grads()]
    opt.step()
    for b, g, p in zip(before, grads, model.params(), strict=True):
        np.testing.assert_allclose(p, b - 0.5 * np.clip(g, -2, 2), rtol=1e-14)


# -- the trainer -----------------------------------------------------------------------------

TEXT = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"


def small_trainer(tmp_path, batch_size=3, t=4, text=TEXT):
    path = tmp_path / "small.txt"
    path.write_text(text, encoding="utf-8")
    v = len(set(text))
    model = RNNModel([RNNLayer(5, v)], sequence_length=t, vocab_size=v, loss=SoftmaxCrossEntropy())
    return RNNTrainer(path, model, SGD(), batch_size=batch_size), path


def book_windows(data, char_to_idx, start_pos, batch_size, t):
    """The book's ``_generate_inputs_targets``, loops and all."""
    inputs = np.zeros((batch_size, t), dtype=int)
    targets = np.zeros((batch_size, t), dtype=int)
    for i in range(batch_size):
        inputs[i, :] = np.array([char_to_idx[ch] for ch in data[start_pos + i : start_pos + t + i]])
        targets[i, :] = np.array(
            [char_to_idx[ch] for ch in data[start_pos + 1 + i : start_pos + t + 1 + i]]
        )
    return inputs, targets


def test_trainer_batches_are_the_books_windows(tmp_path, monkeypatch):
    trainer, _ = small_trainer(tmp_path)
    assert trainer.chars == sorted(set(TEXT)) and trainer.data == TEXT
    b, t, v = 3, 4, trainer.vocab_size
    seen = []
    monkeypatch.setattr(trainer.model, "single_step", lambda x, y: seen.append((x, y)) or 1.0)
    monkeypatch.setattr(trainer.optim, "step", lambda: None)
    n_iter = 40  # wraps to the start: the text has 85 characters
    trainer.train(n_iter, sample_every=None)
    start_pos, positions = 0, []
    for _ in range(n_iter):  # the book's loop
        if start_pos + t + b + 1 > len(TEXT):
            start_pos = 0
        positions.append(start_pos)
        start_pos += b
    assert 0 in positions[1:]
    for (x, y), pos in zip(seen, positions, strict=True):
        inputs, targets = book_windows(TEXT, trainer.char_to_idx, pos, b, t)
        for batch, ids in ((x, inputs), (y, targets)):
            expected = np.zeros((b, t, v))
            for i in range(b):
                for j in range(t):
                    expected[i, j, ids[i, j]] = 1.0
            np.testing.assert_array_equal(batch, expected)
    np.testing.assert_array_equal(trainer.plot_iter, np.arange(n_iter))
    np.testing.assert_array_equal(trainer.plot_loss, np.ones(n_iter))


def test_moving_average_and_sampling(tmp_path, capsys):
    trainer, _ = small_trainer(tmp_path)
    np.random.seed(0)
    trainer.train(130, sample_every=50)
    printed = capsys.readouterr().out.split("\n")
    window = deque(maxlen=100)
    expected = []
    for loss in trainer.losses:
        window.append(loss)
        expected.append(np.mean(window))
    np.testing.assert_allclose(trainer.plot_loss, expected, rtol=1e-14)
    assert len("\n".join(printed)) >= 3 * 200  # samples at iterations 0, 50, 100
    assert set("".join(printed)) <= set(TEXT) | {"\n"}


def test_sample_output_is_the_books_loop(tmp_path):
    trainer, _ = small_trainer(tmp_path)
    trainer.train(20, sample_every=None)
    state = [s.copy() for s in trainer.model.layers[0].state]
    np.random.seed(5)
    text = trainer.sample_output(2, 30)
    # the book's sample_output, step by step on a copy
    copy, v, char, indices = deepcopy(trainer.model), trainer.vocab_size, 2, []
    np.random.seed(5)
    for _ in range(30):
        batch = np.zeros((1, 1, v))
        batch[0, 0, char] = 1.0
        z = copy.forward(batch).ravel()
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        char = np.random.choice(range(v), p=p)
        indices.append(char)
    assert text == "".join(trainer.idx_to_char[i] for i in indices)
    for mine, before in zip(trainer.model.layers[0].state, state, strict=True):
        np.testing.assert_array_equal(mine, before)  # sampling moved a copy's state only


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    trainer, _ = small_trainer(tmp_path)
    with pytest.raises(ValueError, match="train"):
        trainer.plot(tmp_path / "curve.png")
    trainer.train(5, sample_every=None)
    trainer.plot(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(not os.environ.get("FASTDL_DATA"), reason="FASTDL_DATA is not set")
def test_short_training_run_on_tinyshakespeare():
    """150 iterations of a one-layer LSTM (AdaGrad, batch 32, T 25) on the real text through
    fastdl's loader. Measured: the moving average falls from 3343 (25·32·log 65 = 3339) to
    ~2570 (-23%); asserted: below 85% of the start."""
    path = os.path.join(os.environ["FASTDL_DATA"], "text", "tinyshakespeare.txt")
    np.random.seed(0)
    model = RNNModel([LSTMLayer(64, 65, 0.01)], 25, 65, SoftmaxCrossEntropy())
    trainer = RNNTrainer(path, model, AdaGrad(lr=0.01), batch_size=32)
    trainer.train(150, sample_every=None)
    assert trainer.plot_loss[0] == pytest.approx(32 * 25 * np.log(65), rel=0.01)
    assert trainer.plot_loss[-1] < 0.85 * trainer.plot_loss[0]


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: RNNLayer(0, 3), "RNNLayer: hidden_size must be a positive int, got 0"),
        (lambda: LSTMLayer(4, "3"), "LSTMLayer: output_size must be a positive int, got '3'"),
        (lambda: GRULayer(4, 3, -0.1), "GRULayer: weight_scale must be a positive number"),
        (lambda: LSTMLayer(4, 3, None), "LSTMLayer: weight_scale must be a positive number, got None"),
        (lambda: SoftmaxCrossEntropy(eps=0), r"SoftmaxCrossEntropy: eps must be a number in \(0"),
        (lambda: RNNModel([RNNLayer(4, 62)], 25, 65, SoftmaxCrossEntropy()),
         "RNNModel: the last layer's output_size is 62 but vocab_size is 65"),
        (lambda: RNNModel([RNNLayer(4, 65)], 0, 65, SoftmaxCrossEntropy()),
         "RNNModel: sequence_length must be a positive int, got 0"),
    ],
)  # fmt: skip
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_bad_input_is_refused_before_any_arithmetic():
    layer = LSTMLayer(4, 3)
    state = np.random.get_state()[1].copy()
    with pytest.raises(ValueError, match=r"LSTMLayer: expected input \(batch, time, features\)"):
        layer.forward(np.zeros((2, 5)))
    with pytest.raises(TypeError, match="LSTMLayer: expected floating-point input"):
        layer.forward(np.zeros((2, 3, 5), dtype=np.int64))
    assert layer.first and np.array_equal(np.random.get_state()[1], state)  # nothing drawn
    layer.forward(np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="LSTMLayer: expected 5 input features"):
        layer.forward(np.zeros((2, 3, 6)))
    with pytest.raises(ValueError, match=r"start_H must have shape \(1, 4\), got \(2, 4\)"):
        layer.set_state(np.zeros((2, 4)), np.zeros((1, 4)))
    model = RNNModel([RNNLayer(4, 6)], 3, 6, SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match=r"RNNModel: expected one-hot input \(batch, time, 6\), "):
        model.forward(np.zeros((2, 3, 5)))


def test_trainer_refuses_a_vocab_mismatch_and_bad_arguments(tmp_path):
    trainer, path = small_trainer(tmp_path)
    v = trainer.vocab_size
    model = RNNModel([RNNLayer(5, 62)], 4, 62, SoftmaxCrossEntropy())
    with pytest.raises(
        ValueError, match=f"has {v} distinct characters but the model's vocab_size is 62"
    ):
        RNNTrainer(path, model, SGD())
    good = RNNModel([RNNLayer(5, v)], 4, v, SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match="needs at least 105"):
        RNNTrainer(path, good, SGD(), batch_size=100)
    with pytest.raises(TypeError, match="RNNTrainer: optim must be a fastdl optimizer"):
        RNNTrainer(path, good, "sgd")
    with pytest.raises(TypeError, match="RNNTrainer: model must be an RNNModel"):
        RNNTrainer(path, fd.NeuralNetwork([fd.Dense(3)], fd.MeanSquaredError()), SGD())
    with pytest.raises(ValueError, match=r"input_char must be a character index in \[0, "):
        trainer.sample_output(v, 10)
    with pytest.raises(ValueError, match="sample_every must be a positive int"):
        trainer.train(3, sample_every=0)
