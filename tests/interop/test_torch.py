"""fastdl ⇄ PyTorch: outputs and gradients of every convertible layer, the reference CNN and
the char-LSTM model, in both directions; a training step taken in torch; state dicts of a
torch module of one's own; and every refusal."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed: pip install torch==2.13.0, then '.[torch]'"
)
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import fastdl as fd  # noqa: E402
from fastdl import torch_layout  # noqa: E402
from fastdl.interop import torch as ft  # noqa: E402
from fastdl.recipes import char_lstm, mnist_cnn  # noqa: E402

torch.set_num_threads(1)

Conv2DTranspose = torch_layout.optional_layer("conv_transpose", "Conv2DTranspose")
Reshape = torch_layout.optional_layer("reshape", "Reshape")
needs_transpose = pytest.mark.skipif(Conv2DTranspose is None, reason="no fd.Conv2DTranspose yet")
needs_reshape = pytest.mark.skipif(Reshape is None, reason="no fd.Reshape yet")

# float32: outputs to 1e-5 and gradients to 1e-4, relative to the largest magnitude.
TOL = {np.float32: (1e-5, 1e-4), np.float64: (1e-12, 1e-10)}


def rel(a, b) -> float:
    """``max |a − b| / max |b|``: the error relative to the reference's magnitude."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)) if a.size else 0.0


def net_of(layers, dtype=np.float32, loss=None, seed=0):
    return fd.NeuralNetwork(layers, loss or fd.MeanSquaredError(), seed=seed, dtype=dtype)


def inputs(shape, dtype, seed=1, vocab=None):
    rng = np.random.default_rng(seed)
    if vocab is not None:
        return rng.integers(0, vocab, shape)
    return rng.standard_normal(shape).astype(dtype)


# -- one pass on each side -------------------------------------------------------------------------


def fastdl_pass(net, x, dy, train):
    """Output, input gradient and the parameter gradients in torch's names (see
    :func:`torch_grads`), after one forward and one backward pass."""
    first = net.layers[0]
    if first.float_input:
        first.set_skip_input_grad(False)
    out = net.forward(x, inference=not train)
    net.backward(dy)
    return out.copy(), (None if first.input_grad is None else first.input_grad.copy())


def torch_pass(module, x, dy, train):
    module.train(train)
    module.zero_grad(set_to_none=True)
    xt = torch.from_numpy(x.copy())
    if xt.is_floating_point():
        xt.requires_grad_(True)
    out = module(xt)
    out = out[0] if isinstance(out, tuple) else out
    out.backward(torch.from_numpy(dy.copy()))
    dx = None if xt.grad is None else xt.grad.numpy()
    return out.detach().numpy(), dx


def compare_grads(net, module, prefixes=None) -> float:
    """The largest relative difference between fastdl's parameter gradients and torch's, key
    by key. fastdl's single RNN/LSTM bias is torch's two added up, so its gradient is each
    one's; a frozen ``bias_hh_l0`` (to_torch's) has none."""
    grads = [layer.param_grads() for layer in net.layers]
    mine = torch_layout.to_torch_layout(net, grads, prefixes)
    owners = torch_layout.layer_keys(net, prefixes)
    worst = 0.0
    theirs = dict(module.named_parameters())
    assert set(theirs) == set(mine)
    for key, p in theirs.items():
        layer = net.layers[owners[key][0]]
        single = type(layer) in (fd.RNNLayer, fd.LSTMLayer) and key.endswith("bias_hh_l0")
        if p.grad is None:
            assert single and not p.requires_grad, key
            continue
        expected = mine[key.replace("bias_hh_l0", "bias_ih_l0")] if single else mine[key]
        worst = max(worst, rel(expected, p.grad.numpy()))
    return worst


def reset_states(net, module) -> None:
    net.reset_state()
    for m in module.modules():
        if isinstance(m, ft._RECURRENT):
            m.reset_state()


def parity(net, module, x, train, prefixes=None, passes=1, seed=2):
    """``(output difference, gradient difference)``, the largest over ``passes`` batches on
    both sides (stateful layers carry their state from one to the next)."""
    dy = np.random.default_rng(seed).standard_normal(net.forward(x, inference=True).shape)
    dy = dy.astype(net.dtype)
    reset_states(net, module)
    worst_out = worst_grad = 0.0
    for _ in range(passes):
        a, da = fastdl_pass(net, x, dy, train)
        b, db = torch_pass(module, x, dy, train)
        worst_out = max(worst_out, rel(a, b))
        if da is not None:
            worst_grad = max(worst_grad, rel(da, db))
        worst_grad = max(worst_grad, compare_grads(net, module, prefixes))
    return worst_out, worst_grad


def weight_holders(module) -> list[str]:
    """Names of the modules that hold parameters, in order (prefixes for from_torch nets)."""
    return [n for n, m in module.named_modules() if list(m.parameters(recurse=False))]


# -- cases: fastdl networks ------------------------------------------------------------------------

IMG = (2, 3, 9, 8)  # non-square
SEQ = (3, 6, 4)


def fastdl_cases():
    c = []
    for act in (fd.ReLU(), fd.Sigmoid(), fd.Tanh(), fd.LeakyReLU(0.2), fd.Identity(), fd.Linear()):
        c.append((f"Dense-{type(act).__name__}", lambda a=act: [fd.Dense(5, a)], (4, 3), True))
    c += [
        ("Dense-3d", lambda: [fd.Dense(5, fd.Tanh())], (3, 4, 6), True),
        ("Dense-square", lambda: [fd.Dense(4), fd.Dense(4, fd.Tanh())], (5, 4), True),
        ("Dense-dropout", lambda: [fd.Dense(5, fd.ReLU(), dropout=0.6)], (4, 3), False),
        (
            "Conv2D-valid-relu",
            lambda: [fd.Conv2D(4, 3, padding=0, activation=fd.ReLU())],
            IMG,
            True,
        ),
        (
            "Conv2D-stride2-pad1",
            lambda: [fd.Conv2D(4, 3, stride=2, padding=1, activation=fd.Tanh())],
            IMG,
            True,
        ),
        ("Conv2D-pair-padding", lambda: [fd.Conv2D(4, (3, 2), padding=(1, 2))], IMG, True),
        ("Conv2D-same-odd", lambda: [fd.Conv2D(4, 3)], IMG, True),
        ("Conv2D-same-even", lambda: [fd.Conv2D(4, 2, activation=fd.Sigmoid())], IMG, True),
        ("Conv2D-same-stride2", lambda: [fd.Conv2D(4, 4, stride=2)], IMG, True),
        ("Conv2D-same-stride3", lambda: [fd.Conv2D(2, 3, stride=3)], IMG, True),
        ("Conv2D-valid-stride2", lambda: [fd.Conv2D(4, 3, stride=2, padding="valid")], IMG, True),
        ("Conv2D-1x1", lambda: [fd.Conv2D(4, 1, activation=fd.LeakyReLU(0.1))], IMG, True),
        ("Conv2D-stride-gt-kernel", lambda: [fd.Conv2D(3, 2, stride=3, padding=0)], IMG, True),
        (
            "Conv2D-flatten",
            lambda: [fd.Conv2D(4, 3, padding=0, flatten=True), fd.Dense(3)],
            IMG,
            True,
        ),
        (
            "Conv2D-flatten-tanh",  # the book's layer: tanh fused into the convolution
            lambda: [fd.Conv2D(4, 5, activation=fd.Tanh(), dropout=0.8, flatten=True), fd.Dense(3)],
            IMG,
            False,
        ),
        (
            "Conv2D-dropout",
            lambda: [fd.Conv2D(4, 3, activation=fd.ReLU(), dropout=0.7)],
            IMG,
            False,
        ),
        ("MaxPool2D", lambda: [fd.MaxPool2D(3, stride=2)], IMG, True),
        (
            "MaxPool2D-after-conv",
            lambda: [fd.Conv2D(4, 3, activation=fd.Tanh()), fd.MaxPool2D(2)],
            IMG,
            True,
        ),
        ("MaxPool2D-dropout", lambda: [fd.Conv2D(3, 3), fd.MaxPool2D(2, dropout=0.5)], IMG, False),
        ("Flatten", lambda: [fd.Conv2D(3, 3, padding=0), fd.Flatten(), fd.Dense(4)], IMG, True),
        ("Embedding", lambda: [fd.Embedding(11, 6), fd.Dense(4)], ("ids", 3, 5), True),
    ]
    for cls in (fd.RNNLayer, fd.GRULayer, fd.LSTMLayer):
        n = cls.__name__
        c += [
            (f"{n}-sequences", lambda k=cls: [k(5)], SEQ, True),
            (f"{n}-last", lambda k=cls: [k(5, return_sequences=False), fd.Dense(2)], SEQ, True),
            (f"{n}-dropout", lambda k=cls: [k(5, dropout=0.6)], SEQ, False),
        ]
    c.append(("Embedding-LSTM", lambda: [fd.Embedding(11, 6), fd.LSTMLayer(5), fd.Dense(11)],
              ("ids", 3, 5), True))  # fmt: skip
    c += [
        # a bias right before a batch norm has a zero gradient (the mean takes it out), and a
        # relative comparison of two roundings of zero fails: a nonlinearity comes between
        ("BatchNorm2D-relu", lambda: [fd.Conv2D(4, 3, activation=fd.Tanh()),
                                      fd.BatchNorm2D(activation=fd.ReLU())], IMG, True),
        ("BatchNorm2D-first", lambda: [fd.BatchNorm2D(momentum=0.3)], IMG, True),
        ("BatchNorm2D-after-pool", lambda: [fd.Conv2D(4, 3, activation=fd.ReLU()), fd.MaxPool2D(2),
                                            fd.BatchNorm2D(momentum=None, eps=1e-3)], IMG, True),
        ("BatchNorm2D-eval", lambda: [fd.Conv2D(4, 3), fd.BatchNorm2D(activation=fd.Tanh())],
         IMG, False),
        ("BatchNorm1D", lambda: [fd.Dense(5, fd.Tanh()),
                                 fd.BatchNorm1D(activation=fd.LeakyReLU(0.1))], (4, 3), True),
        ("BatchNorm1D-sequences", lambda: [fd.Dense(5, fd.Tanh()), fd.BatchNorm1D()], SEQ, True),
        ("BatchNorm1D-sequences-eval", lambda: [fd.LSTMLayer(5), fd.BatchNorm1D(momentum=0.2,
                                                                    activation=fd.ReLU())],
         SEQ, False),
    ]  # fmt: skip
    if Conv2DTranspose is not None:
        c += [
            ("Conv2DTranspose-s2", lambda: [Conv2DTranspose(3, 3, stride=2, padding=1,
                                                            output_padding=1,
                                                            activation=fd.ReLU())], IMG, True),
            ("Conv2DTranspose-even", lambda: [Conv2DTranspose(2, (2, 3), padding=(0, 1))], IMG,
             True),
        ]  # fmt: skip
    if Reshape is not None:
        c.append(("Reshape", lambda: [fd.Dense(12), Reshape((3, 2, 2)), fd.Conv2D(2, 1)], (4, 5),
                  True))  # fmt: skip
        # a 3-D input: Unflatten splits axis 1 only, so the module flattens first
        c.append(("Reshape-3d", lambda: [fd.Dense(6), Reshape((3, 12)), fd.Dense(3)], SEQ,
                  True))  # fmt: skip
    return c


FASTDL_CASES = fastdl_cases()


def make_input(shape, dtype, seed=1):
    if shape[0] == "ids":
        return inputs(shape[1:], dtype, seed, vocab=11)
    return inputs(shape, dtype, seed)


def fastdl_to_torch(case, dtype=np.float32):
    name, layers, shape, train = case
    x = make_input(shape, dtype)
    net = net_of(layers(), dtype).build(x.shape[1:], "float" if x.dtype.kind == "f" else "int")
    rng = np.random.default_rng(4)
    for layer in net.layers:  # running statistics as if trained (they start at 0 and 1)
        if layer.buffers():
            layer.running_mean[...] = 0.5 * rng.standard_normal(layer.running_mean.shape)
            layer.running_var[...] = 0.5 + rng.random(layer.running_var.shape)
    module = ft.to_torch(net)
    return parity(net, module, x, train)


@pytest.mark.parametrize("case", FASTDL_CASES, ids=[c[0] for c in FASTDL_CASES])
def test_fastdl_to_torch(case):
    out, grad = fastdl_to_torch(case)
    assert out <= 1e-5 and grad <= 1e-4, (out, grad)


FLOAT64 = ["Dense-square", "Conv2D-same-even", "Conv2D-same-stride2", "LSTMLayer-last",
           "GRULayer-sequences", "RNNLayer-last", "MaxPool2D-after-conv", "BatchNorm2D-relu",
           "BatchNorm2D-after-pool", "BatchNorm1D", "BatchNorm1D-sequences"]  # fmt: skip


@pytest.mark.parametrize("name", FLOAT64)
def test_fastdl_to_torch_float64(name):
    case = next(c for c in FASTDL_CASES if c[0] == name)
    out, grad = fastdl_to_torch(case, np.float64)
    assert out <= 1e-12 and grad <= 1e-10, (out, grad)


# -- cases: torch modules (torch's own initialisation: biases non-zero, bias_hh too) ---------------


def bn(cls, c, seed=0, **kwargs):
    """A torch batch norm with random scale, shift and running statistics, as if trained."""
    module = cls(c, **kwargs)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        module.weight.copy_(1 + 0.3 * torch.randn(c, generator=g))
        module.bias.copy_(0.3 * torch.randn(c, generator=g))
        module.running_mean.copy_(0.5 * torch.randn(c, generator=g))
        module.running_var.copy_(0.5 + torch.rand(c, generator=g))
        module.num_batches_tracked.fill_(7)
    return module


def torch_cases():
    c = [
        ("Linear-ReLU", lambda: nn.Sequential(nn.Linear(3, 5), nn.ReLU()), (4, 3), True),
        ("Linear-Sigmoid", lambda: nn.Sequential(nn.Linear(3, 5), nn.Sigmoid()), (4, 3), True),
        ("Linear-Tanh", lambda: nn.Sequential(nn.Linear(3, 5), nn.Tanh()), (4, 3), True),
        ("Linear-LeakyReLU", lambda: nn.Sequential(nn.Linear(3, 5), nn.LeakyReLU(0.3)), (4, 3),
         True),
        ("Linear-Identity", lambda: nn.Sequential(nn.Linear(3, 5), nn.Identity()), (4, 3), True),
        ("Linear-bare", lambda: nn.Linear(3, 5), (4, 3), True),
        ("Linear-3d", lambda: nn.Sequential(nn.Linear(6, 5), nn.Tanh()), (3, 4, 6), True),
        ("Linear-square", lambda: nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4)), (5, 4), True),
        ("Linear-dropout", lambda: nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Dropout(0.4)),
         (4, 3), False),
        ("Conv2d-relu", lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), IMG, True),
        ("Conv2d-stride2-pad1", lambda: nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1)),
         IMG, True),
        ("Conv2d-pair-padding", lambda: nn.Conv2d(3, 4, (3, 2), padding=(1, 2)), IMG, True),
        ("Conv2d-same-odd", lambda: nn.Conv2d(3, 4, 3, padding="same"), IMG, True),
        ("Conv2d-same-even", lambda: nn.Conv2d(3, 4, (2, 4), padding="same"), IMG, True),
        ("Conv2d-valid", lambda: nn.Conv2d(3, 4, 3, stride=2, padding="valid"), IMG, True),
        ("ZeroPad2d-Conv2d", lambda: nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 4, 2)),
         IMG, True),
        ("ZeroPad2d-symmetric", lambda: nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(3, 4, 3,
                                                                                 stride=2)),
         IMG, True),
        ("SamePad2d-Conv2d", lambda: nn.Sequential(ft.SamePad2d(3, 2), nn.Conv2d(3, 4, 3, 2)),
         IMG, True),
        ("Conv2d-dropout", lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Dropout(0.2)),
         IMG, False),
        ("MaxPool2d", lambda: nn.MaxPool2d(2), IMG, True),
        ("MaxPool2d-overlap", lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(3, 1)), IMG,
         True),
        ("MaxPool2d-dropout", lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2),
                                                    nn.Dropout(0.3)), IMG, False),
        ("Flatten", lambda: nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(2 * 7 * 6,
                                                                                      3)),
         IMG, True),
        ("Nested-Sequential", lambda: nn.Sequential(nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU()),
                                                    nn.Flatten(),
                                                    nn.Sequential(nn.Linear(84, 3))), IMG, True),
        ("Embedding", lambda: nn.Sequential(nn.Embedding(11, 6), nn.Linear(6, 4)), ("ids", 3, 5),
         True),
        ("BatchNorm2d-relu", lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Tanh(),
                                                   bn(nn.BatchNorm2d, 4), nn.ReLU()), IMG, True),
        ("BatchNorm2d-eval", lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.MaxPool2d(2),
                                                   bn(nn.BatchNorm2d, 4, eps=1e-3)), IMG, False),
        ("BatchNorm2d-first", lambda: bn(nn.BatchNorm2d, 3, momentum=None), IMG, True),
        ("BatchNorm1d", lambda: nn.Sequential(nn.Linear(3, 5), nn.Tanh(),
                                              bn(nn.BatchNorm1d, 5), nn.Tanh()), (4, 3), True),
        ("BatchNorm1d-eval", lambda: nn.Sequential(nn.Linear(3, 5), bn(nn.BatchNorm1d, 5)),
         (4, 3), False),
        ("SequenceBatchNorm1d", lambda: nn.Sequential(nn.Linear(4, 5), nn.ReLU(),
                                                      bn(ft.SequenceBatchNorm1d, 5)), SEQ, True),
        ("RNN-bare", lambda: nn.RNN(4, 5, batch_first=True), SEQ, True),
        ("GRU-bare", lambda: nn.GRU(4, 5, batch_first=True), SEQ, True),
        ("LSTM-bare", lambda: nn.LSTM(4, 5, batch_first=True), SEQ, True),
        ("LSTM-last-in-Sequential", lambda: nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 5,
                                                                                   batch_first=True)),
         SEQ, True),
    ]  # fmt: skip
    for cls in (ft.RNNLayer, ft.GRULayer, ft.LSTMLayer):
        n = cls.__name__
        c += [
            (f"{n}-last", lambda k=cls: nn.Sequential(k(4, 5, return_sequences=False),
                                                      nn.Linear(5, 2)), SEQ, True),
            (f"{n}-dropout", lambda k=cls: nn.Sequential(k(4, 5), nn.Dropout(0.3)), SEQ, False),
        ]  # fmt: skip
    if Conv2DTranspose is not None:
        c += [
            ("ConvTranspose2d", lambda: nn.Sequential(nn.ConvTranspose2d(3, 2, 3, stride=2,
                                                                         padding=1,
                                                                         output_padding=1),
                                                      nn.ReLU()), IMG, True),
            ("ConvTranspose2d-even", lambda: nn.ConvTranspose2d(3, 2, (2, 3), padding=(0, 1)),
             IMG, True),
        ]  # fmt: skip
    if Reshape is not None:
        c.append(("Unflatten", lambda: nn.Sequential(nn.Linear(5, 12), nn.Unflatten(1, (3, 2, 2)),
                                                     nn.Conv2d(3, 2, 1)), (4, 5), True))  # fmt: skip
    return c


TORCH_CASES = torch_cases()


def torch_to_fastdl(case, dtype=np.float32):
    name, build, shape, train = case
    torch.manual_seed(0)
    module = build()
    if dtype == np.float64:
        module = module.double()
    x = make_input(shape, dtype)
    net = ft.from_torch(module, x.shape[1:], loss=fd.MeanSquaredError())
    return parity(net, module, x, train, prefixes=weight_holders(module) or None)


# torch warns that its even-kernel "same" padding copies the input (its cost, not an error)
EVEN_SAME = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")


@EVEN_SAME
@pytest.mark.parametrize("case", TORCH_CASES, ids=[c[0] for c in TORCH_CASES])
def test_torch_to_fastdl(case):
    out, grad = torch_to_fastdl(case)
    assert out <= 1e-5 and grad <= 1e-4, (out, grad)


@EVEN_SAME
@pytest.mark.parametrize("name", ["Linear-square", "Conv2d-same-even", "LSTM-bare",
                                  "GRULayer-last", "SamePad2d-Conv2d", "BatchNorm2d-relu",
                                  "BatchNorm2d-eval", "BatchNorm1d", "SequenceBatchNorm1d"])  # fmt: skip
def test_torch_to_fastdl_float64(name):
    case = next(c for c in TORCH_CASES if c[0] == name)
    out, grad = torch_to_fastdl(case, np.float64)
    assert out <= 1e-12 and grad <= 1e-10, (out, grad)


def test_from_torch_reads_the_layers_it_should():
    torch.manual_seed(0)
    module = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 4, 2), nn.LeakyReLU(0.3),
                           nn.Dropout(0.3), nn.MaxPool2d(2), nn.Dropout(0.1), nn.Flatten(),
                           nn.Linear(64, 3))  # fmt: skip
    net = ft.from_torch(module, (3, 9, 8))
    conv, pool, flat, dense = net.layers
    assert (type(conv), conv.padding, conv.dropout) == (fd.Conv2D, "same", 0.7)
    assert type(conv.activation) is fd.LeakyReLU and conv.activation.alpha == pytest.approx(0.3)
    assert (type(pool), pool.dropout) == (fd.MaxPool2D, 0.9)
    assert type(flat) is fd.Flatten and type(dense) is fd.Dense
    assert type(dense.activation) is fd.Identity
    assert isinstance(net.loss, fd.SoftmaxCrossEntropy)


def test_to_torch_modules_and_keys():
    net = mnist_cnn.build(0).build((1, 28, 28))
    module = ft.to_torch(net)
    kinds = [type(m).__name__ for m in module]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Dropout", "Flatten",
                     "Linear", "ReLU", "Dropout", "Linear"]  # fmt: skip
    assert [m.p for m in module if isinstance(m, nn.Dropout)] == [0.25, 0.5]
    assert list(module.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias", "7.weight",
                                         "7.bias", "10.weight", "10.bias"]  # fmt: skip
    assert module[7].weight.shape == (128, 9216)  # (out, in): fastdl's (in, out) transposed
    np.testing.assert_array_equal(module[7].weight.detach().numpy(), net.layers[4].params()[0].T)


def test_recurrent_bias_is_torchs_two_added():
    net = net_of([fd.LSTMLayer(3)]).build((4, 2))
    b = net.layers[0].params()[2]
    b[...] = np.arange(12, dtype=np.float32)
    module = ft.to_torch(net)
    lstm = module[0]
    np.testing.assert_array_equal(lstm.bias_ih_l0.detach().numpy(), b)
    np.testing.assert_array_equal(lstm.bias_hh_l0.detach().numpy(), 0)
    assert not lstm.bias_hh_l0.requires_grad and lstm.bias_ih_l0.requires_grad
    with torch.no_grad():
        lstm.bias_hh_l0.fill_(0.5)
    back = ft.from_torch(module, (4, 2))
    np.testing.assert_allclose(back.layers[0].params()[2], b + 0.5)


def test_gru_keeps_both_biases():
    net = net_of([fd.GRULayer(3)]).build((4, 2))
    for p in net.layers[0].params()[2:]:
        p[...] = np.random.default_rng(0).standard_normal(p.shape)
    module = ft.to_torch(net)
    gru = module[0]
    b_ih, b_hh = net.layers[0].params()[2:]
    np.testing.assert_array_equal(gru.bias_ih_l0.detach().numpy(), b_ih)
    np.testing.assert_array_equal(gru.bias_hh_l0.detach().numpy(), b_hh)
    assert gru.bias_hh_l0.requires_grad


# -- the reference CNN and the char-LSTM model ---------------------------------------------------


def char_model(dropout, vocab=10, hidden=16):
    net, _ = char_lstm.build_model(vocab, hidden, seed=0, dropout=dropout)
    return net


def onehot_batch(n=3, t=7, vocab=10, seed=1):
    ids = np.random.default_rng(seed).integers(0, vocab, (n, t + 1))
    return np.eye(vocab, dtype=np.float32)[ids[:, :-1]], ids[:, 1:]


MODELS = {
    "mnist-cnn": (lambda: mnist_cnn.build(0), (2, 1, 28, 28), False),
    "mnist-cnn-no-dropout": (lambda: mnist_cnn.build(0, dropout=False), (2, 1, 28, 28), True),
    "char-lstm": (lambda: char_model(0.7), None, False),
    "char-lstm-no-dropout": (lambda: char_model(1.0), None, True),
}


def model_parity(name, skip_input_grad=False):
    make, shape, train = MODELS[name]
    net = make()
    x = onehot_batch()[0] if shape is None else inputs(shape, np.float32)
    net.build(x.shape[1:])
    module = ft.to_torch(net)
    # stateful (char-LSTM): two batches, the second from the state the first left
    passes = 2 if shape is None else 1
    if skip_input_grad:  # the one-hot gather path of the first layer, as in training
        out, grad = parity_without_input_grad(net, module, x, train, passes)
    else:
        out, grad = parity(net, module, x, train, passes=passes)
    return out, grad, net, module


def parity_without_input_grad(net, module, x, train, passes):
    rng = np.random.default_rng(2)
    dy = rng.standard_normal(net.forward(x, inference=True).shape).astype(np.float32)
    reset_states(net, module)
    worst_out = worst_grad = 0.0
    for _ in range(passes):
        a = net.forward(x, inference=not train)
        net.backward(dy)
        module.train(train)
        module.zero_grad(set_to_none=True)
        b = module(torch.from_numpy(x))
        b.backward(torch.from_numpy(dy))
        worst_out = max(worst_out, rel(a, b.detach().numpy()))
        worst_grad = max(worst_grad, compare_grads(net, module))
    return worst_out, worst_grad


@pytest.mark.parametrize("name", list(MODELS))
def test_reference_models_fastdl_to_torch(name):
    out, grad, _, _ = model_parity(name)
    assert out <= 1e-5 and grad <= 1e-4, (out, grad)


def test_char_lstm_one_hot_gather_path():
    out, grad, _, _ = model_parity("char-lstm-no-dropout", skip_input_grad=True)
    assert out <= 1e-5 and grad <= 1e-4, (out, grad)


class TorchMNISTNet(nn.Module):
    """PyTorch's examples/mnist/main.py ``Net``, as written there (logits: no log_softmax)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(self.dropout1(x), 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return self.fc2(x)


MNIST_PREFIXES = {0: "conv1", 1: "conv2", 4: "fc1", 5: "fc2"}


def torch_reference_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 32, 3, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128),
                         nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))  # fmt: skip


def torch_char_lstm(vocab=10, hidden=16):
    torch.manual_seed(0)
    return nn.Sequential(ft.LSTMLayer(vocab, hidden, stateful=True), nn.Dropout(0.3),
                         nn.Linear(hidden, vocab))  # fmt: skip


def torch_model_parity(name):
    if name == "mnist-cnn":
        module, x, passes = torch_reference_cnn(), inputs((2, 1, 28, 28), np.float32), 1
    else:
        module, x, passes = torch_char_lstm(), onehot_batch()[0], 2
    net = ft.from_torch(module, x.shape[1:])
    assert [type(layer) for layer in net.layers] == (
        [fd.Conv2D, fd.Conv2D, fd.MaxPool2D, fd.Flatten, fd.Dense, fd.Dense]
        if name == "mnist-cnn" else [fd.LSTMLayer, fd.Dense]
    )  # fmt: skip
    return parity(net, module, x, False, passes=passes)


@pytest.mark.parametrize("name", ["mnist-cnn", "char-lstm"])
def test_reference_models_torch_to_fastdl(name):
    out, grad = torch_model_parity(name)
    assert out <= 1e-5 and grad <= 1e-4, (out, grad)


# -- a step in torch is the step in fastdl ----------------------------------------------------------


def train_step_case(name):
    if name == "mnist-cnn":
        net = mnist_cnn.build(0, dropout=False)
        rng = np.random.default_rng(3)
        batches = [(rng.standard_normal((4, 1, 28, 28)).astype(np.float32),
                    rng.integers(0, 10, 4)) for _ in range(4)]  # fmt: skip
        return net, batches, (1, 28, 28)
    net = char_model(1.0)
    batches = [onehot_batch(seed=s) for s in range(4)]
    return net, batches, batches[0][0].shape[1:]


@pytest.mark.parametrize("name", ["mnist-cnn", "char-lstm"])
def test_one_step_in_torch_equals_the_step_in_fastdl(name):
    net, batches, shape = train_step_case(name)
    lr = 0.05
    optim = fd.SGD(lr)
    fd.Trainer(net, optim)
    for x, y in batches[:3]:
        net.train_batch(x, y)
        optim.step()
    twin = copy.deepcopy(net)
    before = twin.get_weights()
    x, y = batches[3]
    fastdl_loss = net.train_batch(x, y)
    optim.step()

    module = ft.to_torch(twin)
    params = [p for p in module.parameters() if p.requires_grad]
    torch_optim = torch.optim.SGD(params, lr=lr)
    module.train()
    logits = module(torch.from_numpy(x))
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(y).reshape(-1))
    loss.backward()
    torch_optim.step()
    back = ft.from_torch(module, shape)

    assert loss.item() == pytest.approx(fastdl_loss, rel=1e-5)
    for w0, w_fastdl, w_torch in zip(before, net.params(), back.params(), strict=True):
        assert rel(w_torch, w_fastdl) <= 1e-5
        assert rel(w_torch - w0, w_fastdl - w0) <= 1e-4  # the step itself
    if name == "char-lstm":  # the carried state went to torch and back
        for s_fastdl, s_torch in zip(net.layers[0].state, back.layers[0].state, strict=True):
            assert rel(s_torch, s_fastdl) <= 1e-5


def bn_cnn(dtype=np.float64):
    return net_of([fd.Conv2D(4, 3), fd.BatchNorm2D(activation=fd.ReLU()), fd.MaxPool2D(2),
                   fd.BatchNorm2D(momentum=None), fd.Flatten(), fd.Dense(5),
                   fd.BatchNorm1D(activation=fd.Tanh()), fd.Dense(3)], dtype,
                  loss=fd.SoftmaxCrossEntropy())  # fmt: skip


def test_batch_norm_running_statistics_go_to_torch_and_back_and_train_alike():
    """Three fastdl steps, the state dict (buffers included) to torch, two more steps on each
    side with the same data: weights and running statistics agree; evaluation agrees; and
    from_torch brings torch's running statistics back bit for bit."""
    net = bn_cnn()
    rng = np.random.default_rng(5)
    batches = [(rng.standard_normal((6, 3, 9, 8)), rng.integers(0, 3, 6)) for _ in range(5)]
    optim = fd.SGD(0.1)
    fd.Trainer(net, optim)
    for x, y in batches[:3]:
        net.train_batch(x, y)
        optim.step()
    module = ft.to_torch(net)
    sd = module.state_dict()
    assert [k for k in sd if k.startswith("1.")] == ["1.weight", "1.bias", "1.running_mean",
                                                      "1.running_var", "1.num_batches_tracked"]  # fmt: skip
    assert (
        sd["1.num_batches_tracked"].dtype == torch.int64 and int(sd["1.num_batches_tracked"]) == 3
    )
    np.testing.assert_array_equal(sd["4.running_var"].numpy(), net.layers[3].running_var)
    assert module[4].momentum is None and type(module[7]) is nn.BatchNorm1d
    torch_optim = torch.optim.SGD(module.parameters(), lr=0.1)
    for x, y in batches[3:]:
        net.train_batch(x, y)
        optim.step()
        module.train()
        torch_optim.zero_grad()
        F.cross_entropy(module(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        torch_optim.step()
    back = ft.from_torch(module, (3, 9, 8))
    for mine, theirs in zip(net.get_weights(), back.get_weights(), strict=True):
        # (the biases before a batch norm get zero gradients: rounding noise, 1e-17)
        np.testing.assert_allclose(theirs, mine, rtol=0, atol=1e-12 * (1 + np.abs(mine).max()))
    for layer, b in zip(net.layers, back.layers, strict=True):
        for name in ("running_mean", "running_var"):
            if layer.buffers():
                got = getattr(b, name)
                want = getattr(module[ft_index(net, layer)], name).numpy()
                np.testing.assert_array_equal(got, want)  # torch's, bit for bit
    assert back.layers[1].num_batches_tracked == 5
    module.eval()
    x = batches[0][0]
    assert rel(module(torch.from_numpy(x)).detach().numpy(), net.predict(x)) <= 1e-12
    assert rel(back.predict(x), module(torch.from_numpy(x)).detach().numpy()) <= 1e-12


def ft_index(net, layer):
    """The index in to_torch's Sequential of ``layer``'s first module."""
    specs = torch_layout.modules(net)
    return next(j for j, m in enumerate(specs) if net.layers[m.layer] is layer)


def test_batch_norm_on_sequences_is_sequence_batch_norm_in_torch():
    net = net_of([fd.Dense(5), fd.BatchNorm1D(activation=fd.ReLU())], np.float64).build((6, 4))
    module = ft.to_torch(net)
    assert type(module[1]) is ft.SequenceBatchNorm1d
    assert [type(m).__name__ for m in module] == ["Linear", "SequenceBatchNorm1d", "ReLU"]
    back = ft.from_torch(module, (6, 4), loss=fd.MeanSquaredError())
    assert type(back.layers[1]) is fd.BatchNorm1D and back.layers[1].input_ndim == 3


# -- state dicts of a torch module of one's own --------------------------------------------------


def test_state_dict_into_pytorchs_mnist_net():
    net = mnist_cnn.build(0).build((1, 28, 28))
    module = TorchMNISTNet()
    module.load_state_dict(ft.state_dict(net, prefixes=MNIST_PREFIXES), strict=True)
    module.eval()
    x = inputs((2, 1, 28, 28), np.float32)
    got = module(torch.from_numpy(x)).detach().numpy()
    assert rel(got, net.forward(x, inference=True)) <= 1e-5


def test_load_state_dict_from_pytorchs_mnist_net():
    torch.manual_seed(0)
    module = TorchMNISTNet().eval()
    net = mnist_cnn.build(1).build((1, 28, 28))
    ft.load_state_dict(net, module.state_dict(), prefixes=["conv1", "conv2", "fc1", "fc2"])
    x = inputs((2, 1, 28, 28), np.float32)
    want = module(torch.from_numpy(x)).detach().numpy()
    assert rel(net.forward(x, inference=True), want) <= 1e-5


class TorchCharModel(nn.Module):
    def __init__(self, vocab=10, hidden=16) -> None:
        super().__init__()
        self.lstm = nn.LSTM(vocab, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x):
        return self.head(self.lstm(x)[0])


def test_state_dict_both_ways_with_a_char_model_of_ones_own():
    torch.manual_seed(0)
    module = TorchCharModel()
    net = char_model(1.0).build((7, 10))
    ft.load_state_dict(net, module.state_dict(), prefixes={0: "lstm", 1: "head"})
    x = onehot_batch()[0]
    want = module(torch.from_numpy(x)).detach().numpy()
    assert rel(net.forward(x, inference=True), want) <= 1e-5
    net.reset_state()
    other = TorchCharModel()
    other.load_state_dict(ft.state_dict(net, prefixes={0: "lstm", 1: "head"}), strict=True)
    assert rel(other(torch.from_numpy(x)).detach().numpy(), want) <= 1e-5


def test_load_state_dict_refuses_and_changes_nothing():
    net = mnist_cnn.build(0).build((1, 28, 28))
    before = net.get_weights()
    sd = ft.state_dict(net)
    bad = dict(sd)
    del bad["7.bias"]
    with pytest.raises(ValueError, match=r"no array '7.bias' for layers\[4\] \(Dense\)"):
        ft.load_state_dict(net, bad)
    bad = dict(sd)
    bad["7.weight"] = torch.zeros(9216, 128)  # fastdl's layout, not torch's
    with pytest.raises(ValueError, match=r"'7.weight' \(float32 \(9216, 128\)\).*\(128, 9216\)"):
        ft.load_state_dict(net, bad)
    bad = {**sd, "11.weight": torch.zeros(3)}
    with pytest.raises(ValueError, match="unexpected arrays"):
        ft.load_state_dict(net, bad)
    bad = {k: v.double() for k, v in sd.items()}
    with pytest.raises(ValueError, match="float64.*expects float32"):
        ft.load_state_dict(net, bad)
    for w0, w in zip(before, net.params(), strict=True):
        np.testing.assert_array_equal(w0, w)
    ft.load_state_dict(net, {**sd, "11.weight": torch.zeros(3)}, strict=False)


def test_square_weights_are_transposed_by_name():
    net = net_of([fd.Dense(4), fd.Dense(4)]).build((4,))
    sd = ft.state_dict(net)
    np.testing.assert_array_equal(sd["0.weight"].numpy(), net.layers[0].params()[0].T)
    other = net_of([fd.Dense(4), fd.Dense(4)], seed=5).build((4,))
    ft.load_state_dict(other, sd)
    for a, b in zip(net.params(), other.params(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_prefixes_must_name_every_layer_with_parameters():
    net = mnist_cnn.build(0).build((1, 28, 28))
    with pytest.raises(ValueError, match="missing"):
        ft.state_dict(net, prefixes={0: "conv1"})
    with pytest.raises(ValueError, match="3 names for 4 layers"):
        ft.state_dict(net, prefixes=["a", "b", "c"])


# -- what does not convert ---------------------------------------------------------------------------


class Swish(fd.ops.Operation):
    def _output(self, inference):
        return self.input_ / (1 + np.exp(-self.input_))


class Twice(fd.Layer):
    def _setup_layer(self, x):
        self.operations = [fd.Identity()]


@pytest.mark.parametrize(
    "layers, message",
    [
        ([fd.Dense(3, Swish())], r"layers\[0\] \(Dense\): activation Swish has no torch.nn"),
        ([fd.Dense(3), Twice()], r"layers\[1\] \(Twice\): no PyTorch counterpart"),
    ],
    ids=["activation", "layer"],
)
def test_to_torch_refuses(layers, message):
    net = net_of(layers).build((4,))
    with pytest.raises(ft.ConversionError, match=message):
        ft.to_torch(net)


def test_to_torch_needs_a_built_network():
    with pytest.raises(ft.ConversionError, match=r"not set up yet.*net.build"):
        ft.to_torch(net_of([fd.Dense(3)]))


class Custom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return self.fc(x) * 2


REFUSED = [
    ("bias", lambda: nn.Linear(3, 2, bias=False), (3,), "bias=False"),
    ("dilation", lambda: nn.Conv2d(1, 2, 3, dilation=2), (1, 9, 9), "dilation"),
    ("groups", lambda: nn.Conv2d(2, 2, 3, groups=2), (2, 9, 9), "groups=2"),
    ("stride-pair", lambda: nn.Conv2d(1, 2, 3, stride=(1, 2)), (1, 9, 9), r"stride \(1, 2\)"),
    ("padding-mode", lambda: nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), (1, 9, 9),
     "padding_mode"),
    ("asymmetric-pad", lambda: nn.Sequential(nn.ZeroPad2d((1, 0, 0, 0)), nn.Conv2d(1, 2, 3)),
     (1, 9, 9), "padding top 0, bottom 0, left 1, right 0"),
    ("pad-alone", lambda: nn.Sequential(nn.ZeroPad2d(1), nn.ReLU()), (1, 9, 9),
     "right before an nn.Conv2d"),
    ("ceil-mode", lambda: nn.MaxPool2d(2, ceil_mode=True), (1, 9, 9), "ceil_mode"),
    ("pool-pad", lambda: nn.MaxPool2d(3, padding=1), (1, 9, 9), "padding"),
    ("layernorm", lambda: nn.LayerNorm(9), (1, 9, 9), r"LayerNorm\): has no fastdl layer"),
    ("bn-affine", lambda: nn.BatchNorm2d(1, affine=False), (1, 9, 9), "affine=False"),
    ("bn-untracked", lambda: nn.BatchNorm2d(1, track_running_stats=False), (1, 9, 9),
     "track_running_stats=False"),
    ("bn1d-channels-first", lambda: nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)), (4, 3),
     r"normalises axis 1 of \(N, C, L\).*SequenceBatchNorm1d"),
    ("dropout-after-bn", lambda: nn.Sequential(nn.BatchNorm2d(1), nn.Dropout(0.5)), (1, 9, 9),
     "follows BatchNorm2d"),
    ("two-layers", lambda: nn.LSTM(3, 4, num_layers=2, batch_first=True), (5, 3), "one layer"),
    ("bidirectional", lambda: nn.GRU(3, 4, bidirectional=True, batch_first=True), (5, 3),
     "one direction"),
    ("time-first", lambda: nn.LSTM(3, 4), (5, 3), "batch_first=False"),
    ("relu-rnn", lambda: nn.RNN(3, 4, nonlinearity="relu", batch_first=True), (5, 3), "tanh"),
    ("proj", lambda: nn.LSTM(3, 4, proj_size=2, batch_first=True), (5, 3), "proj_size"),
    ("bare-lstm-not-last", lambda: nn.Sequential(nn.LSTM(3, 4, batch_first=True),
                                                 nn.Linear(4, 2)), (5, 3), "must come last"),
    ("padding-idx", lambda: nn.Embedding(5, 3, padding_idx=0), ("ids", 4), "padding_idx"),
    ("relu-first", lambda: nn.Sequential(nn.ReLU(), nn.Linear(3, 2)), (3,), "follows the start"),
    ("relu-after-pool", lambda: nn.Sequential(nn.MaxPool2d(2), nn.ReLU()), (1, 9, 9),
     "follows MaxPool2d"),
    ("two-activations", lambda: nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Tanh()), (3,),
     r"Tanh\): follows ReLU"),
    ("dropout-after-flatten", lambda: nn.Sequential(nn.Flatten(), nn.Dropout(0.5)), (1, 3, 3),
     "follows Flatten"),
    ("dropout-after-embedding", lambda: nn.Sequential(nn.Embedding(5, 3), nn.Dropout(0.5)),
     ("ids", 4), "follows Embedding"),
    ("dropout-all", lambda: nn.Sequential(nn.Linear(3, 2), nn.Dropout(1.0)), (3,), "p = 1"),
    ("leaky-slope", lambda: nn.Sequential(nn.Linear(3, 2), nn.LeakyReLU(1.5)), (3,),
     "negative_slope 1.5"),
    ("dropout2d", lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Dropout2d(0.5)), (1, 9, 9),
     r"Dropout2d\): has no fastdl layer"),
    ("custom-forward", Custom, (3,), "its own forward"),
    ("mixed-dtypes", lambda: nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2).double()), (3,),
     "float32 or float64 throughout"),
]  # fmt: skip


@pytest.mark.parametrize("build, shape, message", [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])  # fmt: skip
def test_from_torch_refuses(build, shape, message):
    with pytest.raises(ft.ConversionError, match=message):
        ft.from_torch(build(), shape[1:] if shape[0] == "ids" else shape)


def test_from_torch_input_shape_that_does_not_fit():
    module = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 7 * 7, 3))
    with pytest.raises(ValueError, match=r"'2.weight' \(float32 \(3, 98\)\) does not fit"):
        ft.from_torch(module, (1, 10, 10))
    with pytest.raises(ValueError, match=r"'0.weight' \(float32 \(2, 1, 3, 3\)\) does not fit"):
        ft.from_torch(module, (2, 9, 9))
    with pytest.raises(ValueError, match="does not take input_shape .*larger than the padded"):
        ft.from_torch(module, (1, 2, 2))


def test_stateful_state_goes_both_ways():
    net = char_model(1.0)
    x, _ = onehot_batch()
    net.forward(x)  # now carries a state
    module = ft.to_torch(net)
    h, c = (s.numpy() for s in module[0].state)
    np.testing.assert_array_equal(h, net.layers[0].state[0])
    np.testing.assert_array_equal(c, net.layers[0].state[1])
    module(torch.from_numpy(x))
    back = ft.from_torch(module, x.shape[1:])
    np.testing.assert_allclose(back.layers[0].state[0], module[0].state[0].numpy())
    assert back.layers[0].stateful
    with pytest.raises(ValueError, match="batch size 3, got a batch of 2"):
        module(torch.from_numpy(x[:2]))
