"""BatchNorm1D and BatchNorm2D: float64 gradient checks (op, layer, a conv + BN network),
PyTorch's BatchNorm1d/BatchNorm2d over several training steps then evaluation, running
statistics as buffers (never trained, used at inference, saved), memory layouts, errors."""

from __future__ import annotations

import naive_batchnorm as naive
import numpy as np
import pytest

import fastdl as fd
import fastdl.ops.batchnorm as ops_batchnorm
from fastdl import config
from fastdl.layers.batchnorm import BatchNorm1D, BatchNorm2D
from fastdl.ops.batchnorm import BatchNormOp
from fastdl.summary import count, label
from fastdl.testing import gradcheck

IMPLS = [True] if config.PURE_AT_IMPORT else [True, False]  # use_pure(flag)
IMPL_IDS = ["numpy"] if config.PURE_AT_IMPORT else ["numpy", "numba"]
ACTIVATIONS = {"identity": fd.Identity, "relu": fd.ReLU, "tanh": fd.Tanh}


def make_x(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def channels_last(x):
    """The NCHW array ``x`` stored channels-last, as Conv2D outputs it."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


def randomize(layer, seed=9):
    """γ and β away from ones and zeros (so their gradients, and the ReLU's kink, count)."""
    rng = np.random.default_rng(seed)
    gamma, beta = layer.params()
    gamma[...] = 1 + 0.5 * rng.standard_normal(gamma.shape)
    beta[...] = 0.5 * rng.standard_normal(beta.shape)


# -- gradients ----------------------------------------------------------------------------------

# (id, layer class, input shape, how the input is laid out)
LAYER_GRID = [
    ("2d-rows", BatchNorm2D, (3, 4, 3, 2), channels_last),
    ("2d-planes", BatchNorm2D, (3, 4, 3, 2), np.ascontiguousarray),
    ("2d-batch2-1x1", BatchNorm2D, (2, 3, 1, 1), np.ascontiguousarray),
    ("2d-batch1-2x3", BatchNorm2D, (1, 2, 2, 3), channels_last),
    ("1d-batch2", BatchNorm1D, (2, 5), np.ascontiguousarray),
    ("1d-6x3", BatchNorm1D, (6, 3), np.ascontiguousarray),
    ("1d-sequences", BatchNorm1D, (2, 4, 3), np.ascontiguousarray),
    ("1d-sequence-batch1", BatchNorm1D, (1, 3, 2), np.ascontiguousarray),
]
LAYER_IDS = [g[0] for g in LAYER_GRID]


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("act", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("grid", LAYER_GRID, ids=LAYER_IDS)
def test_layer_gradcheck_in_training(grid, act, pure):
    _, cls, shape, layout = grid
    layer = cls(activation=ACTIVATIONS[act]())
    x = layout(make_x(shape, 1))
    with config.use_pure(pure):
        layer.forward(x)
        randomize(layer)
        report = gradcheck(layer, x)
    assert set(report) == {"input", "param[0]", "param[1]"}  # x, γ, β


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("grid", LAYER_GRID, ids=LAYER_IDS)
def test_layer_gradcheck_in_inference(grid, pure):
    """After training steps the running statistics are constants of the inference pass."""
    _, cls, shape, layout = grid
    layer = cls(activation=fd.Tanh())
    x = layout(make_x(shape, 2))
    with config.use_pure(pure):
        for seed in range(3):
            layer.forward(make_x(shape, 10 + seed) * 2 + 1)
        randomize(layer)
        before = [b.copy() for b in layer.buffers()]
        gradcheck(layer, x, inference=True)
    assert all(np.array_equal(a, b) for a, b in zip(before, layer.buffers(), strict=True))


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("relu", [False, True], ids=["plain", "relu"])
@pytest.mark.parametrize("inference", [False, True], ids=["training", "inference"])
@pytest.mark.parametrize(
    "shape, axis, layout",
    [((2, 3, 2, 2), 1, channels_last), ((2, 3, 2, 2), 1, np.ascontiguousarray),
     ((4, 3), -1, np.ascontiguousarray), ((2, 3, 4), -1, np.ascontiguousarray)],
    ids=["2d-rows", "2d-planes", "1d", "1d-sequences"],
)  # fmt: skip
def test_op_gradcheck(shape, axis, layout, inference, relu, pure):
    rng = np.random.default_rng(3)
    c = shape[axis]
    op = BatchNormOp(1 + 0.5 * rng.standard_normal(c), rng.standard_normal(c),
                     rng.standard_normal(c), 0.5 + rng.random(c), np.zeros((), np.int64),
                     channel_axis=axis, relu=relu)  # fmt: skip
    with config.use_pure(pure):
        report = gradcheck(op, layout(make_x(shape, 4)), inference=inference)
    assert set(report) == {"input", "param[0]", "param[1]"}


def conv_bn_net(dtype=np.float64, seed=0):
    return fd.NeuralNetwork(
        [fd.Conv2D(3, 3, padding=1), BatchNorm2D(activation=fd.ReLU()), fd.MaxPool2D(2),
         BatchNorm2D(momentum=None), fd.Flatten(), fd.Dense(4), BatchNorm1D(activation=fd.Tanh()),
         fd.Dense(3)],
        fd.SoftmaxCrossEntropy(), seed=seed, dtype=dtype,
    )  # fmt: skip


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
def test_conv_bn_network_gradcheck(pure, rng):
    """Conv2D → BN2D (channels-last, ReLU) → pool → BN2D (NCHW planes) → Dense → BN1D."""
    net = conv_bn_net()
    x = rng.standard_normal((3, 2, 4, 4))
    y = np.array([0, 2, 1])
    with config.use_pure(pure):
        net.forward(x)
        for layer in (net.layers[1], net.layers[3], net.layers[6]):
            randomize(layer)
        report = gradcheck(net, x, y)
    assert len(report) == 1 + 2 + 2 + 2 + 2 + 2 + 2  # input; conv, 3 BNs, 2 dense


# -- against the oracle and PyTorch -------------------------------------------------------------


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("grid", LAYER_GRID, ids=LAYER_IDS)
def test_matches_naive_in_training_and_inference(grid, pure):
    _, cls, shape, layout = grid
    layer = cls()
    x = layout(make_x(shape, 5))
    axis = 1 if cls is BatchNorm2D else -1
    with config.use_pure(pure):
        y = layer.forward(x)
        randomize(layer)
        y = layer.forward(x)
        y_inf = layer.forward(x, inference=True)
    gamma, beta = layer.params()
    want, mean, var = naive.forward(x, gamma, beta, 1e-5, axis)
    np.testing.assert_allclose(y, want, rtol=0, atol=1e-12)
    m = x.size // x.shape[axis]
    # two updates from 0 and 1: r = 0.9 · (0.9 · r0 + 0.1 · s) + 0.1 · s
    np.testing.assert_allclose(layer.running_mean, 0.19 * mean, rtol=0, atol=1e-14)
    np.testing.assert_allclose(layer.running_var, 0.81 + 0.19 * var * m / (m - 1), rtol=1e-14)
    want_inf, _, _ = naive.forward(x, gamma, beta, 1e-5, axis, False, layer.running_mean,
                                   layer.running_var)  # fmt: skip
    np.testing.assert_allclose(y_inf, want_inf, rtol=0, atol=1e-12)


def torch_bn(torch, cls, c, momentum, eps):
    module = {BatchNorm2D: torch.nn.BatchNorm2d, BatchNorm1D: torch.nn.BatchNorm1d}[cls]
    return module(c, eps=eps, momentum=momentum).double()


TORCH_GRID = [
    ("2d-rows-relu", BatchNorm2D, (4, 3, 5, 4), channels_last, fd.ReLU, 0.1, 1e-5),
    ("2d-planes", BatchNorm2D, (4, 3, 5, 4), np.ascontiguousarray, fd.Identity, 0.1, 1e-5),
    ("2d-batch1", BatchNorm2D, (1, 2, 3, 3), channels_last, fd.Identity, 0.1, 1e-5),
    ("2d-1x1-momentum0.3-eps1e-3", BatchNorm2D, (5, 3, 1, 1), np.ascontiguousarray, fd.Identity,
     0.3, 1e-3),
    ("2d-cumulative", BatchNorm2D, (3, 2, 4, 4), channels_last, fd.ReLU, None, 1e-5),
    ("1d", BatchNorm1D, (6, 4), np.ascontiguousarray, fd.Identity, 0.1, 1e-5),
    ("1d-batch2-relu", BatchNorm1D, (2, 4), np.ascontiguousarray, fd.ReLU, 0.1, 1e-5),
    ("1d-cumulative", BatchNorm1D, (5, 3), np.ascontiguousarray, fd.Identity, None, 1e-5),
    ("1d-sequences", BatchNorm1D, (3, 5, 4), np.ascontiguousarray, fd.Identity, 0.1, 1e-5),
]  # fmt: skip


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize("grid", TORCH_GRID, ids=[g[0] for g in TORCH_GRID])
def test_training_steps_then_evaluation_match_pytorch(grid, pure):
    """Five training batches (outputs, input and parameter gradients, running statistics
    after each: the biased variance normalises, the unbiased one moves the running
    estimate), then evaluation on a new batch, all in float64 to ~1e-12."""
    torch = pytest.importorskip("torch", reason="comparing with PyTorch needs torch installed")
    _, cls, shape, layout, act, momentum, eps = grid
    sequences = len(shape) == 3
    c = shape[-1] if cls is BatchNorm1D else shape[1]
    layer = cls(momentum=momentum, eps=eps, activation=act())
    ref = torch_bn(torch, cls, c, momentum, eps)
    relu = act is fd.ReLU

    def run_torch(x, train):
        ref.train(train)
        xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_()
        y = ref(xt.transpose(1, 2)).transpose(1, 2) if sequences else ref(xt)
        return xt, (torch.relu(y) if relu else y)

    rng = np.random.default_rng(6)
    with config.use_pure(pure):
        layer.forward(layout(np.zeros(shape)), inference=True)  # set up; no statistics moved
        randomize(layer)
        with torch.no_grad():  # the same γ and β on both sides
            ref.weight.copy_(torch.from_numpy(layer.params()[0]))
            ref.bias.copy_(torch.from_numpy(layer.params()[1]))
        for step in range(5):
            x = layout(rng.standard_normal(shape) * (1 + step) + step)
            dy = rng.standard_normal(shape)
            y = layer.forward(x)
            dx = layer.backward(dy)
            ref.zero_grad()
            xt, yt = run_torch(x, True)
            yt.backward(torch.from_numpy(dy))
            np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-12)
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=1e-11)
            for g, p in zip(layer.param_grads(), (ref.weight, ref.bias), strict=True):
                np.testing.assert_allclose(g, p.grad.numpy(), rtol=0, atol=1e-11)
            np.testing.assert_allclose(layer.running_mean, ref.running_mean.numpy(), rtol=0,
                                       atol=1e-13 * (1 + step))  # fmt: skip
            np.testing.assert_allclose(layer.running_var, ref.running_var.numpy(), rtol=1e-13)
            assert layer.num_batches_tracked == int(ref.num_batches_tracked) == step + 1
        x = layout(rng.standard_normal(shape) * 2 + 1)
        y = layer.forward(x, inference=True)
    _, yt = run_torch(x, False)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-12)
    assert layer.num_batches_tracked == 5  # inference moved nothing


# -- batch statistics need more than one value ---------------------------------------------------


@pytest.fixture
def no_arithmetic(monkeypatch):
    def forbidden(*args):
        raise AssertionError("the kernel ran before the input was checked")

    monkeypatch.setattr(ops_batchnorm, "batchnorm_forward", forbidden)


@pytest.mark.parametrize(
    "cls, shape, what",
    [(BatchNorm1D, (1, 4), "a batch of 1"), (BatchNorm1D, (1, 1, 3), "a batch of 1"),
     (BatchNorm2D, (1, 3, 1, 1), "N·H·W = 1")],
    ids=["1d", "1d-one-step", "2d-1x1"],
)  # fmt: skip
def test_training_on_one_value_per_channel_is_refused_as_pytorch_does(cls, shape, what,
                                                                      no_arithmetic):  # fmt: skip
    layer = cls()
    message = (
        rf"{cls.__name__}: expected more than 1 value per channel when training \(as "
        rf"PyTorch's BatchNorm\), got input shape {escaped(str(shape))} \({what}\)"
    )
    with pytest.raises(ValueError, match=message):
        layer.forward(np.ones(shape))
    assert layer.first and layer.num_batches_tracked is None  # nothing set up, nothing moved


def escaped(text):
    return text.replace("(", r"\(").replace(")", r"\)")


def test_one_value_per_channel_is_fine_at_inference_and_for_the_op_refused_too():
    layer = BatchNorm2D()
    y = layer.forward(np.full((1, 3, 1, 1), 2.0), inference=True)  # (2 − 0) / √(1 + ε)
    np.testing.assert_allclose(y, 2 / np.sqrt(1 + 1e-5))
    assert layer.num_batches_tracked == 0
    op = layer.operations[0]
    with pytest.raises(ValueError, match=r"BatchNormOp: expected more than 1 value per channel"):
        op.forward(np.ones((1, 3, 1, 1)))


def test_a_network_trains_on_a_batch_of_two_and_predicts_one_example():
    net = fd.NeuralNetwork([fd.Dense(4), BatchNorm1D(activation=fd.ReLU()), fd.Dense(2)],
                           fd.SoftmaxCrossEntropy(), seed=0)  # fmt: skip
    x = make_x((2, 3), dtype=np.float32)
    net.train_batch(x, np.array([0, 1]))
    assert net.predict(x[:1]).shape == (1, 2)
    with pytest.raises(ValueError, match="BatchNorm1D: expected more than 1 value per channel"):
        net.train_batch(x[:1], np.array([0]))


# -- running statistics: buffers, not parameters ------------------------------------------------


def test_running_statistics_are_buffers_the_optimizer_never_sees(rng):
    net = conv_bn_net(np.float32)
    optim = fd.SGDMomentum(0.5, momentum=0.9)
    fd.Trainer(net, optim)
    x = rng.standard_normal((6, 2, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    net.train_batch(x, y)
    bn = net.layers[1]
    assert [p.shape for p in bn.params()] == [(3,), (3,)]
    assert [b.shape for b in bn.buffers()] == [(3,), (3,), ()]
    assert not any(np.shares_memory(b, p) for b in net.buffers() for p in net.params())
    before = [b.copy() for b in net.buffers()]
    optim.step()
    assert all(np.array_equal(a, b) for a, b in zip(before, net.buffers(), strict=True))
    assert len(net.buffers()) == 9 and bn.num_batches_tracked == 1


def test_inference_uses_and_keeps_the_running_statistics(rng):
    net = conv_bn_net(np.float32)
    x = rng.standard_normal((8, 2, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    optim = fd.SGD(0.1)
    trainer = fd.Trainer(net, optim)
    for _ in range(3):
        net.train_batch(x, y)
        optim.step()
    before = [b.copy() for b in net.buffers()]
    one = net.predict(x[:1])
    whole = net.predict(x, batch_size=3)
    np.testing.assert_allclose(whole[:1], one, rtol=1e-6)  # no batch statistics: per example
    trainer.evaluate(x, y)
    assert all(np.array_equal(a, b) for a, b in zip(before, net.buffers(), strict=True))
    assert not np.allclose(net.forward(x)[:1], one)  # a training pass normalises by the batch


def test_fit_evaluates_and_ends_in_inference_mode(rng):
    """fit's evaluations normalise with the running statistics (the history's val loss is
    evaluate's), and only its training batches move them."""
    net = conv_bn_net(np.float32)
    x = rng.standard_normal((40, 2, 4, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    trainer = fd.Trainer(net, fd.SGD(0.05))
    history = trainer.fit(x, y, x[:10], y[:10], epochs=2, batch_size=8, verbose=0, seed=0,
                          early_stopping=False)  # fmt: skip
    assert net.layers[1].num_batches_tracked == 10  # 2 epochs of 5 batches
    assert history.val_loss[-1] == pytest.approx(trainer.evaluate(x[:10], y[:10])["loss"])


def test_get_and_set_weights_carry_the_buffers(rng):
    net = conv_bn_net(np.float32)
    net.train_batch(rng.standard_normal((4, 2, 4, 4)).astype(np.float32), np.arange(4) % 3)
    weights = net.get_weights()
    assert len(weights) == len(net.params()) + len(net.buffers())
    other = conv_bn_net(np.float32, seed=1).build((2, 4, 4))
    other.set_weights(weights)
    assert all(np.array_equal(a, b) for a, b in zip(other.get_weights(), weights, strict=True))
    params_only = conv_bn_net(np.float32, seed=1).build((2, 4, 4))
    params_only.set_weights(weights[: len(net.params())])  # buffers left as they are
    assert params_only.layers[1].num_batches_tracked == 0
    with pytest.raises(ValueError, match=r"expected 12 arrays \(or 21 with the buffers\), got 3"):
        other.set_weights(weights[:3])


def test_a_refused_batch_leaves_the_running_statistics(rng):
    net = conv_bn_net(np.float32)
    x = rng.standard_normal((4, 2, 4, 4)).astype(np.float32)
    net.train_batch(x, np.array([0, 1, 2, 0]))
    before = [b.copy() for b in net.buffers()]
    with pytest.raises(ValueError):
        net.train_batch(x, np.array([0, 1, 2, 7]))  # a label out of range
    assert all(np.array_equal(a, b) for a, b in zip(before, net.buffers(), strict=True))


def test_gradcheck_leaves_the_running_statistics(rng):
    net = conv_bn_net()
    x = rng.standard_normal((2, 2, 4, 4))
    net.train_batch(x, np.array([0, 1]))
    before = [b.copy() for b in net.buffers()]
    gradcheck(net, x, np.array([0, 1]))
    assert all(np.array_equal(a, b) for a, b in zip(before, net.buffers(), strict=True))


# -- memory layouts ----------------------------------------------------------------------------


def test_a_convolutions_channels_last_output_goes_through_without_copies():
    x = make_x((2, 3, 6, 6), 3, np.float32)
    conv, bn, after = Conv2D_(4), BatchNorm2D(activation=fd.ReLU()), Conv2D_(2)
    h = conv.forward(x)
    u = bn.forward(h)
    assert np.shares_memory(bn.operations[0]._x, h)  # read in place
    assert u.transpose(0, 2, 3, 1).flags.c_contiguous  # written channels-last
    after.forward(u)
    assert np.shares_memory(after.operations[0]._x, u)  # the next convolution takes it as is
    g = bn.backward(after.backward(np.ones((2, 2, 6, 6), np.float32)))
    assert g.transpose(0, 2, 3, 1).flags.c_contiguous


def Conv2D_(c):
    return fd.Conv2D(c, 3)


def test_nchw_input_stays_nchw():
    x = make_x((2, 3, 4, 5), 4, np.float32)
    bn = BatchNorm2D()
    y = bn.forward(x)
    assert y.flags.c_contiguous and np.shares_memory(bn.operations[0]._x, x)
    assert bn.operations[0]._layout == "planes"


@pytest.mark.parametrize("pure", IMPLS, ids=IMPL_IDS)
@pytest.mark.parametrize(
    "view",
    [lambda x: x[:, :, ::2, 1::2], lambda x: x.transpose(0, 1, 3, 2), np.asfortranarray,
     lambda x: x[::-1]],
    ids=["strided", "transposed", "fortran", "reversed-batch"],
)  # fmt: skip
def test_non_contiguous_input(view, pure):
    x = view(make_x((3, 2, 8, 8), 2, np.float32))
    with config.use_pure(pure):
        results = []
        for given in (x, np.ascontiguousarray(x), channels_last(np.ascontiguousarray(x))):
            layer = BatchNorm2D(activation=fd.ReLU())
            y = layer.forward(given)
            dy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
            results.append((y, layer.backward(dy), *layer.param_grads()))
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            np.testing.assert_allclose(a, b, rtol=0, atol=2e-6)


def test_sequence_statistics_are_over_batch_and_time():
    x = make_x((3, 4, 2))
    y = BatchNorm1D().forward(x)
    flat = x.reshape(12, 2)
    want = (flat - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5)
    np.testing.assert_allclose(y.reshape(12, 2), want, atol=1e-12)


# -- errors, construction ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_layer, shape, message",
    [(BatchNorm2D, (2, 3, 4), r"BatchNorm2D: expected input \(N, C, H, W\), got shape \(2, 3, 4\)"),
     (BatchNorm1D, (2, 3, 4, 5), r"BatchNorm1D: expected input \(N, D\) or \(N, T, D\), got "
                                 r"shape \(2, 3, 4, 5\)")],
    ids=["2d-given-3d", "1d-given-4d"],
)  # fmt: skip
def test_wrong_shapes_name_the_layer(make_layer, shape, message, no_arithmetic):
    with pytest.raises(ValueError, match=message):
        make_layer().forward(np.zeros(shape))


def test_channel_count_and_kind_of_input_are_fixed_at_setup():
    bn = BatchNorm2D()
    bn.forward(make_x((2, 3, 2, 2)))
    with pytest.raises(ValueError, match=r"BatchNorm2D: expected 3 channels \(axis 1\), got shape"):
        bn.forward(make_x((2, 4, 2, 2)))
    seq = BatchNorm1D()
    seq.forward(make_x((2, 3)))
    with pytest.raises(ValueError, match=r"BatchNorm1D: set up for 2-D input, got shape"):
        seq.forward(make_x((2, 5, 3)))
    with pytest.raises(ValueError, match=r"BatchNorm1D: expected 3 channels \(the last axis\)"):
        seq.forward(make_x((2, 4)))
    with pytest.raises(TypeError, match="BatchNorm1D: expected dtype float64, got float32"):
        seq.forward(make_x((2, 3), dtype=np.float32))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [(dict(momentum=1.5), ValueError, r"momentum must be in \[0, 1\] \(or None\), got 1.5"),
     (dict(momentum=True), TypeError, "momentum must be a number"),
     (dict(eps=0), ValueError, "eps must be a positive number, got 0"),
     (dict(eps="1e-5"), TypeError, "eps must be a positive number"),
     (dict(activation=fd.ReLU), TypeError, "pass an activation instance"),
     (dict(momentum=fd.ReLU()), TypeError,
      r"momentum .* got the activation ReLU\(\); pass it by name: BatchNorm.D\(activation=ReLU")],
    ids=["momentum>1", "momentum-bool", "eps0", "eps-str", "activation-class",
         "activation-as-momentum"],
)  # fmt: skip
def test_bad_arguments_are_refused_at_construction(kwargs, error, message):
    for cls in (BatchNorm1D, BatchNorm2D):
        with pytest.raises(error, match=f"{cls.__name__}: {message}"):
            cls(**kwargs)


# -- public API, saving, summaries ---------------------------------------------------------------


def test_it_is_public_api():
    assert {"BatchNorm1D", "BatchNorm2D"} <= set(fd.__all__)
    assert fd.BatchNorm2D is BatchNorm2D and fd.layers.BatchNorm1D is BatchNorm1D
    assert fd.saving.LAYERS["BatchNorm2D"] is BatchNorm2D
    assert fd.saving.LAYERS["BatchNorm1D"] is BatchNorm1D
    assert repr(BatchNorm2D()) == "BatchNorm2D()"
    assert repr(BatchNorm1D(momentum=None, eps=1e-3, activation=fd.ReLU())) == (
        "BatchNorm1D(momentum=None, eps=0.001, activation=ReLU())"
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_save_and_load_round_trip_keeps_the_running_statistics(dtype, rng, tmp_path):
    net = conv_bn_net(dtype)
    optim = fd.Adam(0.01)
    fd.Trainer(net, optim)
    x = rng.standard_normal((6, 2, 4, 4)).astype(dtype)
    y = rng.integers(0, 3, 6)
    for _ in range(3):
        net.train_batch(x, y)
        optim.step()
    path = tmp_path / "bn.npz"
    net.save(path, optimizer=optim)
    back, back_optim = fd.load_with_optimizer(path)
    assert repr(back) == repr(net)
    assert len(back.buffers()) == 9
    for a, b in zip(back.get_weights(), net.get_weights(), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert back.layers[3].num_batches_tracked == 3 and back.layers[3].momentum is None
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
    fd.Trainer(back, back_optim)
    assert back.train_batch(x, y) == net.train_batch(x, y)
    for a, b in zip(back.buffers(), net.buffers(), strict=True):
        assert np.array_equal(a, b)


def test_a_file_whose_buffers_do_not_fit_is_refused(rng, tmp_path):
    net = conv_bn_net(np.float32).build((2, 4, 4))
    path = tmp_path / "bn.npz"
    net.save(path)
    header, arrays = fd.saving.read_archive(path)
    arrays["layers.1.buffers.0"] = np.zeros(5, np.float32)
    with fd.saving.atomic_write(path) as f:
        fd.saving.write_archive(f, header, arrays)
    with pytest.raises(fd.ModelFileError, match=r"layer 1 \(BatchNorm2D\) buffer 0 is float32 "
                                                r"\(3,\), the file's layers.1.buffers.0 is "
                                                r"float32 \(5,\)"):  # fmt: skip
        fd.load(path)


def test_summary_shows_the_layers_and_their_buffers(capsys):
    net = conv_bn_net(np.float32)
    text = net.summary((2, 4, 4))
    assert "BatchNorm2D(ReLU)" in text and "BatchNorm2D(momentum=None)" in text
    assert "BatchNorm1D(Tanh)" in text
    counted = count(net, (2, 4, 4))
    bn = counted.layers[1]
    assert (bn.params, bn.forward_flops, bn.backward_flops, bn.buffers) == (6, 0, 0, 6)
    assert counted.buffers == 6 + 6 + 8
    assert "buffers: 20 numbers, not trained (batch norm's running statistics; 80 bytes)" in text
    assert label(BatchNorm1D(eps=1e-3)) == "BatchNorm1D(eps=0.001)"
    plain = fd.NeuralNetwork([fd.Dense(2)], fd.MeanSquaredError()).summary((3,))
    assert "buffers" not in plain


def test_fit_refuses_a_last_batch_of_one_row_before_training(rng):
    net = fd.NeuralNetwork([fd.Dense(4), fd.BatchNorm1D(activation=fd.ReLU()), fd.Dense(2)],
                           fd.SoftmaxCrossEntropy(), seed=0)  # fmt: skip
    x = rng.standard_normal((9, 3)).astype(np.float32)
    y = rng.integers(0, 2, 9)
    with pytest.raises(
        ValueError,
        match="BatchNorm1D cannot train on a batch of one row, and "
        "9 training rows in batches of 4 leave a last batch of one row",
    ):
        fd.Trainer(net, fd.SGD(0.1)).fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert net.layers[0].first  # nothing was set up, nothing trained
    fd.Trainer(net, fd.SGD(0.1)).fit(x, y, epochs=1, batch_size=3, verbose=0)  # 3 + 3 + 3


def test_a_batch_refused_by_a_later_layer_leaves_the_running_statistics(rng):
    net = fd.NeuralNetwork(
        [fd.Conv2D(3, 3), fd.BatchNorm2D(activation=fd.ReLU()), fd.Flatten(), fd.Dense(4),
         fd.BatchNorm1D(), fd.Dense(2)],
        fd.SoftmaxCrossEntropy(), seed=0,
    )  # fmt: skip
    x = rng.standard_normal((4, 1, 5, 5)).astype(np.float32)
    y = rng.integers(0, 2, 4)
    net.train_batch(x, y)
    before = [b.copy() for b in net.buffers()]
    rng_state = net.rng.bit_generator.state
    with pytest.raises(ValueError, match="BatchNorm1D: expected more than 1 value per channel"):
        net.train_batch(x[:1], y[:1])  # BatchNorm2D takes it (25 values), BatchNorm1D refuses
    for a, b in zip(before, net.buffers(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert net.rng.bit_generator.state == rng_state


def test_gradcheck_of_a_new_layer_or_network_leaves_the_running_statistics(rng):
    from fastdl.testing import gradcheck

    layer = BatchNorm1D()
    gradcheck(layer, rng.standard_normal((5, 3)))
    assert layer.num_batches_tracked == 0
    np.testing.assert_array_equal(layer.running_mean, np.zeros(3))
    net = fd.NeuralNetwork([fd.Dense(4), BatchNorm1D(), fd.Dense(2)], fd.MeanSquaredError(),
                           seed=0, dtype=np.float64)  # fmt: skip
    gradcheck(net, rng.standard_normal((5, 3)), rng.standard_normal((5, 2)))
    assert net.layers[1].num_batches_tracked == 0
