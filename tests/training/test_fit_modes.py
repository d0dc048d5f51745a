"""fit's modes: stateful streams, batches in order, validation_split, and evaluate."""

import numpy as np
import pytest

import fastdl as fd

V, T, STREAMS = 7, 5, 4


def text(n=700, seed=0):
    return np.random.default_rng(seed).integers(0, V, n)


def lstm_net(seed=0, dropout=0.8):
    return fd.NeuralNetwork(
        [fd.LSTMLayer(6, stateful=True, dropout=dropout), fd.Dense(V)],
        fd.SoftmaxCrossEntropy(), seed=seed,
    )  # fmt: skip


def windows(codes):
    ids, y = fd.datasets.stream_windows(codes, STREAMS, T)
    return np.eye(V, dtype=np.float32)[ids], y


def test_stream_windows_lays_out_streams_batch_by_batch():
    codes = np.arange(103)
    x, y = fd.datasets.stream_windows(codes, 4, 6)
    rows = codes[:100].reshape(4, 25)  # four contiguous streams of 25
    k = len(range(0, 25 - 6, 6))
    assert x.shape == y.shape == (4 * k, 6)
    for window in range(k):
        for stream in range(4):
            s = window * 6
            assert list(x[window * 4 + stream]) == list(rows[stream, s : s + 6])
            assert list(y[window * 4 + stream]) == list(rows[stream, s + 1 : s + 7])
    with pytest.raises(ValueError, match="too short for one window of seq_len=6"):
        fd.datasets.stream_windows(np.arange(20), 4, 6)
    with pytest.raises(TypeError, match="integer"):
        fd.datasets.stream_windows(np.zeros(100), 4, 6)


def test_stateful_fit_is_the_truncated_bptt_loop_bit_for_bit():
    """What the char-lstm recipe ran by hand: streams in order, state carried between
    batches (reset at each epoch), one step per batch, evaluation over stateful streams."""
    x, y = windows(text())
    xv, yv = windows(text(300, seed=1))
    fitted = lstm_net()
    trainer = fd.Trainer(fitted, fd.Adam(0.01))
    history = trainer.fit(x, y, xv, yv, epochs=3, eval_every=1, batch_size=STREAMS, verbose=0,
                          shuffle=False, stateful=True, early_stopping=False)  # fmt: skip

    by_hand = lstm_net()
    optim = fd.Adam(0.01)
    fd.Trainer(by_hand, optim)
    by_hand.build(x.shape[1:])
    val_losses = []
    for _epoch in range(3):
        by_hand.reset_state()
        for b in range(0, len(x), STREAMS):
            by_hand.train_batch(x[b : b + STREAMS], y[b : b + STREAMS])
            optim.step()
        by_hand.reset_state()
        total = 0.0
        for b in range(0, len(xv), STREAMS):
            out = by_hand.forward(xv[b : b + STREAMS], inference=True)
            total += by_hand.loss.forward(out, yv[b : b + STREAMS]) * yv[b : b + STREAMS].size
        val_losses.append(total / yv.size)
        by_hand.reset_state()
    assert all(np.array_equal(a, b) for a, b in
               zip(fitted.params(), by_hand.params(), strict=True))  # fmt: skip
    assert history.val_loss == pytest.approx(val_losses, rel=1e-12)
    assert fitted.layers[0].state is None  # nothing carried out of fit


def test_stateful_evaluation_carries_state_and_differs_from_resetting():
    x, y = windows(text())
    net = lstm_net()
    trainer = fd.Trainer(net, fd.Adam(0.01))
    trainer.fit(x, y, epochs=2, batch_size=STREAMS, verbose=0, shuffle=False, stateful=True)
    carried = trainer.evaluate(x, y, batch_size=STREAMS, stateful=True)
    fresh = trainer.evaluate(x, y, batch_size=STREAMS)
    assert set(carried) == {"loss", "accuracy"} and carried["loss"] != fresh["loss"]


def test_stateful_mistakes_are_refused_with_what_to_do():
    x, y = windows(text())
    plain = fd.NeuralNetwork([fd.LSTMLayer(6), fd.Dense(V)], fd.SoftmaxCrossEntropy(), seed=0)
    cases = [
        (plain, dict(shuffle=False), "no layer of the network was built with stateful=True"),
        (lstm_net(), dict(), "pass shuffle=False too"),
        (lstm_net(), dict(shuffle=False, batch_size=5), "not a multiple of 5"),
        (lstm_net(), dict(shuffle=False, eval_batch_size=8), "eval_batch_size=8 would cut"),
    ]
    for net, kwargs, message in cases:
        trainer = fd.Trainer(net, fd.SGD(0.1))
        kwargs = {"batch_size": STREAMS, **kwargs}
        with pytest.raises(ValueError, match=message):
            trainer.fit(x, y, epochs=1, verbose=0, stateful=True, **kwargs)
        assert trainer.optim.iterations == 0
    with pytest.raises(ValueError, match="x_test has 6 rows, not a multiple of 4"):
        fd.Trainer(lstm_net(), fd.SGD(0.1)).fit(x, y, x[:6], y[:6], epochs=1, verbose=0,
                                                batch_size=STREAMS, shuffle=False,
                                                stateful=True)  # fmt: skip


def classification(n=100, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, (x[:, 0] - x[:, 2] > 0).astype(np.int64)


def dense_net(seed=0):
    return fd.NeuralNetwork([fd.Dense(8, fd.Tanh()), fd.Dense(2)], fd.SoftmaxCrossEntropy(),
                            seed=seed)  # fmt: skip


def test_shuffle_false_trains_batches_in_order_every_epoch():
    x, y = classification(40)
    net = dense_net()
    firsts = []
    real = net.train_batch
    net.train_batch = lambda xb, yb: firsts.append(xb[0].copy()) or real(xb, yb)
    fd.Trainer(net, fd.SGD(0.1)).fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
    assert all(np.array_equal(f, x[i]) for f, i in zip(firsts, [0, 16, 32] * 2, strict=True))


def test_validation_split_takes_the_last_fraction_before_shuffling():
    x, y = classification()
    a, b = dense_net(), dense_net()
    common = dict(epochs=3, eval_every=1, batch_size=16, verbose=0)
    h_split = fd.Trainer(a, fd.SGD(0.1)).fit(x, y, validation_split=0.2, **common)
    h_given = fd.Trainer(b, fd.SGD(0.1)).fit(x[:80], y[:80], x[80:], y[80:], **common)
    assert h_split.history == h_given.history and h_split.best_epoch == h_given.best_epoch
    assert all(np.array_equal(p, q) for p, q in zip(a.params(), b.params(), strict=True))
    trainer = fd.Trainer(dense_net(), fd.SGD(0.1))
    with pytest.raises(ValueError, match="x_test/y_test or validation_split, not both"):
        trainer.fit(x, y, x, y, validation_split=0.1, verbose=0)
    for bad in (0, 1, 1.5, -0.1, "0.1", True):
        with pytest.raises(ValueError, match="validation_split must be a fraction in"):
            trainer.fit(x, y, validation_split=bad, verbose=0)
    with pytest.raises(ValueError, match="leaves 100 to train on and 0 to validate"):
        trainer.fit(x, y, validation_split=1e-17, verbose=0)


def test_stateful_validation_split_keeps_whole_batches_of_streams():
    x, y = windows(text())  # 4 streams × 34 windows = 136 rows
    trainer = fd.Trainer(lstm_net(), fd.SGD(0.1))
    seen = []
    real = trainer._evaluate
    trainer._evaluate = lambda xv, yv, *a, **k: seen.append(len(xv)) or real(xv, yv, *a, **k)
    trainer.fit(x, y, epochs=1, batch_size=STREAMS, verbose=0, shuffle=False, stateful=True,
                validation_split=0.1)  # fmt: skip
    assert seen == [136 - 120]  # int(136 * 0.9) = 122, rounded down to whole batches: 120


def test_evaluate_gives_loss_and_accuracy_and_checks_its_input():
    x, y = classification()
    trainer = fd.Trainer(dense_net(), fd.SGD(0.1))
    trainer.fit(x, y, epochs=2, verbose=0)
    result = trainer.evaluate(x, y, batch_size=7)
    logits = trainer.net.predict(x)
    assert result["accuracy"] == np.mean(logits.argmax(1) == y)
    assert result["loss"] == pytest.approx(trainer.net.loss.forward(logits, y), rel=1e-6)
    mse = fd.NeuralNetwork([fd.Dense(1)], fd.MeanSquaredError(), seed=0)
    reg = fd.Trainer(mse, fd.SGD(0.01))
    yr = x[:, :1] * 2
    reg.fit(x, yr, epochs=1, verbose=0)
    assert set(reg.evaluate(x, yr)) == {"loss"}
    with pytest.raises(ValueError, match="Trainer.evaluate: x_ has 100 examples but y_ has 99"):
        trainer.evaluate(x, y[:-1])
    with pytest.raises(ValueError, match="Trainer.evaluate: batch_size must be"):
        trainer.evaluate(x, y, batch_size=0)


def test_history_as_keras_dict_and_its_plot(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    x, y = classification()
    history = fd.Trainer(dense_net(), fd.SGD(0.1)).fit(
        x, y, epochs=4, eval_every=1, verbose=0, validation_split=0.2, early_stopping=False
    )
    d = history.history
    assert d == {"epoch": [1, 2, 3, 4], "loss": history.train_loss,
                 "val_loss": history.val_loss, "val_accuracy": history.val_accuracy}  # fmt: skip
    d["loss"].append(0.0)
    assert len(history.train_loss) == 4  # new lists, not views
    path = tmp_path / "curves.png"
    history.plot(path, title="toy")
    picture = matplotlib.image.imread(path)
    assert picture.shape[1] > picture.shape[0] > 300  # two panels side by side
    assert picture[..., :3].std() > 0.05  # curves, not a blank canvas
    with pytest.raises(ValueError, match="no evaluation was recorded"):
        fd.History().plot(tmp_path / "none.png")
