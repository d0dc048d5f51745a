"""NeuralNetwork: float32 end to end, reproducibility, casting at the boundary, bad input."""

import numpy as np
import pytest
from toy_nets import toy_data, toy_net

import fastdl as fd

OPTIMIZERS = {
    "sgd": lambda: fd.SGD(0.1),
    "momentum": lambda: fd.SGDMomentum(0.1, momentum=0.9, nesterov=True),
    "adagrad": lambda: fd.AdaGrad(0.1),
    "rmsprop": lambda: fd.RMSprop(0.01),
    "adam": lambda: fd.Adam(0.01),
    "adamw": lambda: fd.AdamW(0.01),
    "adadelta": lambda: fd.Adadelta(1.0),
}


def make_net(seed=0, dtype=np.float32):
    return fd.NeuralNetwork(
        [fd.Dense(8, fd.Tanh(), dropout=0.8), fd.Dense(8, fd.ReLU()), fd.Dense(3)],
        fd.SoftmaxCrossEntropy(),
        seed=seed,
        dtype=dtype,
    )


def data(rng, n=40):
    return rng.standard_normal((n, 5)).astype(np.float32), rng.integers(0, 3, size=n)


@pytest.mark.parametrize("optim", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_float32_end_to_end(optim, rng):
    """Parameters, activations, gradients and optimizer state all stay float32."""
    x, y = data(rng)
    net = make_net()
    opt = optim()
    fd.Trainer(net, opt)
    for _ in range(3):
        loss = net.train_batch(x, y)
        opt.step()
    assert isinstance(loss, float)
    for layer in net.layers:
        for op in layer.operations:
            assert op.output.dtype == np.float32, op.name
            assert op.input_grad is None or op.input_grad.dtype == np.float32, op.name
    assert all(p.dtype == np.float32 for p in net.params())
    assert all(g.dtype == np.float32 for g in net.param_grads())
    for slots in opt.state.values():
        assert all(s.dtype == np.float32 for s in slots.values())
    assert net.forward(x, inference=True).dtype == np.float32


def test_float64_input_is_cast_once_at_the_boundary(rng):
    x, _ = data(rng)
    net = make_net()
    out = net.forward(x.astype(np.float64), inference=True)
    assert out.dtype == np.float32
    assert net.layers[0].input_.dtype == np.float32


def test_float64_network(rng):
    x, y = data(rng)
    net = make_net(dtype=np.float64)
    net.train_batch(x, y)
    assert all(p.dtype == np.float64 for p in net.params())


@pytest.mark.parametrize("optim", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_same_seed_same_weights_bitwise(optim, rng):
    x, y = data(rng, 100)

    def train():
        net = make_net(seed=42)
        fd.Trainer(net, optim()).fit(x, y, epochs=3, batch_size=16, seed=7, verbose=0, eval_every=1)
        return net.get_weights()

    first, second = train(), train()
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    other_seed = make_net(seed=43)
    other_seed.forward(x[:1])
    assert not np.array_equal(other_seed.params()[0], first[0])


def test_fit_twice_with_restart_is_reproducible(rng):
    x, y = data(rng, 60)
    net = make_net(seed=1)
    trainer = fd.Trainer(net, fd.Adam(0.01))
    trainer.fit(x, y, epochs=2, batch_size=16, verbose=0)
    first = net.get_weights()
    trainer.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(first, net.get_weights(), strict=True))


def test_predict_matches_forward_in_batches(rng):
    x, y = data(rng, 25)
    net = make_net()
    net.train_batch(x, y)
    full = net.forward(x, inference=True)
    # equal up to float32 rounding: BLAS may sum a 7-row block in another order than 25 rows
    np.testing.assert_allclose(net.predict(x, batch_size=7), full, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(net.predict(x, batch_size=7), net.predict(x, batch_size=7))


def test_params_and_grads_line_up(rng):
    x, y = data(rng)
    net = make_net()
    assert net.params() == []
    net.train_batch(x, y)
    shapes = [p.shape for p in net.params()]
    assert shapes == [(5, 8), (8,), (8, 8), (8,), (8, 3), (3,)]
    assert [g.shape for g in net.param_grads()] == shapes


def test_first_layer_skips_its_input_gradient(rng):
    x, y = data(rng)
    net = make_net()
    net.train_batch(x, y)
    assert net.layers[0].input_grad is None
    assert net.layers[1].input_grad is not None


def last_pass(net):
    """``(name, weakref, nbytes)`` of every output and input gradient the last pass kept."""
    import weakref

    return [
        (f"{i}.{op.name}.{attr}", weakref.ref(a), a.nbytes)
        for i, layer in enumerate(net.layers)
        for op in layer.operations
        for attr in ("output", "input_grad")
        if (a := getattr(op, attr)) is not None
    ]


def alive_at_the_next_forward(net, x, y):
    """Which of the last pass's arrays are still alive when the next step's forward pass
    starts (after ``train_batch`` has released what it releases)."""
    import gc

    kept = last_pass(net)
    seen = []
    first = net.layers[0]
    forward = first.forward

    def spy(x, inference=False):
        gc.collect()
        seen.append({name: ref() is not None for name, ref, _ in kept})
        return forward(x, inference)

    first.forward = spy
    net.train_batch(x, y)
    del first.forward
    assert len(seen) == 1
    return kept, seen[0]


@pytest.mark.parametrize("threshold", [0, 1000])
def test_a_training_step_first_frees_the_last_steps_large_arrays(threshold, rng, monkeypatch):
    """Arrays of the previous step of at least ``RELEASE_MIN_BYTES`` are freed before the next
    step's forward pass makes its own (so a step never holds two sets); smaller ones live
    until they are replaced."""
    import fastdl.network

    monkeypatch.setattr(fastdl.network, "RELEASE_MIN_BYTES", threshold)
    x, y = data(rng)
    net = make_net()
    net.train_batch(x, y)
    kept, alive = alive_at_the_next_forward(net, x, y)
    assert len(kept) >= 6
    assert any(size >= 1000 for _, _, size in kept) and any(size < 1000 for _, _, size in kept)
    assert alive == {name: size < threshold for name, _, size in kept}
    # the new step keeps its own, until the next one
    assert all(op.output is not None for layer in net.layers for op in layer.operations)
    assert net.layers[1].input_grad is not None


def test_released_operation_refuses_backward_and_keeps_its_parameters(rng):
    x, y = data(rng)
    net = make_net()
    net.train_batch(x, y)
    layer = net.layers[1]
    params = [p.copy() for p in layer.params()]
    grads = [g.copy() for g in layer.param_grads()]
    layer.release()
    assert layer.output is None and layer.input_ is None and layer.input_grad is None
    for op in layer.operations:
        assert (op.input_, op.output, op.input_grad) == (None, None, None)
    np.testing.assert_array_equal(
        np.concatenate([p.ravel() for p in layer.params()]),
        np.concatenate([p.ravel() for p in params]),
    )
    np.testing.assert_array_equal(
        np.concatenate([g.ravel() for g in layer.param_grads()]),
        np.concatenate([g.ravel() for g in grads]),
    )
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.operations[0].backward(np.zeros((40, 8), np.float32))


# -- bad input -----------------------------------------------------------------------------------


def test_wrong_feature_count(rng):
    x, y = data(rng)
    net = make_net()
    net.train_batch(x, y)
    with pytest.raises(ValueError, match=r"Dense: expected 5 input features.*\(40, 4\)"):
        net.train_batch(x[:, :4], y)


def test_wrong_rank():
    net = make_net()
    with pytest.raises(
        ValueError, match=r"Dense: expected input \(N, D\) or \(N, T, D\), got shape \(3,\)"
    ):
        net.forward(np.ones(3, dtype=np.float32))


def test_empty_input():
    with pytest.raises(ValueError, match="empty"):
        make_net().forward(np.ones((0, 5), dtype=np.float32))


def test_integer_input_is_refused_not_upcast():
    with pytest.raises(TypeError, match="floating-point input, got dtype uint8"):
        make_net().forward(np.ones((2, 5), dtype=np.uint8))


def test_mismatched_lengths(rng):
    x, y = data(rng)
    with pytest.raises(ValueError, match="x has 40 examples but y has 39"):
        make_net().train_batch(x, y[:-1])


def test_labels_out_of_range(rng):
    x, y = data(rng)
    y[3] = 3
    with pytest.raises(
        ValueError, match=r"labels must be in \[0, 3\) for 3 classes, got values in \[0, 3\]"
    ):
        make_net().train_batch(x, y)


def test_negative_labels(rng):
    x, y = data(rng)
    y[0] = -1
    with pytest.raises(ValueError, match="labels must be in"):
        make_net().train_batch(x, y)


def test_label_shape(rng):
    x, y = data(rng)
    with pytest.raises(ValueError, match=r"integer labels must have shape \(40,\)"):
        make_net().train_batch(x, y.reshape(40, 1))


def test_one_hot_labels_must_be_distributions(rng):
    x, _ = data(rng)
    bad = np.full((40, 3), 0.5, dtype=np.float32)
    with pytest.raises(ValueError, match="rows summing to 1"):
        make_net().train_batch(x, bad)


def test_constructor_checks():
    with pytest.raises(ValueError, match="layers must not be empty"):
        fd.NeuralNetwork([], fd.MeanSquaredError())
    with pytest.raises(TypeError, match=r"layers\[1\]"):
        fd.NeuralNetwork([fd.Dense(2), "dense"], fd.MeanSquaredError())
    with pytest.raises(TypeError, match="loss must be a fastdl Loss"):
        fd.NeuralNetwork([fd.Dense(2)], "mse")
    with pytest.raises(ValueError, match="float32 or float64"):
        fd.NeuralNetwork([fd.Dense(2)], fd.MeanSquaredError(), dtype=np.float16)
    layer = fd.Dense(2)
    with pytest.raises(ValueError, match="same layer object appears twice"):
        fd.NeuralNetwork([layer, layer], fd.MeanSquaredError())


def test_dense_argument_checks():
    with pytest.raises(ValueError, match="neurons must be a positive int"):
        fd.Dense(0)
    with pytest.raises(ValueError, match="keep probability"):
        fd.Dense(3, dropout=0.0)
    with pytest.raises(ValueError, match="weight_init must be one of"):
        fd.Dense(3, weight_init="xavier")
    with pytest.raises(TypeError, match="not the class"):
        fd.Dense(3, activation=fd.ReLU)


def test_shape_check_names_operation_and_shapes(rng):
    op = fd.Tanh()
    op.forward(rng.standard_normal((2, 3)))
    with pytest.raises(
        ValueError, match=r"Tanh: output_grad has shape \(3, 2\), expected \(2, 3\)"
    ):
        op.backward(np.ones((3, 2)))


def test_mse_accepts_target_vector_for_one_output(rng):
    net = fd.NeuralNetwork([fd.Dense(1)], fd.MeanSquaredError(), seed=0)
    x = rng.standard_normal((10, 3)).astype(np.float32)
    y = rng.standard_normal(10).astype(np.float32)
    assert net.train_batch(x, y) == pytest.approx(net.train_batch(x, y.reshape(-1, 1)))


def test_rejected_batch_leaves_the_random_stream_untouched(rng):
    x, y = toy_data(rng, 16)
    bad = y.copy()
    bad[0] = 7
    a, b = toy_net(dropout=0.5), toy_net(dropout=0.5)
    with pytest.raises(ValueError, match="labels must be in"):
        a.train_batch(x, bad)
    assert a.train_batch(x, y) == b.train_batch(x, y)


def test_float64_input_that_overflows_float32_is_refused_naming_the_value():
    net = make_net()
    x = np.ones((2, 4))
    x[1, 2] = -5e38
    with pytest.raises(ValueError, match=r"input value 5e\+38 does not fit the network's float32"):
        net.forward(x)
    x[1, 2] = 3e38  # below float32's largest: accepted
    assert np.isfinite(net.forward(x)).all()


@pytest.mark.parametrize("pure", [False, True], ids=["numba", "pure"])
def test_big_endian_data_and_labels_are_taken_on_both_paths(pure, rng):
    if not pure and fd.config.PURE_AT_IMPORT:
        pytest.skip("numba kernels unavailable")
    x = rng.standard_normal((6, 1, 6, 6))
    y = rng.integers(0, 3, 6)
    ids = rng.integers(0, 5, (6, 4))
    losses = {}
    with fd.config.use_pure(pure):
        for order in "<>":  # little-endian (this machine's), then big-endian
            cnn = fd.NeuralNetwork([fd.Conv2D(2, 3, activation=fd.ReLU()), fd.MaxPool2D(2),
                                    fd.Flatten(), fd.Dense(3)], fd.SoftmaxCrossEntropy(), seed=0)  # fmt: skip
            seq = fd.NeuralNetwork([fd.Embedding(5, 3), fd.LSTMLayer(4), fd.Dense(5)],
                                   fd.SoftmaxCrossEntropy(), seed=0)  # fmt: skip
            losses[order] = (
                cnn.train_batch(x.astype(order + "f8"), y.astype(order + "i8")),
                seq.train_batch(ids.astype(order + "i4"), ids.astype(order + "i2")),
            )
    assert losses[">"] == losses["<"]


def test_a_cnn_predicts_nan_for_an_image_holding_nan_on_both_paths(rng):
    net = fd.NeuralNetwork([fd.Conv2D(4, 3, activation=fd.ReLU()), fd.MaxPool2D(2),
                            fd.Flatten(), fd.Dense(3)], fd.SoftmaxCrossEntropy(), seed=0)  # fmt: skip
    x = rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    x[1, 0, 4, 4] = np.nan
    paths = [True] if fd.config.PURE_AT_IMPORT else [True, False]
    for pure in paths:
        with fd.config.use_pure(pure), np.errstate(invalid="ignore"):
            out = net.predict(x)
        assert np.isnan(out[1]).all() and np.isfinite(out[[0, 2]]).all()


def test_a_partial_release_drops_all_of_an_operations_pass_or_none(rng):
    """An operation whose large array is not its output (an LSTM returning its last state
    only) is released whole, so ``backward`` raises the documented error, not a TypeError."""
    lstm = fd.LSTMLayer(4, return_sequences=False)
    x = rng.standard_normal((2, 50, 3))
    y = lstm.forward(x)
    loop = lstm.operations[0]
    from fastdl.ops.base import nbytes

    assert nbytes(loop._saved) > y.nbytes
    lstm.release(min_bytes=y.nbytes + 1)
    assert loop.output is None and loop._saved is None
    with pytest.raises(RuntimeError, match="backward called before forward"):
        lstm.backward(np.ones_like(y))
    small = fd.LSTMLayer(4)
    small.forward(x[:, :2])
    small.release(min_bytes=1 << 30)  # nothing that large: everything kept
    assert small.operations[0].output is not None and small.operations[0]._saved is not None
