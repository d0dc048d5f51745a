"""Optimizers against update rules written out by hand, decay, and clipping."""

import math

import numpy as np
import pytest

import fastdl as fd


class FakeNet:
    """Just enough of a network for an optimizer: fixed parameters and gradient sequences."""

    def __init__(self, params, grads):
        self._params, self.grads = params, grads

    def params(self):
        return self._params

    def param_grads(self):
        return self.grads


def run(optim, steps=3, seed=0):
    rng = np.random.default_rng(seed)
    p = [rng.standard_normal((3, 2)), rng.standard_normal(2)]
    start = [a.copy() for a in p]
    grads = [[rng.standard_normal(a.shape) for a in p] for _ in range(steps)]
    net = FakeNet(p, None)
    optim.bind(net)
    for g in grads:
        net.grads = g
        optim.step()
    return start, grads, p


def reference(rule, start, grads):
    """Apply ``rule(t, p, g, state)`` by hand in float64."""
    params = [a.copy() for a in start]
    states = [{} for _ in params]
    for t, gs in enumerate(grads, start=1):
        for i, g in enumerate(gs):
            params[i] = rule(t, params[i], g, states[i])
    return params


def sgd(t, p, g, s):
    return p - 0.1 * g


def momentum(t, p, g, s):
    s["v"] = 0.9 * s.get("v", 0) + 0.1 * g
    return p - s["v"]


def nesterov(t, p, g, s):
    s["v"] = 0.9 * s.get("v", 0) + 0.1 * g
    return p - (0.9 * s["v"] + 0.1 * g)


def adagrad(t, p, g, s):
    s["s"] = s.get("s", 0) + g * g
    return p - 0.1 * g / (np.sqrt(s["s"]) + 1e-7)


def rmsprop(t, p, g, s):
    s["s"] = 0.9 * s.get("s", 0) + 0.1 * g * g
    return p - 0.01 * g / (np.sqrt(s["s"]) + 1e-7)


def adam(t, p, g, s, wd=0.0):
    p = p * (1 - 0.01 * wd)
    s["m"] = 0.9 * s.get("m", 0) + 0.1 * g
    s["v"] = 0.999 * s.get("v", 0) + 0.001 * g * g
    m_hat, v_hat = s["m"] / (1 - 0.9**t), s["v"] / (1 - 0.999**t)
    return p - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8)


def adadelta(t, p, g, s):
    s["s"] = 0.9 * s.get("s", 0) + 0.1 * g * g
    delta = np.sqrt(s.get("u", 0) + 1e-6) / np.sqrt(s["s"] + 1e-6) * g
    s["u"] = 0.9 * s.get("u", 0) + 0.1 * delta * delta
    return p - 1.0 * delta


CASES = {
    "sgd": (lambda: fd.SGD(0.1), sgd),
    "momentum": (lambda: fd.SGDMomentum(0.1, momentum=0.9), momentum),
    "nesterov": (lambda: fd.SGDMomentum(0.1, momentum=0.9, nesterov=True), nesterov),
    "adagrad": (lambda: fd.AdaGrad(0.1), adagrad),
    "rmsprop": (lambda: fd.RMSprop(0.01), rmsprop),
    "adam": (lambda: fd.Adam(0.01), adam),
    "adamw": (
        lambda: fd.AdamW(0.01, weight_decay=0.1),
        lambda t, p, g, s: adam(t, p, g, s, wd=0.1),
    ),
    "adadelta": (lambda: fd.Adadelta(1.0), adadelta),
}


@pytest.mark.parametrize(("make", "rule"), CASES.values(), ids=CASES.keys())
def test_update_rule(make, rule):
    start, grads, got = run(make())
    expected = reference(rule, start, grads)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_clip_value():
    start, grads, got = run(fd.SGD(0.1, clip_value=0.5))
    expected = reference(lambda t, p, g, s: p - 0.1 * np.clip(g, -0.5, 0.5), start, grads)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_clip_norm_scales_all_gradients_together():
    def rule_all(start, grads, limit):
        params = [a.copy() for a in start]
        for gs in grads:
            norm = math.sqrt(sum(float((g * g).sum()) for g in gs))
            scale = limit / (norm + 1e-6) if norm > limit else 1.0
            params = [p - 0.1 * g * scale for p, g in zip(params, gs, strict=True)]
        return params

    start, grads, got = run(fd.SGD(0.1, clip_norm=0.3))
    for a, b in zip(got, rule_all(start, grads, 0.3), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize(
    ("decay", "expected"),
    [
        ("linear", [0.2, 0.15, 0.1, 0.05]),
        ("exponential", [0.2, 0.2 * 0.25 ** (1 / 3), 0.2 * 0.25 ** (2 / 3), 0.05]),
    ],
)
def test_lr_decay_per_epoch(decay, expected):
    opt = fd.SGDMomentum(0.2, final_lr=0.05, decay_type=decay)
    opt.setup_decay(epochs=4)
    seen = []
    for _ in range(4):
        seen.append(opt.lr)
        opt.decay_lr()
    np.testing.assert_allclose(seen, expected, rtol=1e-12)


def test_argument_checks():
    with pytest.raises(ValueError, match="SGD: lr must be a positive finite number"):
        fd.SGD(-1)
    with pytest.raises(ValueError, match="final_lr and decay_type go together"):
        fd.SGDMomentum(0.1, final_lr=0.01)
    with pytest.raises(ValueError, match="decay_type must be"):
        fd.SGD(0.1, final_lr=0.01, decay_type="cosine")
    with pytest.raises(ValueError, match="momentum must be in"):
        fd.SGDMomentum(0.1, momentum=1.5)
    with pytest.raises(ValueError, match="clip_norm must be a positive"):
        fd.Adam(clip_norm=0)


def test_step_needs_a_network():
    with pytest.raises(RuntimeError, match="bind a network first"):
        fd.SGD(0.1).step()


def test_norm_clipping_survives_float32_overflow():
    class Net:
        def __init__(self):
            self.p = [np.ones(4, dtype=np.float32)]
            self.g = [np.full(4, 2e20, dtype=np.float32)]

        def params(self):
            return self.p

        def param_grads(self):
            return self.g

    net = Net()
    opt = fd.SGD(0.05, clip_norm=1.0)
    opt.bind(net)
    opt.step()
    np.testing.assert_allclose(net.p[0], 1.0 - 0.05 * 0.5, rtol=1e-5)  # unit-norm step
