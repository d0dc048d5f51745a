"""Stateful recurrent layers inside Trainer.fit, predict and gradcheck.

fit shuffles examples, so its batches hold unrelated sequences: every batch (training and
evaluation) starts from zero state, partial batches work, and fit leaves no state behind.
predict continues from the carried state, so it refuses to split a call into batches.
"""

import numpy as np
import pytest

import fastdl as fd
from fastdl.testing import gradcheck

CELLS = [fd.RNNLayer, fd.GRULayer, fd.LSTMLayer]


def sequences(n=10, t=5, d=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, t, d)).astype(np.float32)
    return x, (x.sum(axis=(1, 2)) > 0).astype(np.int64)


def make(cell, stateful=True):
    return fd.NeuralNetwork(
        [cell(4, stateful=stateful, return_sequences=False), fd.Dense(2)],
        fd.SoftmaxCrossEntropy(),
        seed=0,
    )


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.__name__)
def test_fit_uses_partial_batches_and_leaves_no_state(cell):
    x, y = sequences()
    net = make(cell)
    trainer = fd.Trainer(net, fd.SGD(0.1))
    # 10 examples in batches of 4 (last one 2), evaluation in batches of 3 (last one 1)
    trainer.fit(x, y, x, y, epochs=2, eval_every=1, batch_size=4, eval_batch_size=3, verbose=0)
    assert net.layers[0].state is None
    trainer.fit(x, y, epochs=1, batch_size=4, verbose=0, restart=False)  # a second fit
    assert net.layers[0].state is None
    assert net.predict(x[:4], batch_size=4).shape == (4, 2)


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.__name__)
def test_fit_trains_a_stateful_network_exactly_as_a_stateless_one(cell):
    """Zero state at every batch: the same losses and weights as stateful=False."""
    x, y = sequences(n=12)
    runs = []
    for stateful in (True, False):
        net = make(cell, stateful)
        history = fd.Trainer(net, fd.SGD(0.1)).fit(
            x, y, x, y, epochs=3, eval_every=1, batch_size=5, eval_batch_size=4, verbose=0
        )
        runs.append((history.train_loss, history.val_loss, net.get_weights()))
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]
    for a, b in zip(runs[0][2], runs[1][2], strict=True):
        np.testing.assert_array_equal(a, b)


def test_predict_refuses_to_split_a_stateful_call_into_batches():
    x, _ = sequences()
    net = make(fd.LSTMLayer)
    with pytest.raises(ValueError, match=r"LSTMLayer carry state from batch to batch"):
        net.predict(x, batch_size=4)
    first = net.predict(x[:4], batch_size=4)  # one batch: continues from the carried state
    second = net.predict(x[:4], batch_size=4)
    assert not np.allclose(first, second)
    net.reset_state()
    np.testing.assert_array_equal(net.predict(x[:4], batch_size=4), first)


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.__name__)
def test_gradcheck_of_a_layer_that_carries_state(cell):
    """Every checked pass starts from the same carried state (and the state gradient is right
    too: the check runs from a non-zero state)."""
    x = np.random.default_rng(1).standard_normal((2, 4, 3))
    layer = cell(3, stateful=True)
    layer.bind(np.random.default_rng(2), np.float64)
    layer.forward(x)  # now it carries a non-zero state
    assert layer.state is not None
    gradcheck(layer, x)
    net = fd.NeuralNetwork(
        [cell(3, stateful=True), fd.Dense(2)], fd.MeanSquaredError(), seed=0, dtype=np.float64
    )
    net.forward(x)
    gradcheck(net, x, target=np.random.default_rng(3).standard_normal((2, 4, 2)))
