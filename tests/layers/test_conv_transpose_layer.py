"""Conv2DTranspose: float64 gradient checks of the op and the layer over a grid, agreement with
the naive oracle and with PyTorch's ConvTranspose2d, shapes, errors, saving, summaries."""

from __future__ import annotations

import json
import zipfile

import naive_conv as naive
import numpy as np
import pytest

import fastdl as fd
import fastdl.layers.conv_transpose as layer_module
import fastdl.ops.conv_transpose as ops_conv_transpose
from fastdl import config
from fastdl.layers.conv import Conv2D
from fastdl.layers.conv_transpose import Conv2DTranspose
from fastdl.ops.activations import Linear, ReLU, Tanh
from fastdl.ops.conv_transpose import Conv2DTransposeOp
from fastdl.summary import count, label
from fastdl.testing import gradcheck

IMPLS = [True] if config.PURE_AT_IMPORT else [True, False]  # use_pure(flag)
IMPL_IDS = ["numpy"] if config.PURE_AT_IMPORT else ["numpy", "numba"]

# (id, input shape NCHW, out_channels, param_size, stride, padding, output_padding)
GRID = [
    ("batch1-3x3", (1, 2, 3, 3), 3, 3, 1, 0, 0),
    ("1x1-stride2", (2, 3, 3, 4), 2, 1, 2, 0, 1),
    ("even2x2-stride2", (2, 2, 3, 2), 3, 2, 2, 0, 0),
    ("even4x4-stride2-pad1", (2, 2, 3, 3), 2, 4, 2, 1, 0),
    ("nonsquare-4x2-pad", (2, 1, 3, 4), 2, (4, 2), 1, (1, 0), 0),
    ("stride3>kernel2", (2, 2, 2, 3), 2, 2, 3, 0, (2, 1)),
    ("3x3-stride2-pad1-outpad1", (2, 3, 3, 3), 2, 3, 2, 1, 1),
    ("pad>kernel", (1, 2, 5, 4), 2, 3, 2, 3, 0),
    ("cout8-cin5", (2, 5, 3, 3), 8, 3, 2, 1, (1, 0)),
]
IDS = [g[0] for g in GRID]


def make_x(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def make_layer(grid, activation=None):
    _, _, co, k, s, p, op = grid
    return Conv2DTranspose(co, k, stride=s, padding=p, output_padding=op, activation=activation)


def pyt_pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# -- gradients ----------------------------------------------------------------------------------


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("activation", [Linear(), ReLU(), Tanh()], ids=["linear", "relu", "tanh"])
@pytest.mark.parametrize("grid", GRID, ids=IDS)
def test_layer_gradcheck(grid, activation, pure):
    layer = make_layer(grid, activation)
    x = make_x(grid[1])
    with config.use_pure(pure):
        layer.forward(x)
        # a bias that moves outputs away from ReLU's kink, so differences stay one-sided
        layer.operations[0].B[:] = np.random.default_rng(5).standard_normal(grid[2])
        report = gradcheck(layer, x, atol=1e-6, rtol=1e-5)
    assert set(report) == {"input", "param[0]", "param[1]"}  # x, W, B


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("grid", GRID, ids=IDS)
def test_op_gradcheck(grid, pure):
    _, shape, co, k, s, p, op = grid
    kh, kw = pyt_pair(k)
    (ph, pw), opad = pyt_pair(p), pyt_pair(op)
    rng = np.random.default_rng(6)
    w, b = rng.standard_normal((shape[1], co, kh, kw)), rng.standard_normal(co)
    operation = Conv2DTransposeOp(w, b, s, (ph, ph, pw, pw), opad)
    with config.use_pure(pure):
        report = gradcheck(operation, make_x(shape, 7))
    assert set(report) == {"input", "param[0]", "param[1]"}


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
def test_whole_autoencoder_gradcheck(pure, rng):
    """Conv2D (stride 2, down) → Conv2DTranspose (stride 2, up) → MSE on the image itself."""
    net = fd.NeuralNetwork(
        [Conv2D(3, 3, stride=2, padding=1, activation=Tanh()),
         Conv2DTranspose(2, 3, stride=2, padding=1, output_padding=1, activation=Tanh())],
        fd.MeanSquaredError(), seed=0, dtype=np.float64,
    )  # fmt: skip
    x = rng.standard_normal((2, 2, 6, 6))
    with config.use_pure(pure):
        report = gradcheck(net, x, x)
    assert len(report) == 5  # input, and W, B of each layer


# -- against the oracle and PyTorch -------------------------------------------------------------


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("grid", GRID, ids=IDS)
def test_matches_naive_and_keeps_nchw_semantics(grid, pure):
    layer = make_layer(grid)
    x = make_x(grid[1], 1)
    with config.use_pure(pure):
        y = layer.forward(x)
    op = layer.operations[0]
    expected = naive.conv_transpose2d(x, op.W, op.B, op.stride, op.pad, op.output_padding)
    assert y.shape == expected.shape == (len(x), grid[2], *layer.output_size(*x.shape[2:]))
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        np.ascontiguousarray(y).reshape(len(y), -1), expected.reshape(len(y), -1), atol=1e-12
    )


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("grid", GRID, ids=IDS)
def test_output_and_gradients_match_pytorch(grid, pure):
    torch = pytest.importorskip("torch", reason="comparing with PyTorch needs torch installed")
    _, shape, co, k, s, p, op = grid
    layer = make_layer(grid)
    x = make_x(shape, 2)
    rng = np.random.default_rng(3)
    with config.use_pure(pure):
        layer.forward(x)
        layer.operations[0].B[:] = rng.standard_normal(co)
        y = layer.forward(x)
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
    w, b = layer.params()
    dw, db = layer.param_grads()
    ref = torch.nn.ConvTranspose2d(
        shape[1], co, pyt_pair(k), stride=s, padding=pyt_pair(p), output_padding=pyt_pair(op)
    ).double()
    with torch.no_grad():  # fastdl's weights are PyTorch's layout: copied as they are
        ref.weight.copy_(torch.from_numpy(w))
        ref.bias.copy_(torch.from_numpy(b))
    xt = torch.from_numpy(x).requires_grad_()
    yt = ref(xt)
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dw, ref.weight.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(db, ref.bias.grad.numpy(), rtol=0, atol=1e-12)


# -- shapes, memory, options --------------------------------------------------------------------


def test_a_decoder_doubles_the_image_twice():
    """Chapter 7's autoencoder decoder: 7×7 → 14×14 → 28×28 (PyTorch's formula)."""
    x = make_x((3, 32, 7, 7), dtype=np.float32)
    h = Conv2DTranspose(16, 4, stride=2, padding=1, activation=ReLU()).forward(x)
    assert h.shape == (3, 16, 14, 14) and h.dtype == np.float32
    y = Conv2DTranspose(1, 3, stride=2, padding=1, output_padding=1).forward(h)
    assert y.shape == (3, 1, 28, 28) and y.dtype == np.float32
    assert np.all(h >= 0)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_output_size_formula_and_the_convolution_inverts_it(stride, k):
    """``OH = (H - 1)·S - 2P + KH + OP``; a Conv2D with the same kernel, stride and padding
    maps every output padding's size back to H."""
    h = 5
    for p in range(0, k):
        for op in range(stride):
            up = Conv2DTranspose(2, k, stride=stride, padding=p, output_padding=op)
            y = up.forward(make_x((1, 3, h, h + 1), dtype=np.float32))
            assert y.shape[2:] == ((h - 1) * stride - 2 * p + k + op, h * stride - 2 * p + k + op)
            down = Conv2D(3, k, stride=stride, padding=p)
            assert down.forward(y).shape[2:] == (h, h + 1)


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize(
    "view",
    [
        lambda x: x[:, :, ::2, 1::2],
        lambda x: x.transpose(0, 1, 3, 2),
        lambda x: np.asfortranarray(x),
        lambda x: x[::-1],
    ],
    ids=["strided", "transposed", "fortran", "reversed-batch"],
)
def test_non_contiguous_input(view, pure):
    x = view(make_x((3, 2, 8, 8), 2, np.float32))
    layer = Conv2DTranspose(4, 3, stride=2, padding=1, output_padding=1)
    with config.use_pure(pure):
        y = layer.forward(x)
        g = layer.backward(np.ones_like(y))
        y2 = layer.forward(np.ascontiguousarray(x))
        g2 = layer.backward(np.ones_like(y2))
    np.testing.assert_array_equal(y, y2)
    np.testing.assert_array_equal(g, g2)


def test_convolutions_on_either_side_read_channels_last_without_copy():
    x = make_x((2, 3, 6, 6), 3, np.float32)
    down, up, last = (
        Conv2D(4, 3, stride=2, activation=ReLU()),
        Conv2DTranspose(5, 2, 2),
        Conv2D(2, 3),
    )
    h = down.forward(x)
    u = up.forward(h)
    assert np.shares_memory(up.operations[0]._x, h)
    assert u.transpose(0, 2, 3, 1).flags.c_contiguous  # NCHW view of channels-last memory
    last.forward(u)
    assert np.shares_memory(last.operations[0]._x, u)


def test_first_layer_skips_input_gradient_but_computes_weights():
    layer = Conv2DTranspose(2, 3, stride=2)
    layer.set_skip_input_grad(True)
    y = layer.forward(make_x((2, 3, 4, 4)))
    assert layer.backward(np.ones_like(y)) is None
    assert layer.operations[0].input_grad is None
    assert [g.shape for g in layer.param_grads()] == [(3, 2, 3, 3), (2,)]


def test_dropout_is_off_at_inference():
    x = make_x((2, 3, 4, 4), dtype=np.float32)
    layer = Conv2DTranspose(4, 3, dropout=0.5)
    y_train = layer.forward(x)
    y_inf = layer.forward(x, inference=True)
    np.testing.assert_array_equal(y_inf, Conv2DTranspose(4, 3).forward(x))  # seed 0, same W
    assert np.any(y_train == 0) and not np.array_equal(y_train, y_inf)


def test_the_weights_take_the_networks_dtype_and_pytorchs_fans(monkeypatch):
    fans = []
    real = layer_module.init_weights
    monkeypatch.setattr(
        layer_module, "init_weights", lambda rng, shape, fi, fo, *a: fans.append((fi, fo))
        or real(rng, shape, fi, fo, *a)
    )  # fmt: skip
    net = fd.NeuralNetwork([Conv2DTranspose(4, (3, 2), stride=2)], fd.MeanSquaredError(),
                           seed=0, dtype=np.float64)  # fmt: skip
    net.forward(make_x((1, 5, 3, 3), dtype=np.float32))  # cast once at the network boundary
    assert [p.dtype for p in net.params()] == [np.float64, np.float64]
    assert net.params()[0].shape == (5, 4, 3, 2)  # (C_in, C_out, KH, KW)
    assert fans == [(4 * 3 * 2, 5 * 3 * 2)]  # fan_in = C_out·KH·KW, fan_out = C_in·KH·KW


# -- errors, before any arithmetic --------------------------------------------------------------


@pytest.fixture
def no_arithmetic(monkeypatch):
    """Make any call of the forward kernel fail: the errors must come first."""

    def forbidden(*args):
        raise AssertionError("the kernel ran before the input was checked")

    monkeypatch.setattr(ops_conv_transpose, "conv_transpose2d_forward", forbidden)


def escaped(text):
    return text.replace("(", r"\(").replace(")", r"\)")


@pytest.mark.parametrize(
    "make_layer, x_shape, message",
    [
        (lambda: Conv2DTranspose(2, 3), (1, 1, 4), "expected NCHW input"),
        (lambda: Conv2DTranspose(2, 3), (1, 1, 1, 4, 4), "expected NCHW input"),
        (lambda: Conv2DTranspose(2, 3, padding=(2, 0)), (1, 1, 2, 5), "the output would be 0×7"),
        (lambda: Conv2DTranspose(2, 1, padding=(0, 1)), (1, 1, 3, 2), "the output would be 3×0"),
    ],
    ids=["3-D", "5-D", "output-0-rows", "output-0-columns"],
)
def test_clear_errors_name_the_layer_and_the_shape(make_layer, x_shape, message, no_arithmetic):
    with pytest.raises(
        ValueError, match=f"Conv2DTranspose: {escaped(message)}.*{escaped(str(x_shape))}"
    ):
        make_layer().forward(np.zeros(x_shape, dtype=np.float32))


def test_wrong_channel_count_names_both_shapes(monkeypatch):
    layer = Conv2DTranspose(2, 3)
    layer.forward(np.zeros((1, 3, 5, 5), dtype=np.float32))
    monkeypatch.setattr(ops_conv_transpose, "conv_transpose2d_forward", None)
    with pytest.raises(
        ValueError,
        match=r"Conv2DTranspose: expected 3 input channels.*\(1, 2, 5, 5\).*\(3, 2, 3, 3\)",
    ):
        layer.forward(np.zeros((1, 2, 5, 5), dtype=np.float32))


def test_the_op_names_itself_and_the_shapes():
    op = Conv2DTransposeOp(np.zeros((3, 2, 3, 3)), np.zeros(2), 1, (0, 0, 0, 0))
    message = r"Conv2DTransposeOp: expected input \(N, 3, H, W\) for weights \(3, 2, 3, 3\), got "
    with pytest.raises(ValueError, match=message + r"\(1, 2, 4, 4\)"):
        op.forward(np.zeros((1, 2, 4, 4)))


def test_a_wrong_dtype_is_refused():
    layer = Conv2DTranspose(2, 3)
    layer.forward(np.zeros((1, 3, 4, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="Conv2DTranspose: expected dtype float32, got float64"):
        layer.forward(np.zeros((1, 3, 4, 4)))
    with pytest.raises(TypeError, match="Conv2DTranspose: expected floating-point input"):
        Conv2DTranspose(2, 3).forward(np.zeros((1, 3, 4, 4), dtype=np.uint8))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(stride=2, output_padding=2), r"output_padding must be smaller than stride.*got "
                                           r"output_padding 2 with stride 2"),
        (dict(output_padding=1), r"output_padding must be smaller than stride.*stride 1"),
        (dict(stride=3, output_padding=(1, 3)), r"output_padding must be smaller than stride"),
        (dict(padding="same"), r"padding must be an int >= 0.*no 'same'"),
        (dict(padding=-1), r"padding must be an int >= 0"),
        (dict(output_padding=(1, 2, 3)), r"output_padding must be an int >= 0"),
        (dict(stride=0), r"stride must be a positive int"),
        (dict(weight_init="xavier"), r"weight_init must be one of"),
    ],
    ids=["outpad=stride", "outpad-stride1", "outpad-pair", "same", "negative-pad",
         "outpad-triple", "stride0", "init"],
)  # fmt: skip
def test_bad_arguments_are_refused_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=f"Conv2DTranspose: {message}"):
        Conv2DTranspose(2, 3, **kwargs)


def test_bad_out_channels_and_kernel_are_refused():
    with pytest.raises(ValueError, match="Conv2DTranspose: out_channels must be a positive int"):
        Conv2DTranspose(0, 3)
    with pytest.raises(ValueError, match="Conv2DTranspose: param_size must be an int >= 1"):
        Conv2DTranspose(2, (3, 0))


# -- the public API, saving, summaries -----------------------------------------------------------


def autoencoder(dtype=np.float32, seed=0):
    return fd.NeuralNetwork(
        [fd.Conv2D(4, 3, stride=2, padding=1, activation=fd.ReLU()),
         fd.Conv2DTranspose(3, (3, 2), stride=2, padding=(1, 0), output_padding=(1, 0),
                            activation=fd.LeakyReLU(0.1), dropout=0.8),
         fd.Conv2DTranspose(1, 1, activation=fd.Sigmoid(), weight_init="he")],
        fd.MeanSquaredError(), seed=seed, dtype=dtype,
    )  # fmt: skip


def test_it_is_public_api():
    assert "Conv2DTranspose" in fd.__all__ and fd.Conv2DTranspose is Conv2DTranspose
    assert fd.layers.Conv2DTranspose is Conv2DTranspose
    assert fd.saving.LAYERS["Conv2DTranspose"] is Conv2DTranspose
    assert repr(Conv2DTranspose(8, 4, stride=2, padding=1, activation=fd.ReLU())) == (
        "Conv2DTranspose(out_channels=8, param_size=(4, 4), stride=2, padding=1, activation=ReLU())"
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_save_and_load_round_trip_bitwise(dtype, rng, tmp_path):
    net = autoencoder(dtype)
    optim = fd.Adam(0.01)
    fd.Trainer(net, optim)
    x = rng.random((4, 1, 8, 6)).astype(dtype)
    for _ in range(3):
        net.train_batch(x, x)
        optim.step()
    path = tmp_path / "ae.npz"
    net.save(path, optimizer=optim)
    back, back_optim = fd.load_with_optimizer(path)
    assert repr(back) == repr(net)
    assert all(
        a.dtype == b.dtype and np.array_equal(a, b)
        for a, b in zip(back.params(), net.params(), strict=True)
    )
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
    fd.Trainer(back, back_optim)
    assert back.train_batch(x, x) == net.train_batch(x, x)  # dropout draws continue alike
    with zipfile.ZipFile(path) as z:
        header = json.loads(np.load(z.open("__header__.npy")).tobytes())
    config_1 = header["layers"][1]
    assert config_1["name"] == "Conv2DTranspose"
    assert config_1["config"]["padding"] == config_1["config"]["output_padding"] == [1, 0]
    assert header["layers"][2]["config"]["padding"] == 0


def test_a_network_saved_on_the_numba_path_predicts_alike_under_fastdl_pure(rng, tmp_path):
    net = autoencoder(np.float64)
    x = rng.random((3, 1, 8, 6))
    want = net.predict(x)
    net.save(tmp_path / "ae.npz")
    with config.use_pure():
        got = fd.load(tmp_path / "ae.npz").predict(x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_summary_counts_the_products(capsys):
    net = autoencoder()
    text = net.summary((1, 8, 6))
    assert "Conv2DTranspose(3, 3×2, stride=2, padding=1×0, output_padding=1×0, LeakyReLU, " in text
    counted = count(net, (1, 8, 6))
    # layer 1: input 4 × 4×3 → 3 channels, 3×2 kernel: 2 · H·W·C_in · C_out·KH·KW, and the
    # backward twice that (dW and dx: it is not the first layer)
    forward = 2 * 4 * 3 * 4 * 3 * 3 * 2
    assert counted.layers[1].output_shape == (3, 8, 6)
    assert counted.layers[1].forward_flops == forward
    assert counted.layers[1].backward_flops == 2 * forward
    assert counted.layers[1].params == 4 * 3 * 3 * 2 + 3


def test_flops_are_its_multiply_adds_counted_with_ones():
    """With ones for input and weights and no padding (nothing cropped), the output sums to
    the number of multiply-adds; as the first layer its backward is dW alone."""
    net = fd.NeuralNetwork([Conv2DTranspose(3, (2, 3), stride=2)], fd.MeanSquaredError(),
                           dtype=np.float64)  # fmt: skip
    counted = count(net, (2, 4, 5))
    net.layers[0].operations[0].W[...] = 1
    out = net.forward(np.ones((1, 2, 4, 5)))
    assert counted.layers[0].forward_flops == 2 * out.sum()
    assert counted.layers[0].backward_flops == counted.layers[0].forward_flops
    assert label(net.layers[0]) == "Conv2DTranspose(3, 2×3, stride=2)"
