"""weight_decay on every optimizer: against torch.optim's same optimizer in float64 (coupled
in SGD, SGDMomentum, AdaGrad, RMSprop, Adam, Adadelta; decoupled in AdamW), against the
formula, and through get_config, state_dict and save/load."""

from __future__ import annotations

import numpy as np
import pytest

import fastdl as fd


class FakeNet:
    """Just enough of a network for an optimizer: fixed parameters, gradients set by hand."""

    def __init__(self, params, grads):
        self._params, self.grads = params, grads

    def params(self):
        return self._params

    def param_grads(self):
        return self.grads


# fastdl optimizer, and torch's with every hyper-parameter mapped explicitly (torch's
# defaults differ: Adagrad eps 1e-10, RMSprop alpha 0.99 / eps 1e-8 / lr 0.01).
PAIRS = {
    "SGD": (
        lambda wd: fd.SGD(0.1, weight_decay=wd),
        lambda o, p, wd: o.SGD(p, lr=0.1, weight_decay=wd),
    ),
    "SGDMomentum": (
        lambda wd: fd.SGDMomentum(0.1, momentum=0.9, weight_decay=wd),
        lambda o, p, wd: o.SGD(p, lr=0.1, momentum=0.9, weight_decay=wd),
    ),
    "SGDMomentum-nesterov": (
        lambda wd: fd.SGDMomentum(0.05, momentum=0.8, nesterov=True, weight_decay=wd),
        lambda o, p, wd: o.SGD(p, lr=0.05, momentum=0.8, nesterov=True, weight_decay=wd),
    ),
    "AdaGrad": (
        lambda wd: fd.AdaGrad(0.1, eps=1e-7, weight_decay=wd),
        lambda o, p, wd: o.Adagrad(
            p, lr=0.1, eps=1e-7, lr_decay=0.0, initial_accumulator_value=0.0, weight_decay=wd
        ),
    ),  # fmt: skip
    "RMSprop": (
        lambda wd: fd.RMSprop(0.01, rho=0.9, eps=1e-7, weight_decay=wd),
        lambda o, p, wd: o.RMSprop(
            p, lr=0.01, alpha=0.9, eps=1e-7, momentum=0.0, centered=False, weight_decay=wd
        ),
    ),  # fmt: skip
    "Adam": (
        lambda wd: fd.Adam(0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=wd),
        lambda o, p, wd: o.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd),
    ),
    "AdamW": (
        lambda wd: fd.AdamW(0.01, beta1=0.8, beta2=0.99, eps=1e-8, weight_decay=wd),
        lambda o, p, wd: o.AdamW(p, lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=wd),
    ),
    "Adadelta": (
        lambda wd: fd.Adadelta(1.0, rho=0.9, eps=1e-6, weight_decay=wd),
        lambda o, p, wd: o.Adadelta(p, lr=1.0, rho=0.9, eps=1e-6, weight_decay=wd),
    ),
}


def problem(seed=0, steps=6):
    """Random float64 parameters (a weight matrix and a bias) and a sequence of gradients."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((4, 3)), rng.standard_normal(3)]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(steps)]
    return params, grads


def run_fastdl(optim, params, grads):
    params = [p.copy() for p in params]
    net = FakeNet(params, None)
    optim.bind(net)
    for g in grads:
        net.grads = [a.copy() for a in g]
        optim.step()
        for given, kept in zip(g, net.grads, strict=True):  # the gradients are not changed
            np.testing.assert_array_equal(given, kept)
    return params


def run_torch(make, params, grads, wd):
    torch = pytest.importorskip("torch", reason="torch.optim is the reference for weight decay")
    ps = [torch.nn.Parameter(torch.tensor(p, dtype=torch.float64)) for p in params]
    optim = make(torch.optim, ps, wd)
    for g in grads:
        for p, a in zip(ps, g, strict=True):
            p.grad = torch.tensor(a, dtype=torch.float64)
        optim.step()
    return [p.detach().numpy() for p in ps]


@pytest.mark.parametrize("wd", [0.0, 0.05, 0.5])
@pytest.mark.parametrize("name", PAIRS)
def test_steps_match_torch_optim(name, wd):
    ours, theirs = PAIRS[name]
    params, grads = problem()
    got = run_fastdl(ours(wd), params, grads)
    want = run_torch(theirs, params, grads, wd)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", [n for n in PAIRS if n != "AdamW"])
def test_coupled_decay_is_the_gradient_of_an_l2_penalty(name):
    """Coupled decay ``wd`` is the same as adding ``wd·p`` to every gradient by hand."""
    ours, _ = PAIRS[name]
    wd = 0.3
    params, grads = problem(seed=1, steps=1)
    got = run_fastdl(ours(wd), params, grads)
    plain = ours(0.0)
    by_hand = [p.copy() for p in params]
    net = FakeNet(by_hand, [g + wd * p for g, p in zip(grads[0], params, strict=True)])
    plain.bind(net)
    plain.step()
    for a, b in zip(got, by_hand, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)


def test_adamw_decays_decoupled_and_adam_coupled():
    params, grads = problem(seed=2, steps=1)
    adamw = run_fastdl(fd.AdamW(0.01, weight_decay=0.5), params, grads)
    shrunk = [p * (1 - 0.01 * 0.5) for p in params]  # then the plain Adam step
    plain = run_fastdl(fd.Adam(0.01), shrunk, grads)
    for a, b in zip(adamw, plain, strict=True):
        np.testing.assert_array_equal(a, b)
    adam = run_fastdl(fd.Adam(0.01, weight_decay=0.5), params, grads)
    assert not np.allclose(adam[0], adamw[0])


def test_decay_comes_after_clipping():
    """As torch's clip_grad_norm_ before optimizer.step(): the penalty is not clipped."""
    params, grads = problem(seed=3, steps=1)
    got = run_fastdl(fd.SGD(0.1, clip_value=0.2, weight_decay=0.5), params, grads)
    want = [p - 0.1 * (np.clip(g, -0.2, 0.2) + 0.5 * p) for p, g in zip(params, grads[0],
                                                                     strict=True)]  # fmt: skip
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)


def test_float32_parameters_stay_float32():
    p = [np.ones(3, dtype=np.float32)]
    net = FakeNet(p, [np.full(3, 0.5, dtype=np.float32)])
    opt = fd.Adam(0.01, weight_decay=0.1)
    opt.bind(net)
    opt.step()
    assert p[0].dtype == np.float32
    assert all(s.dtype == np.float32 for s in opt.state[0].values())


@pytest.mark.parametrize("name", PAIRS)
def test_weight_decay_is_in_get_config_and_state_dict(name):
    ours, _ = PAIRS[name]
    optim = ours(0.05)
    assert optim.get_config()["weight_decay"] == 0.05
    assert optim.state_dict()["config"]["weight_decay"] == 0.05
    assert type(optim)(**optim.get_config()).get_config() == optim.get_config()


@pytest.mark.parametrize(
    "optim",
    [fd.SGD(0.1, weight_decay=0.01), fd.SGDMomentum(0.05, weight_decay=0.02),
     fd.AdaGrad(0.05, weight_decay=0.03), fd.RMSprop(0.01, weight_decay=0.04),
     fd.Adam(0.01, weight_decay=0.05), fd.AdamW(0.01, weight_decay=0.06),
     fd.Adadelta(1.0, weight_decay=0.07)],
    ids=lambda o: type(o).__name__,
)  # fmt: skip
def test_save_and_load_keep_weight_decay_and_continue_bit_for_bit(optim, rng, tmp_path):
    net = fd.NeuralNetwork([fd.Dense(4, fd.Tanh()), fd.Dense(3)], fd.SoftmaxCrossEntropy(),
                           seed=0)  # fmt: skip
    fd.Trainer(net, optim)
    x, y = rng.standard_normal((8, 5)).astype(np.float32), rng.integers(0, 3, size=8)
    for _ in range(2):
        net.train_batch(x, y)
        optim.step()
    net.save(tmp_path / "run.npz", optimizer=optim)
    back, back_optim = fd.load_with_optimizer(tmp_path / "run.npz")
    assert back_optim.weight_decay == optim.weight_decay
    assert back_optim.get_config() == optim.get_config()
    for _ in range(2):
        assert net.train_batch(x, y) == back.train_batch(x, y)
        optim.step()
        back_optim.step()
    assert all(np.array_equal(a, b) for a, b in zip(net.params(), back.params(), strict=True))


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_negative_or_non_finite_weight_decay_is_refused(bad):
    with pytest.raises(ValueError, match="SGD: weight_decay must be a finite number >= 0"):
        fd.SGD(0.1, weight_decay=bad)
    with pytest.raises(ValueError, match="AdamW: weight_decay must be a finite number >= 0"):
        fd.AdamW(weight_decay=bad)
    with pytest.raises(TypeError, match="Adam: weight_decay must be a number"):
        fd.Adam(weight_decay="0.1")
