"""net.summary / fastdl.summary.count: shapes, parameters and FLOPs, against hand counts,
real forward passes and the products fastdl actually runs."""

import numpy as np
import pytest

import fastdl as fd
import fastdl.ops.conv as ops_conv
import fastdl.ops.dense as ops_dense
from fastdl.kernels.im2col import im2col_np
from fastdl.recipes.mnist_cnn import build as reference_cnn
from fastdl.summary import count, label

CELLS = {"rnn": (fd.RNNLayer, 1), "gru": (fd.GRULayer, 3), "lstm": (fd.LSTMLayer, 4)}


# -- the reference CNN, by hand ---------------------------------------------------------------

CONV1 = 26 * 26 * 32 * (3 * 3 * 1) * 2  # OH·OW·C_out · KH·KW·C_in · 2 FLOPs per multiply-add
CONV2 = 24 * 24 * 64 * (3 * 3 * 32) * 2
DENSE1 = 9216 * 128 * 2  # D·H · 2 (9216 = 64·12·12 after pooling)
DENSE2 = 128 * 10 * 2
REFERENCE = {
    # layer: (output shape, params, forward FLOPs, training FLOPs)
    0: ((32, 26, 26), 32 * 1 * 3 * 3 + 32, CONV1, 2 * CONV1),  # first layer: dW only, no dx
    1: ((64, 24, 24), 64 * 32 * 3 * 3 + 64, CONV2, 3 * CONV2),  # forward, dW, dx
    2: ((64, 12, 12), 0, 0, 0),  # pooling: comparisons, not counted
    3: ((9216,), 0, 0, 0),
    4: ((128,), 9216 * 128 + 128, DENSE1, 3 * DENSE1),
    5: ((10,), 128 * 10 + 10, DENSE2, 3 * DENSE2),
}


def test_reference_cnn_against_hand_counts():
    net = reference_cnn()
    counted = count(net, (1, 28, 28))
    for c in counted.layers:
        shape, params, forward, training = REFERENCE[c.index]
        assert (c.output_shape, c.params, c.forward_flops, c.training_flops) == (
            shape, params, forward, training,
        ), c.name  # fmt: skip
    assert counted.forward_flops == 389_376 + 21_233_664 + 2_359_296 + 2_560 == 23_984_896
    assert counted.training_flops == 2 * 389_376 + 3 * (21_233_664 + 2_359_296 + 2_560)
    assert counted.params == sum(p.size for p in net.params()) == 1_199_882
    assert counted.param_bytes == 4 * 1_199_882
    assert [c.name for c in counted.layers] == [
        "Conv2D(32, 3×3, padding=0, ReLU)",
        "Conv2D(64, 3×3, padding=0, ReLU)",
        "MaxPool2D(2, stride=2, dropout=0.75)",
        "Flatten()",
        "Dense(128, ReLU, dropout=0.5)",
        "Dense(10, Linear)",
    ]


def test_summary_prints_the_table_it_returns(capsys):
    net = reference_cnn()
    text = net.summary((1, 28, 28))
    assert capsys.readouterr().out == text + "\n"
    assert text == str(count(net, (1, 28, 28)))
    for number in ("1,199,882", "23,984,896", "71,565,312", "(64, 12, 12)", "21,233,664"):
        assert number in text
    assert "2 per multiply-add" in text and "no dx in layer 0" in text


# -- shapes and parameters against the network itself -----------------------------------------


def networks():
    """(name, layers, one example's shape) covering every layer kind."""
    return {
        "reference-cnn": (reference_cnn().layers, (1, 28, 28)),
        "same-stride-flatten": (
            [
                fd.Conv2D(4, (3, 2), stride=2, padding="same", activation=fd.Tanh(), flatten=True),
                fd.Dense(3),
            ],
            (2, 9, 7),
        ),
        "autoencoder": (
            [
                fd.Conv2D(4, 3, stride=2, padding=1, activation=fd.ReLU()),
                fd.Conv2DTranspose(2, 3, stride=2, padding=1, output_padding=1),
                fd.Flatten(),
                fd.Dense(3),
            ],
            (2, 8, 7),
        ),
        "batch-norm": (
            [
                fd.Conv2D(4, 3),
                fd.BatchNorm2D(activation=fd.ReLU()),
                fd.MaxPool2D(2),
                fd.BatchNorm2D(),
                fd.Flatten(),
                fd.Dense(5),
                fd.BatchNorm1D(activation=fd.Tanh()),
                fd.Dense(3),
            ],
            (2, 8, 6),
        ),
        "rnn-seq": ([fd.RNNLayer(5), fd.Dense(3)], (4, 6)),
        "gru-last": ([fd.GRULayer(5, return_sequences=False), fd.Dense(3)], (4, 6)),
        "lstm-lstm": ([fd.LSTMLayer(5), fd.LSTMLayer(3, stateful=True), fd.Dense(2)], (4, 6)),
        "embedding-gru": ([fd.Embedding(11, 4), fd.GRULayer(5), fd.Dense(11)], (7,)),
        "flatten-first": ([fd.Flatten(), fd.Dense(6, fd.ReLU()), fd.Dense(2)], (3, 4)),
    }


def example_batch(net, shape, n, rng):
    if not net.layers[0].float_input:
        return rng.integers(0, 11, (n, *shape))
    return rng.standard_normal((n, *shape)).astype(np.float32)


@pytest.mark.parametrize("name", list(networks()))
def test_shapes_and_params_match_a_real_forward_pass(name, rng):
    layers, shape = networks()[name]
    net = fd.NeuralNetwork(layers, fd.SoftmaxCrossEntropy(), seed=0)
    counted = count(net, shape)
    net.reset_state()
    net.forward(example_batch(net, shape, 3, rng), inference=True)
    assert [c.output_shape for c in counted.layers] == [
        layer.output.shape[1:] for layer in net.layers
    ]
    assert [c.params for c in counted.layers] == [
        sum(p.size for p in layer.params()) for layer in net.layers
    ]
    assert counted.params == sum(p.size for p in net.params())
    assert counted.param_bytes == sum(p.nbytes for p in net.params())
    assert counted.input_shape == shape
    floats = [b for b in net.buffers() if b.dtype.kind == "f"]  # running statistics
    assert counted.buffers == sum(b.size for b in floats)
    assert ("buffers: " in counted.table()) == bool(floats)


# -- FLOPs against the products fastdl runs ---------------------------------------------------


def product_flops(a, b, trans_a, trans_b):
    """``2·M·K·N`` for ``op(a) @ op(b)``, from the operands' shapes."""
    m, k = a.shape[::-1] if trans_a else a.shape
    n = b.shape[0] if trans_b else b.shape[1]
    return 2 * m * k * n


@pytest.mark.parametrize("layers", ["dense", "after-rnn"])
def test_dense_flops_are_those_of_the_matmuls_fastdl_calls(layers, monkeypatch, rng):
    """Record every product of WeightMultiply during a real training step (batch of 5) and
    compare with the count for one example, forward and backward separately."""
    if layers == "dense":
        net = fd.NeuralNetwork([fd.Dense(7, fd.Tanh()), fd.Dense(4, fd.ReLU()), fd.Dense(3)],
                               fd.SoftmaxCrossEntropy(), seed=0)  # fmt: skip
        x, y = rng.standard_normal((5, 6)).astype(np.float32), rng.integers(0, 3, 5)
    else:
        net = fd.NeuralNetwork([fd.RNNLayer(4), fd.Dense(3)], fd.SoftmaxCrossEntropy(), seed=0)
        x, y = rng.standard_normal((5, 2, 6)).astype(np.float32), rng.integers(0, 3, (5, 2))
    counted = count(net, x.shape[1:])
    products = []
    real = ops_dense.matmul
    monkeypatch.setattr(
        ops_dense, "matmul", lambda *args: products.append(product_flops(*args)) or real(*args)
    )
    net.forward(x)
    dense = [i for i, layer in enumerate(net.layers) if isinstance(layer, fd.Dense)]
    assert sum(products) == 5 * sum(counted.layers[i].forward_flops for i in dense)
    products.clear()
    net.loss.forward(net.layers[-1].output, y)
    net.backward(net.loss.backward())
    assert sum(products) == 5 * sum(counted.layers[i].backward_flops for i in dense)
    if layers == "dense":  # the first layer computes dW only: one product, not two
        assert counted.layers[0].backward_flops == counted.layers[0].forward_flops


@pytest.mark.parametrize(
    "conv",
    [
        dict(out_channels=5, param_size=3, padding=0),
        dict(out_channels=4, param_size=(2, 3), padding="same", stride=2),
        dict(out_channels=3, param_size=1, padding=2, activation=fd.ReLU()),
    ],
    ids=["valid", "same-even-stride2", "1x1-padded-relu"],
)
@pytest.mark.parametrize("first", [True, False], ids=["first", "second"])
def test_conv_flops_are_those_of_the_im2col_product(conv, first, monkeypatch, rng):
    """The patch matrix the kernel multiplies, ``(N, P, K)`` from ``im2col``, times
    ``(K, C_out)``, for the forward pass; the backward pass the same product once for dW
    and once more for dx, which the kernel is asked for only when not first."""
    layers = [fd.Conv2D(**conv), fd.Flatten(), fd.Dense(2)]
    if not first:
        layers.insert(0, fd.Conv2D(2, 1, padding=0))
    net = fd.NeuralNetwork(layers, fd.SoftmaxCrossEntropy(), seed=0)
    x = rng.standard_normal((3, 2, 7, 8)).astype(np.float32)
    counted = count(net, x.shape[1:])
    calls = {}
    real_forward, real_backward = ops_conv.conv2d_forward, ops_conv.conv2d_backward

    def forward(x, w, b, stride, pad, relu):
        col = im2col_np(x, w.shape[0], w.shape[1], stride, pad)
        calls.setdefault("forward", []).append(
            2 * col.shape[0] * col.shape[1] * col.shape[2] * w.shape[3]
        )
        return real_forward(x, w, b, stride, pad, relu)

    def backward(*args):
        calls.setdefault("need_dx", []).append(args[-1])
        return real_backward(*args)

    monkeypatch.setattr(ops_conv, "conv2d_forward", forward)
    monkeypatch.setattr(ops_conv, "conv2d_backward", backward)
    net.train_batch(x, rng.integers(0, 2, 3))
    c = counted.layers[0 if first else 1]
    assert calls["forward"][-1] == 3 * c.forward_flops
    need_dx = calls["need_dx"][0]  # backward runs last layer first: [0] is the layer counted
    assert need_dx is (not first)
    assert c.backward_flops == c.forward_flops * (2 if need_dx else 1)


def test_valid_conv_flops_are_its_multiply_adds_counted_with_ones():
    """With ones for input and weights and no padding, every output element of a
    convolution is the number of multiply-adds that made it."""
    net = fd.NeuralNetwork([fd.Conv2D(3, (2, 3), stride=2, padding=0)], fd.MeanSquaredError(),
                           dtype=np.float64)  # fmt: skip
    counted = count(net, (2, 7, 9))
    net.layers[0].operations[0].W[...] = 1
    out = net.forward(np.ones((1, 2, 7, 9)))
    assert counted.layers[0].forward_flops == 2 * out.sum()


# -- recurrent networks, by hand --------------------------------------------------------------


@pytest.mark.parametrize("cell", list(CELLS))
def test_recurrent_flops_against_hand_counts(cell):
    layer, g = CELLS[cell]
    t, d, h, h2, k = 5, 3, 8, 6, 4
    net = fd.NeuralNetwork([layer(h), layer(h2, return_sequences=False), fd.Dense(k)],
                           fd.SoftmaxCrossEntropy(), seed=0)  # fmt: skip
    first, second, dense = count(net, (t, d)).layers
    projection, recurrent = 2 * t * d * g * h, 2 * t * h * g * h  # per step: x W_ih, h W_hh
    assert first.forward_flops == projection + recurrent
    # backward: dW_ih; dW_hh and dh_{t-1} (through time, even in the first layer); no dx
    assert first.backward_flops == projection + 2 * recurrent
    projection2, recurrent2 = 2 * t * h * g * h2, 2 * t * h2 * g * h2
    assert second.forward_flops == projection2 + recurrent2
    assert second.backward_flops == 2 * projection2 + 2 * recurrent2  # dW_ih and dx too
    assert dense.forward_flops == 2 * h2 * k and dense.backward_flops == 2 * 2 * h2 * k
    assert first.params == d * g * h + h * g * h + g * h * (2 if cell == "gru" else 1)


def test_one_hot_input_to_a_first_lstm_costs_no_projection(rng):
    """The book's character model: one-hot rows into LSTMLayer(H) → Dense(V); fastdl gathers
    rows of W_ih instead of multiplying (checked on a real training step)."""
    v, h, t = 11, 8, 5
    net = fd.NeuralNetwork([fd.LSTMLayer(h), fd.Dense(v)], fd.SoftmaxCrossEntropy(), seed=0)
    one_hot = count(net, (t, v), one_hot=True)
    dense = count(net, (t, v))
    lstm, out = one_hot.layers
    assert lstm.forward_flops == 2 * t * h * 4 * h
    assert lstm.training_flops == 3 * 2 * t * h * 4 * h
    assert out.training_flops == 3 * 2 * t * h * v
    assert one_hot.training_flops == 3 * 2 * t * (4 * h * h + h * v)
    assert dense.layers[0].forward_flops == lstm.forward_flops + 2 * t * v * 4 * h
    assert one_hot.input_kind == "one-hot" and "one-hot float32 rows" in one_hot.table()
    ids = rng.integers(0, v, (4, t + 1))
    net.train_batch(np.eye(v, dtype=np.float32)[ids[:, :-1]], ids[:, 1:])
    assert net.layers[0].operations[0]._kernel_input.ndim == 2  # the gather took place


def test_embedding_first_network():
    """Ids (T,) → Embedding (no FLOPs) → LSTM, which computes an input gradient (it is not the
    first layer) → Dense on the last step."""
    v, e, h, t = 13, 4, 6, 7
    net = fd.NeuralNetwork([fd.Embedding(v, e), fd.LSTMLayer(h, return_sequences=False),
                            fd.Dense(v)], fd.SoftmaxCrossEntropy(), seed=0)  # fmt: skip
    text = net.summary((t,))
    assert net.input_kind == "int" and net.input_shape == (t,)
    embedding, lstm, dense = count(net, (t,)).layers
    assert (embedding.output_shape, embedding.params) == ((t, e), v * e)
    assert embedding.forward_flops == embedding.backward_flops == 0
    assert lstm.forward_flops == 2 * t * (e * 4 * h + h * 4 * h)
    assert lstm.backward_flops == 2 * 2 * t * (e * 4 * h + h * 4 * h)
    assert dense.output_shape == (v,) and dense.forward_flops == 2 * h * v
    assert "integer token ids" in text and "Embedding(13, 4)" in text
    with pytest.raises(ValueError, match="one_hot=True.*Embedding"):
        count(net, (t,), one_hot=True)


def test_a_first_flatten_leaves_the_dense_input_gradient_on():
    """Only the first layer skips its input gradient; a Dense after a first Flatten does not,
    and the count says so (3× its forward)."""
    net = fd.NeuralNetwork([fd.Flatten(), fd.Dense(5)], fd.MeanSquaredError())
    dense = count(net, (2, 3)).layers[1]
    assert dense.forward_flops == 2 * 6 * 5 and dense.training_flops == 3 * dense.forward_flops


# -- building, already built, bad shapes -----------------------------------------------------


def test_summary_builds_a_new_network_as_build_does():
    a, b = reference_cnn(seed=3), reference_cnn(seed=3)
    a.summary((1, 28, 28))
    b.build((1, 28, 28))
    assert a.input_shape == (1, 28, 28)
    assert all(np.array_equal(p, q) for p, q in zip(a.params(), b.params(), strict=True))


def test_a_summary_leaves_weights_generator_and_carried_state_alone(rng):
    net = fd.NeuralNetwork([fd.LSTMLayer(4, stateful=True), fd.Dense(3, dropout=0.5)],
                           fd.SoftmaxCrossEntropy(), seed=0)  # fmt: skip
    x, y = rng.standard_normal((6, 5, 2)).astype(np.float32), rng.integers(0, 3, (6, 5))
    net.train_batch(x, y)
    weights, state = net.get_weights(), net.rng.bit_generator.state
    carried = [s.copy() for s in net.layers[0].state]
    count(net, (5, 2))  # one example: the state for 6 rows must not get in the way
    assert all(np.array_equal(p, q) for p, q in zip(net.params(), weights, strict=True))
    assert net.rng.bit_generator.state == state
    assert all(np.array_equal(s, c) for s, c in zip(net.layers[0].state, carried, strict=True))
    net.train_batch(x, y)  # and training continues from that state


def test_a_network_built_for_another_shape_is_refused():
    net = reference_cnn()
    net.build((1, 28, 28))
    weights = net.get_weights()
    with pytest.raises(
        ValueError, match=r"built for examples of shape \(1, 28, 28\), not \(1, 32, 32\)"
    ):
        net.summary((1, 32, 32))
    assert all(np.array_equal(p, q) for p, q in zip(net.params(), weights, strict=True))
    assert count(net, [1, 28, 28]).forward_flops == 23_984_896  # a list is a shape too


@pytest.mark.parametrize(
    "shape, error, match",
    [
        (784, TypeError, r"must be a tuple.*\(784,\)"),
        ("1x28x28", TypeError, "tuple of ints"),
        (None, TypeError, "tuple of ints"),
        ((), ValueError, "positive ints"),
        ((0, 28, 28), ValueError, "positive ints"),
        ((1, -28, 28), ValueError, "positive ints"),
        ((1, 28.0, 28), ValueError, "positive ints"),
        ((True, 28, 28), ValueError, "positive ints"),
    ],
    ids=["int", "str", "none", "empty", "zero", "negative", "float", "bool"],
)
def test_bad_input_shapes_are_refused(shape, error, match):
    net = reference_cnn()
    with pytest.raises(error, match=match):
        net.summary(shape)
    assert net.input_shape is None


def test_a_shape_that_does_not_fit_names_the_layer_and_leaves_the_network_new():
    net, fresh = reference_cnn(seed=5), reference_cnn(seed=5)
    with pytest.raises(
        ValueError, match=r"\(64, 1, 28, 28\) \(one example, no batch axis\).*Conv2D"
    ):
        net.summary((64, 1, 28, 28))  # a batch axis given by mistake
    with pytest.raises(ValueError, match=r"\(784,\).*Conv2D"):
        net.summary((784,))
    assert net.input_shape is None and all(layer.first for layer in net.layers)
    net.summary((1, 28, 28))
    fresh.build((1, 28, 28))
    assert all(np.array_equal(p, q) for p, q in zip(net.params(), fresh.params(), strict=True))


def test_labels_follow_the_constructor_call():
    assert label(fd.Conv2D(8, 5)) == "Conv2D(8, 5×5)"
    assert label(fd.Conv2D(8, (2, 3), padding=(1, 2), weight_init="he")) == (
        "Conv2D(8, 2×3, padding=1×2, weight_init='he')"
    )
    assert label(fd.Dense(4, fd.Tanh(), dropout=0.8)) == "Dense(4, Tanh, dropout=0.8)"
    assert label(fd.LSTMLayer(3, stateful=True)) == "LSTMLayer(3, stateful=True)"
    assert label(fd.Flatten()) == "Flatten()"
