"""SoftmaxCrossEntropy(label_smoothing=ε): against its definition, against PyTorch's
F.cross_entropy(label_smoothing=ε) in float64, gradient checks, float32 on both kernel
paths, refusals, and saving."""

from __future__ import annotations

import numpy as np
import pytest

import fastdl as fd
from fastdl import config
from fastdl.testing import gradcheck

EPS = [0.0, 0.1, 0.37, 0.9]


def paths():
    """The kernel paths this process can run (the numba one unless FASTDL_PURE=1)."""
    return [True] if config.PURE_AT_IMPORT else [True, False]


def targets(kind, shape, rng):
    """Labels for logits of ``shape``: integer ids, one-hot rows, or soft rows."""
    k = shape[-1]
    ids = rng.integers(0, k, size=shape[:-1])
    if kind == "integer":
        return ids
    if kind == "one_hot":
        return np.eye(k)[ids]
    soft = rng.random(shape) + 0.05
    return soft / soft.sum(axis=-1, keepdims=True)


def definition(z, target, eps):
    """The mean over rows of −Σ_k t_k log softmax(z)_k with t = (1−ε)·y + ε/K, and its
    gradient (p·Σt − t)/M, written out in float64."""
    k = z.shape[-1]
    z = z.reshape(-1, k).astype(np.float64)
    y = np.eye(k)[target.reshape(-1)] if np.issubdtype(target.dtype, np.integer) else target
    t = (1 - eps) * y.reshape(-1, k) + eps / k
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    p = np.exp(log_p)
    m = z.shape[0]
    return -(t * log_p).sum() / m, (p * t.sum(axis=1, keepdims=True) - t) / m


KINDS = ["integer", "one_hot", "soft"]
SHAPES = {"batch1": (1, 3), "ordinary": (6, 5), "sequence": (3, 4, 6)}


@pytest.mark.parametrize("pure", paths(), ids=lambda p: "numpy" if p else "numba")
@pytest.mark.parametrize("eps", EPS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_value_and_gradient_match_the_definition(shape, kind, eps, pure, rng):
    z = rng.standard_normal(shape) * 3
    target = targets(kind, shape, rng)
    loss = fd.SoftmaxCrossEntropy(label_smoothing=eps)
    with config.use_pure(pure):
        value, grad = loss.forward(z, target), loss.backward()
    want, want_grad = definition(z, target, eps)
    assert value == pytest.approx(want, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(grad, want_grad.reshape(shape), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("eps", [0.1, 0.37])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_gradcheck(shape, kind, eps, rng):
    target = targets(kind, shape, rng)
    gradcheck(fd.SoftmaxCrossEntropy(label_smoothing=eps), rng.standard_normal(shape) * 3, target)


def test_gradcheck_of_a_network_trained_with_smoothing(rng):
    net = fd.NeuralNetwork([fd.Dense(5, fd.Tanh()), fd.Dense(4)],
                           fd.SoftmaxCrossEntropy(label_smoothing=0.2), seed=0,
                           dtype=np.float64)  # fmt: skip
    gradcheck(net, rng.standard_normal((6, 3)), rng.integers(0, 4, size=6))


@pytest.mark.parametrize("eps", EPS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_matches_pytorch_cross_entropy(shape, kind, eps, rng):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for label smoothing")
    z = rng.standard_normal(shape) * 3
    target = targets(kind, shape, rng)
    loss = fd.SoftmaxCrossEntropy(label_smoothing=eps)
    value, grad = loss.forward(z, target), loss.backward()

    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    tt = torch.tensor(target)
    if len(shape) == 3:  # torch wants the classes on axis 1: (N, C, T)
        logits = zt.permute(0, 2, 1)
        tt = tt if kind == "integer" else tt.permute(0, 2, 1)
    else:
        logits = zt
    ref = torch.nn.functional.cross_entropy(logits, tt, label_smoothing=eps)
    ref.backward()
    assert abs(value - ref.item()) <= 1e-12
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("pure", paths(), ids=lambda p: "numpy" if p else "numba")
@pytest.mark.parametrize("m", [7, 4000], ids=["compiled-loop", "vectorised"])
def test_float32_stays_float32_and_close_to_float64(m, pure, rng):
    """Both sides of the numba twin's LOOP_MAX_SIZE hand-over, in float32."""
    z = (rng.standard_normal((m, 10)) * 4).astype(np.float32)
    y = rng.integers(0, 10, size=m)
    loss = fd.SoftmaxCrossEntropy(label_smoothing=0.1)
    with config.use_pure(pure):
        value, grad = loss.forward(z, y), loss.backward()
    want, want_grad = definition(z, y, 0.1)
    assert grad.dtype == np.float32
    assert value == pytest.approx(want, rel=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-6 / m)


def test_no_smoothing_gives_the_plain_loss_bit_for_bit(rng):
    z = rng.standard_normal((9, 4)).astype(np.float32)
    y = rng.integers(0, 4, size=9)
    plain, zero = fd.SoftmaxCrossEntropy(), fd.SoftmaxCrossEntropy(label_smoothing=0.0)
    assert plain.forward(z, y) == zero.forward(z, y)
    np.testing.assert_array_equal(plain.backward(), zero.backward())


def test_stable_for_huge_logits():
    z = np.array([[1000.0, 0.0, -1000.0]], dtype=np.float32)
    loss = fd.SoftmaxCrossEntropy(label_smoothing=0.3)
    # (1 − ε)·0 + ε·(lse − mean z) = 0.3·1000, with lse = 1000
    assert loss.forward(z, np.array([0])) == pytest.approx(300.0, rel=1e-6)
    assert np.all(np.isfinite(loss.backward()))


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan"), float("inf")])
def test_label_smoothing_outside_zero_one_is_refused(bad):
    with pytest.raises(
        ValueError, match=r"SoftmaxCrossEntropy: label_smoothing must be in \[0, 1\)"
    ):
        fd.SoftmaxCrossEntropy(label_smoothing=bad)
    with pytest.raises(TypeError, match="SoftmaxCrossEntropy: label_smoothing must be a number"):
        fd.SoftmaxCrossEntropy(label_smoothing="0.1")


def test_config_repr_and_a_saved_network_keep_it(rng, tmp_path):
    loss = fd.SoftmaxCrossEntropy(label_smoothing=0.1)
    assert loss.get_config() == {"label_smoothing": 0.1}
    assert repr(loss) == "SoftmaxCrossEntropy(label_smoothing=0.1)"
    assert repr(fd.SoftmaxCrossEntropy()) == "SoftmaxCrossEntropy()"
    assert repr(fd.MeanSquaredError()) == "MeanSquaredError()"
    net = fd.NeuralNetwork([fd.Dense(4)], loss, seed=0)
    x, y = rng.standard_normal((5, 3)).astype(np.float32), rng.integers(0, 4, size=5)
    before = net.train_batch(x, y)
    net.save(tmp_path / "m.npz")
    back = fd.load(tmp_path / "m.npz")
    assert isinstance(back.loss, fd.SoftmaxCrossEntropy)
    assert back.loss.label_smoothing == 0.1
    assert back.train_batch(x, y) == before


def test_trainer_reports_the_smoothed_loss_and_the_plain_accuracy(rng):
    x, y = rng.standard_normal((40, 3)).astype(np.float32), rng.integers(0, 3, size=40)
    net = fd.NeuralNetwork([fd.Dense(3)], fd.SoftmaxCrossEntropy(label_smoothing=0.2), seed=0)
    trainer = fd.Trainer(net, fd.SGD(0.1))
    trainer.fit(x, y, epochs=1, verbose=0)
    got = trainer.evaluate(x, y)
    logits = net.forward(x, inference=True)
    want, _ = definition(logits, y, 0.2)
    assert got["loss"] == pytest.approx(want, rel=1e-5)
    assert got["accuracy"] == np.mean(logits.argmax(axis=1) == y)
