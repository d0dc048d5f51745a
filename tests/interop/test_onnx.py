"""fastdl.onnx.export: the checker passes and ONNX Runtime gives ``net.predict``'s numbers.

Every exportable layer type in a grid of configurations, the reference CNN of
``fastdl train mnist-cnn`` and the char-LSTM model, at batch sizes 1 and 1000, with random
weights and biases (no training). The comparison is elementwise with an absolute tolerance
scaled to the output's magnitude: ``max |onnx − fastdl| <= 1e-5 · max |fastdl|`` (float32
sums of hundreds of terms are not accurate to 1e-5 relative near zero). Then the errors, the
atomic write, and ``fastdl train mnist-cnn --smoke --export-onnx``.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastdl as fd
from fastdl.onnx import IR_VERSION, OPSET, ExportError, export
from fastdl.recipes import char_lstm, mnist_cnn

onnx = pytest.importorskip("onnx", reason="onnx is an optional extra: pip install 'fastdl[onnx]'")
ort = pytest.importorskip(
    "onnxruntime", reason="onnxruntime is an optional extra: pip install 'fastdl[onnx]'"
)

RTOL = 1e-5
BATCHES = [1, 1000]


def session(path):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def max_rel_diff(got: np.ndarray, want: np.ndarray) -> float:
    """``max |got − want| / max |want|``."""
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


def randomize(net, rng, scale=0.3):
    """Perturb every parameter (biases start at zero: make them count)."""
    for p in net.params():
        p += (scale * rng.standard_normal(p.shape)).astype(p.dtype)


def sample_input(net, shape, n, rng):
    if net.layers[0].float_input:
        return rng.standard_normal((n, *shape)).astype(np.float32)
    return rng.integers(0, net.layers[0].vocab_size, (n, *shape)).astype(np.int64)


def compare(net, shape, tmp_path, batches=BATCHES, seed=0, scale=0.3):
    """Export (building the net), check, and compare ONNX Runtime with ``net.predict`` for each
    batch size; returns ``{batch: max relative difference}``. ``scale``: see randomize."""
    rng = np.random.default_rng(seed)
    path = tmp_path / "model.onnx"
    net.build(shape, "float" if net.layers[0].float_input else "int")
    randomize(net, rng, scale)
    export(net, path, shape)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    sess = session(path)
    diffs = {}
    for n in batches:
        x = sample_input(net, shape, n, rng)
        net.reset_state()
        want = net.predict(x, batch_size=n)
        net.reset_state()
        (got,) = sess.run(None, {"input": x})
        assert got.shape == want.shape and got.dtype == np.float32
        diffs[n] = max_rel_diff(got, want)
        assert diffs[n] <= RTOL, f"batch {n}: max relative difference {diffs[n]:.3g}"
    return diffs


def network(*layers, seed=1):
    return fd.NeuralNetwork(list(layers), fd.MeanSquaredError(), seed=seed)


# --- each layer type ------------------------------------------------------------------------

ACTIVATIONS = {
    "identity": fd.Identity,
    "linear": fd.Linear,
    "relu": fd.ReLU,
    "sigmoid": fd.Sigmoid,
    "tanh": fd.Tanh,
    "leaky0.2": lambda: fd.LeakyReLU(0.2),
}


@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("shape", [(7,), (4, 7)], ids=["2d", "3d"])
def test_dense(act, shape, tmp_path):
    compare(network(fd.Dense(5, ACTIVATIONS[act](), dropout=0.5)), shape, tmp_path)


def test_dense_stack(tmp_path):
    net = network(fd.Dense(16, fd.Tanh()), fd.Dense(8, fd.ReLU(), dropout=0.7), fd.Dense(3))
    compare(net, (12,), tmp_path)


# (C_in, H, W), Conv2D arguments
CONVS = {
    "k3-s1-same": ((2, 8, 8), {"param_size": 3, "padding": "same", "activation": fd.ReLU()}),
    "k3-s2-same-odd": ((2, 9, 7), {"param_size": 3, "stride": 2, "padding": "same"}),
    "k4-s1-same-even": ((1, 8, 8), {"param_size": 4, "padding": "same", "activation": fd.Tanh()}),
    "k2x3-s2-same": ((3, 7, 10), {"param_size": (2, 3), "stride": 2, "padding": "same"}),
    "k4-s3-same": ((1, 10, 11), {"param_size": 4, "stride": 3, "padding": "same"}),
    "k3-valid": ((2, 9, 8), {"param_size": 3, "padding": "valid", "activation": fd.Sigmoid()}),
    "k2-s3-valid": ((1, 10, 10), {"param_size": 2, "stride": 3, "padding": 0}),
    "k3-s2-pad2": ((2, 9, 9), {"param_size": 3, "stride": 2, "padding": 2}),
    "k3-pad1x0": ((1, 6, 8), {"param_size": 3, "padding": (1, 0)}),
    "k1": ((3, 5, 4), {"param_size": 1, "activation": fd.LeakyReLU(0.1)}),
    "k5-flatten-dropout": (
        (1, 8, 8),
        {"param_size": 5, "activation": fd.Tanh(), "dropout": 0.8, "flatten": True},
    ),
}


@pytest.mark.parametrize("case", CONVS, ids=str)
def test_conv2d(case, tmp_path):
    shape, kwargs = CONVS[case]
    compare(network(fd.Conv2D(out_channels=4, **kwargs)), shape, tmp_path)


def test_conv2d_same_pads_are_the_concrete_ones(tmp_path):
    """fastdl's (PT, PB, PL, PR) = (1, 2, 0, 1) for a 4×3 kernel, stride 2, on 9×8 is written
    as ONNX's [PT, PL, PB, PR] (no auto_pad)."""
    net = network(fd.Conv2D(2, (4, 3), stride=2, padding="same"))
    model = export(net, tmp_path / "m.onnx", (1, 9, 8))
    (conv,) = [n for n in model.graph.node if n.op_type == "Conv"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
    assert net.layers[0].operations[0].pad == (1, 2, 0, 1)
    assert attrs["pads"] == [1, 0, 2, 1] and "auto_pad" not in attrs
    assert attrs["strides"] == [2, 2] and attrs["kernel_shape"] == [4, 3]


# (C_in, H, W), Conv2DTranspose arguments
TRANSPOSED = {
    "k3": ((2, 5, 6), {"param_size": 3}),
    "k4-s2-p1": ((3, 7, 7), {"param_size": 4, "stride": 2, "padding": 1}),
    "k5-s2-p2-op1": ((2, 7, 7), {"param_size": 5, "stride": 2, "padding": 2, "output_padding": 1}),
    "k2x3-s3-p1x0-op2x1": (
        (1, 4, 5),
        {"param_size": (2, 3), "stride": 3, "padding": (1, 0), "output_padding": (2, 1)},
    ),
    "k1-s2-relu-dropout": (
        (3, 4, 4),
        {"param_size": 1, "stride": 2, "activation": fd.ReLU(), "dropout": 0.5},
    ),
}


@pytest.mark.skipif(not hasattr(fd, "Conv2DTranspose"), reason="no Conv2DTranspose here")
@pytest.mark.parametrize("case", TRANSPOSED, ids=str)
def test_conv2d_transpose(case, tmp_path):
    shape, kwargs = TRANSPOSED[case]
    compare(network(fd.Conv2DTranspose(out_channels=3, **kwargs)), shape, tmp_path)


@pytest.mark.skipif(not hasattr(fd, "Reshape"), reason="no Reshape layer here")
def test_reshape(tmp_path):
    net = network(fd.Dense(24, fd.Tanh()), fd.Reshape((2, 3, 4)), fd.Conv2D(2, 2))
    compare(net, (5,), tmp_path)


# one example's shape, layers
BATCH_NORMS = {
    "2d-after-conv-relu": ((2, 8, 7), lambda: [fd.Conv2D(4, 3), fd.BatchNorm2D(activation=fd.ReLU())]),
    "2d-after-pool": (
        (2, 9, 8),
        lambda: [fd.Conv2D(4, 3, activation=fd.ReLU()), fd.MaxPool2D(2),
                 fd.BatchNorm2D(momentum=None, eps=1e-3), fd.Flatten(), fd.Dense(3)],
    ),
    "2d-first": ((3, 5, 4), lambda: [fd.BatchNorm2D(activation=fd.Tanh())]),
    "1d": ((6,), lambda: [fd.Dense(5), fd.BatchNorm1D(activation=fd.LeakyReLU(0.1)), fd.Dense(2)]),
    "1d-first": ((6,), lambda: [fd.BatchNorm1D()]),
    "1d-sequences": ((4, 6), lambda: [fd.Dense(5), fd.BatchNorm1D(activation=fd.ReLU())]),
    "1d-after-lstm": ((4, 3), lambda: [fd.LSTMLayer(5), fd.BatchNorm1D(), fd.Dense(2)]),
}  # fmt: skip


@pytest.mark.parametrize("case", BATCH_NORMS, ids=str)
def test_batch_norm_exports_its_running_statistics(case, tmp_path):
    """Trained a few steps first, so the running statistics are the batches' (not 0 and 1):
    ONNX Runtime's BatchNormalization (inference mode) gives net.predict's numbers."""
    shape, layers = BATCH_NORMS[case]
    net = network(*layers())
    optim = fd.SGD(0.05)
    fd.Trainer(net, optim)
    rng = np.random.default_rng(3)
    for _ in range(4):
        x = (2 * rng.standard_normal((16, *shape)) + 1).astype(np.float32)
        target = net.forward(x, inference=True)
        net.train_batch(x, rng.standard_normal(target.shape).astype(np.float32))
        optim.step()
    bn = next(layer for layer in net.layers if layer.buffers())
    assert bn.num_batches_tracked == 4 and not np.allclose(bn.running_var, 1)
    compare(net, shape, tmp_path)
    model = onnx.load(str(tmp_path / "model.onnx"))
    (node,) = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    assert attrs["epsilon"] == pytest.approx(bn.eps) and attrs.get("training_mode", 0) == 0
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(weights[node.input[3]], bn.running_mean)
    np.testing.assert_array_equal(weights[node.input[4]], bn.running_var)
    transposes = sum(n.op_type == "Transpose" for n in model.graph.node)
    recurrent = sum(n.op_type == "LSTM" for n in model.graph.node)
    assert transposes == 2 * recurrent + (2 if len(shape) == 2 else 0)


# (C, H, W), size, stride
POOLS = {
    "2": ((3, 8, 8), 2, None),
    "3-drops-remainder": ((2, 10, 11), 3, None),
    "3-s2-overlap": ((2, 9, 9), 3, 2),
    "2-s3-gaps": ((1, 9, 8), 2, 3),
    "2-odd": ((2, 7, 9), 2, None),
}


@pytest.mark.parametrize("case", POOLS, ids=str)
def test_maxpool2d(case, tmp_path):
    shape, size, stride = POOLS[case]
    compare(network(fd.MaxPool2D(size, stride, dropout=0.5)), shape, tmp_path)


def test_conv_pool_conv(tmp_path):
    """A convolution after pooling (NCHW throughout, fastdl's channels-last views inside)."""
    net = network(
        fd.Conv2D(4, 3, activation=fd.ReLU()),
        fd.MaxPool2D(2),
        fd.Conv2D(3, 2, stride=2, padding="same", flatten=True),
        fd.Dense(5),
    )
    compare(net, (2, 11, 10), tmp_path)


def test_book_cnn_with_fused_tanh(tmp_path):
    """The book's chapter-5 layer: its tanh runs inside the convolution and is exported as a
    Tanh node after the Conv."""
    net = network(fd.Conv2D(4, 5, activation=fd.Tanh(), flatten=True), fd.Dense(3))
    compare(net, (1, 9, 8), tmp_path)
    assert net.layers[0].operations[0].tanh


@pytest.mark.parametrize("shape", [(2, 5, 4), (6, 3)], ids=["nchw", "ntd"])
def test_flatten(shape, tmp_path):
    compare(network(fd.Flatten(), fd.Dense(4)), shape, tmp_path)


def test_embedding(tmp_path):
    net = network(fd.Embedding(30, 6))
    compare(net, (9,), tmp_path)
    model = onnx.load(str(tmp_path / "model.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64


def test_embedding_dense(tmp_path):
    compare(network(fd.Embedding(30, 6), fd.Dense(4, fd.Tanh())), (5,), tmp_path)


RECURRENT = {"rnn": fd.RNNLayer, "gru": fd.GRULayer, "lstm": fd.LSTMLayer}


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
@pytest.mark.parametrize("steps", [1, 6], ids=["T1", "T6"])
@pytest.mark.parametrize("sequences", [True, False], ids=["seq", "last"])
@pytest.mark.parametrize("kind", RECURRENT, ids=str)
def test_recurrent(kind, sequences, steps, stateful, tmp_path):
    layer = RECURRENT[kind](8, return_sequences=sequences, stateful=stateful, dropout=0.7)
    compare(network(layer), (steps, 5), tmp_path)


@pytest.mark.parametrize("kind", RECURRENT, ids=str)
def test_recurrent_stack_after_embedding(kind, tmp_path):
    net = network(
        fd.Embedding(20, 6),
        RECURRENT[kind](7),
        RECURRENT[kind](5, return_sequences=False),
        fd.Dense(3),
    )
    compare(net, (8,), tmp_path)


def test_lstm_gate_order_matters(tmp_path):
    """Swapping fastdl's i/f blocks changes the model: the reordering is really exercised."""
    net = network(fd.LSTMLayer(4))
    compare(net, (3, 2), tmp_path, batches=[1])
    model = onnx.load(str(tmp_path / "model.onnx"))
    w = next(
        onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.name.endswith(".W")
    )
    w_ih = net.params()[0]
    h = 4
    for onnx_gate, fastdl_gate in enumerate([0, 3, 1, 2]):  # i, o, f, c ← i, f, g, o
        np.testing.assert_array_equal(
            w[0, onnx_gate * h : (onnx_gate + 1) * h],
            w_ih[:, fastdl_gate * h : (fastdl_gate + 1) * h].T,
        )


# --- the recipes' models ----------------------------------------------------------------------


def test_reference_cnn(tmp_path):
    net = mnist_cnn.build(seed=3)
    diffs = compare(net, (1, 28, 28), tmp_path)
    assert set(diffs) == {1, 1000}


@pytest.mark.skipif(
    not (hasattr(fd, "Reshape") and hasattr(fd, "Conv2DTranspose")), reason="no autoencoder here"
)
def test_autoencoder(tmp_path):
    from fastdl.recipes import autoencoder

    # Perturbed less than the small grids: 0.3 on every weight of 400-term sums drives the
    # tanh layers deep into saturation, where fastdl's own float32 output differs from its
    # float64 output by 3.7e-5 relative (measured): float32's limit, not the export's.
    compare(autoencoder.build(seed=2), (1, 28, 28), tmp_path, batches=[1, 100], scale=0.05)


def test_char_lstm(tmp_path):
    """The char-LSTM (stateful LSTM(256) with output dropout, Dense(65)) on one-hot input:
    the model starts every run from the zero state, as reset_state() then predict."""
    net, lstm = char_lstm.build_model(65, 256, seed=0, dropout=0.7)
    shape = (16, 65)
    rng = np.random.default_rng(5)
    net.build(shape)
    randomize(net, rng, scale=0.05)
    path = tmp_path / "char.onnx"
    state = (rng.standard_normal((32, 256)).astype(np.float32),) * 2
    lstm.set_state(*state)
    export(net, path, shape)
    assert all(np.array_equal(a, b) for a, b in zip(lstm.state, state, strict=True))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    sess = session(path)
    onehot = np.eye(65, dtype=np.float32)
    for n in BATCHES:
        x = onehot[rng.integers(0, 65, (n, 16))]
        lstm.reset_state()
        want = net.forward(x, inference=True)
        (got,) = sess.run(None, {"input": x})
        assert max_rel_diff(got, want) <= RTOL


# --- the model file ---------------------------------------------------------------------------


def test_model_metadata(tmp_path):
    net = network(fd.Dense(3))
    model = export(net, tmp_path / "m.onnx", (4,))
    assert model.ir_version == IR_VERSION == 8
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)] and OPSET == 17
    (inp,), (out,) = model.graph.input, model.graph.output
    assert inp.name == "input" and out.name == "output"
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["batch", 4]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 3]
    assert model.producer_name == "fastdl"
    assert onnx.load(str(tmp_path / "m.onnx")) == model


def test_exports_the_public_weights(tmp_path):
    """Parameters changed in place after a pass (as an optimizer does) are the ones exported,
    not a copy a kernel kept from that pass."""
    net = network(fd.Conv2D(3, 3, activation=fd.ReLU()), fd.Flatten(), fd.Dense(2))
    x = np.random.default_rng(0).standard_normal((4, 2, 6, 6)).astype(np.float32)
    net.predict(x)
    for p in net.params():
        p *= 2
        p += 0.1
    export(net, tmp_path / "m.onnx", (2, 6, 6))
    (got,) = session(tmp_path / "m.onnx").run(None, {"input": x})
    assert max_rel_diff(got, net.predict(x)) <= RTOL


def test_float64_network_exports_float32(tmp_path):
    net = fd.NeuralNetwork([fd.Dense(4, fd.Tanh())], fd.MeanSquaredError(), seed=0,
                           dtype=np.float64)  # fmt: skip
    export(net, tmp_path / "m.onnx", (3,))
    x = np.random.default_rng(0).standard_normal((5, 3))
    (got,) = session(tmp_path / "m.onnx").run(None, {"input": x.astype(np.float32)})
    assert got.dtype == np.float32 and max_rel_diff(got, net.predict(x)) <= RTOL


def test_unbuilt_network_is_built_as_build_would(tmp_path):
    a, b = mnist_cnn.build(seed=4), mnist_cnn.build(seed=4)
    export(a, tmp_path / "m.onnx", (1, 28, 28))
    b.build((1, 28, 28))
    assert a.input_shape == (1, 28, 28)
    assert all(np.array_equal(p, q) for p, q in zip(a.params(), b.params(), strict=True))


def test_a_refused_shape_leaves_an_unbuilt_network_unbuilt(tmp_path):
    net = mnist_cnn.build(seed=4)
    with pytest.raises(ExportError, match=r"input_shape \(1, 4, 4\).*Conv2D: kernel 3×3"):
        export(net, tmp_path / "m.onnx", (1, 4, 4))
    assert net.input_shape is None and all(layer.first for layer in net.layers)
    assert not (tmp_path / "m.onnx").exists()
    reference = mnist_cnn.build(seed=4).build((1, 28, 28))
    net.build((1, 28, 28))
    assert all(np.array_equal(p, q) for p, q in zip(net.params(), reference.params(), strict=True))


# --- errors ------------------------------------------------------------------------------------


class Swish(fd.Operation):
    def _output(self, inference):
        return self.input_ * (0.5 * np.tanh(0.5 * self.input_) + 0.5)


class MyReLU(fd.ReLU):
    pass


@pytest.mark.parametrize("activation", [Swish(), MyReLU()], ids=["custom", "subclass"])
def test_unknown_operation(activation, tmp_path):
    net = network(fd.Dense(4, fd.ReLU()), fd.Dense(3, activation))
    name = type(activation).__name__
    with pytest.raises(ExportError, match=rf"layers\[1\] \(Dense\): operation {name} has no ONNX"):
        export(net, tmp_path / "m.onnx", (5,))
    assert not (tmp_path / "m.onnx").exists()


class Doubling(fd.Dense):
    def forward(self, x, inference=False):
        return 2 * super().forward(x, inference)


def test_layer_with_its_own_forward(tmp_path):
    net = network(fd.Dense(4), Doubling(3))
    with pytest.raises(ExportError, match=r"layers\[1\] \(Doubling\): the layer has its own"):
        export(net, tmp_path / "m.onnx", (5,))
    assert all(layer.first for layer in net.layers), "refused before the network was built"


@pytest.mark.parametrize(
    "shape, match",
    [
        ((3, 28, 28), r"Conv2D: expected 1 input channels"),
        ((28, 28), r"Conv2D: expected NCHW input"),
        ((1, 2, 2), r"Conv2D: kernel 3×3 is larger"),
        ((1, 30, 30), r"Dense: expected 9216 input features"),
    ],
    ids=["channels", "rank", "too-small", "other-size"],
)
def test_wrong_input_shape(shape, match, tmp_path):
    net = mnist_cnn.build(seed=0).build((1, 28, 28))
    with pytest.raises(ExportError, match=match):
        export(net, tmp_path / "m.onnx", shape)


@pytest.mark.parametrize("shape", [(), (0, 4), (2.0,), "28", (True, 3), None], ids=repr)
def test_bad_input_shape_argument(shape, tmp_path):
    with pytest.raises(ValueError, match="input_shape must be a tuple of positive ints"):
        export(network(fd.Dense(3)), tmp_path / "m.onnx", shape)


def test_not_a_network(tmp_path):
    with pytest.raises(TypeError, match="expected a NeuralNetwork"):
        export(fd.Dense(3), tmp_path / "m.onnx", (4,))


def test_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old model")
    net = network(fd.Dense(3))
    with pytest.raises(ExportError):  # refused before writing
        export(network(fd.Dense(3, Swish())), path, (4,))
    assert path.read_bytes() == b"old model"

    def broken_fsync(fd_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):  # the write itself fails
        export(net, path, (4,))
    assert path.read_bytes() == b"old model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    monkeypatch.undo()
    export(net, path, (4,))
    assert onnx.load(str(path)).graph.output[0].name == "output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_fastdl_imports_without_onnx():
    """``import fastdl`` and ``import fastdl.onnx`` need no onnx; ``export`` says what to
    install."""
    code = (
        "import sys; sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None\n"
        "import fastdl as fd, fastdl.onnx\n"
        "try:\n"
        "    fastdl.onnx.export(fd.NeuralNetwork([fd.Dense(2)], fd.MeanSquaredError()), 'x', (3,))\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    assert "pip install 'fastdl[onnx]'" in out


# --- fastdl train mnist-cnn --export-onnx ------------------------------------------------------


@pytest.mark.skipif(not os.environ.get("FASTDL_DATA"), reason="FASTDL_DATA is not set")
def test_train_mnist_cnn_smoke_exports_onnx(tmp_path, monkeypatch):
    model, saved = tmp_path / "model.onnx", tmp_path / "model.npz"
    out = subprocess.run(
        [sys.executable, "-m", "fastdl", "train", "mnist-cnn", "--smoke", "--threads", "1",
         "--save", str(saved), "--export-onnx", str(model)],
        capture_output=True, text=True, timeout=600, check=True,
    ).stdout  # fmt: skip
    assert f"network exported to {model} (ONNX; input float32 (batch, 1, 28, 28))" in out
    onnx.checker.check_model(onnx.load(str(model)), full_check=True)
    net = fd.load(saved)
    (_, _), (x_test, _) = fd.datasets.load_mnist()
    x = mnist_cnn.prepare(x_test[:1000])
    (got,) = session(model).run(None, {"input": x})
    assert max_rel_diff(got, net.predict(x)) <= RTOL
    (one,) = session(model).run(None, {"input": x[:1]})
    assert max_rel_diff(one, net.predict(x[:1])) <= RTOL
    # README's four lines, serving the model with onnxruntime alone, on uint8 (N, 28, 28)
    monkeypatch.chdir(tmp_path)
    scope = {"images": x_test[:1000]}
    exec(README_SERVING, scope)
    assert np.array_equal(scope["digits"], net.predict(x).argmax(axis=1))


README_SERVING = """\
import numpy as np, onnxruntime as ort
session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
x = ((images / 255 - 0.1307) / 0.3081).astype(np.float32)[:, None]  # uint8 (N, 28, 28)
digits = session.run(None, {"input": x})[0].argmax(axis=1)
"""
