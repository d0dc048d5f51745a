"""Operations used on their own check their input, and fit checks every label before training."""

import numpy as np
import pytest

import fastdl as fd
from fastdl.ops import Conv2DOp, Conv2DTransposeOp, GRULoop, LSTMLoop, MaxPool2DOp, RNNLoop


def loop_params(cls, d=3, h=4, seed=0):
    rng = np.random.default_rng(seed)
    gates = {RNNLoop: 1, GRULoop: 3, LSTMLoop: 4}[cls]
    params = [rng.standard_normal((d, gates * h)), rng.standard_normal((h, gates * h))]
    params.append(np.zeros(gates * h))
    if cls is GRULoop:
        params.append(np.zeros(gates * h))
    return params


@pytest.mark.parametrize("cls", [RNNLoop, GRULoop, LSTMLoop], ids=lambda c: c.__name__)
def test_recurrent_loops_check_input_and_state(cls):
    op = cls(loop_params(cls))
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match=rf"{cls.__name__}: expected input \(N, T, 3\)"):
        op.forward(rng.standard_normal((2, 4, 5)))
    with pytest.raises(ValueError, match=rf"{cls.__name__}: expected input \(N, T, 3\)"):
        op.forward(rng.standard_normal((2, 3)))
    op.initial_state = (np.zeros((2, 4)),) * op.n_states
    with pytest.raises(ValueError, match=r"initial_state must be .* of shape \(3, 4\)"):
        op.forward(rng.standard_normal((3, 4, 3)))


@pytest.mark.parametrize("cls", [RNNLoop, GRULoop, LSTMLoop], ids=lambda c: c.__name__)
def test_recurrent_loops_start_each_batch_size_from_its_own_zeros(cls):
    """Without initial_state, every call starts from zeros of its own batch size."""
    rng = np.random.default_rng(2)
    x2, x3 = rng.standard_normal((2, 4, 3)), rng.standard_normal((3, 4, 3))
    used = cls(loop_params(cls))
    used.forward(x2)
    fresh = cls(loop_params(cls))
    np.testing.assert_array_equal(used.forward(x3), fresh.forward(x3))


def test_conv_and_pool_ops_check_input():
    conv = Conv2DOp(np.zeros((4, 3, 3, 3)), np.zeros(4), stride=1, pad=(0, 0, 0, 0))
    with pytest.raises(ValueError, match=r"Conv2DOp: expected input \(N, 3, H, W\)"):
        conv.forward(np.zeros((2, 2, 5, 5)))
    with pytest.raises(
        ValueError, match=r"Conv2DOp: kernel 3x3 is larger than the padded input 2x5"
    ):
        conv.forward(np.zeros((2, 3, 2, 5)))
    pool = MaxPool2DOp(3, 2)
    with pytest.raises(ValueError, match=r"MaxPool2DOp: expected input .* window 3"):
        pool.forward(np.zeros((1, 1, 2, 2)))
    up = Conv2DTransposeOp(np.zeros((3, 4, 3, 3)), np.zeros(4), stride=2, pad=(2, 2, 0, 0))
    with pytest.raises(ValueError, match=r"Conv2DTransposeOp: expected input \(N, 3, H, W\)"):
        up.forward(np.zeros((2, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"Conv2DTransposeOp: the output would be -1x11"):
        up.forward(np.zeros((2, 3, 1, 5)))


def test_fit_checks_every_one_hot_row_before_training():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 50)]
    for bad_set in ("train", "test"):
        net = fd.NeuralNetwork([fd.Dense(3)], fd.SoftmaxCrossEntropy(), seed=0)
        bad = y.copy()
        bad[45] = [0.5, 0.9, 0.0]  # the last batch's row: found before the first step
        y_train, y_test = (bad, y) if bad_set == "train" else (y, bad)
        trainer = fd.Trainer(net, fd.SGD(0.1))
        with pytest.raises(ValueError, match=rf"Trainer.fit: y_{bad_set}: .*summing to 1"):
            trainer.fit(x, y_train, x, y_test, epochs=1, batch_size=10, verbose=0)
        assert trainer.optim.iterations == 0


@pytest.mark.parametrize("where", ["x_train", "y_train", "x_test", "y_test"])
def test_fit_rejects_nan_and_inf_in_the_data_before_training(where):
    rng = np.random.default_rng(4)
    data = {
        "x_train": rng.standard_normal((30, 3)).astype(np.float32),
        "y_train": rng.standard_normal((30, 1)).astype(np.float32),
        "x_test": rng.standard_normal((10, 3)).astype(np.float32),
        "y_test": rng.standard_normal((10, 1)).astype(np.float32),
    }
    data[where][7, 0] = np.nan
    data[where][3, 0] = np.inf
    trainer = fd.Trainer(
        fd.NeuralNetwork([fd.Dense(1)], fd.MeanSquaredError(), seed=0), fd.SGD(0.1)
    )
    with pytest.raises(ValueError, match=rf"Trainer.fit: {where} holds 2 NaN or infinite"):
        trainer.fit(**data, epochs=1, verbose=0)
    assert trainer.optim.iterations == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda v: fd.Dense(3, dropout=v),
        lambda v: fd.Conv2D(2, 3, dropout=v),
        lambda v: fd.Conv2DTranspose(2, 3, dropout=v),
        lambda v: fd.MaxPool2D(2, dropout=v),
        lambda v: fd.LSTMLayer(3, dropout=v),
        lambda v: fd.ops.Dropout(v),
    ],
    ids=["Dense", "Conv2D", "Conv2DTranspose", "MaxPool2D", "LSTMLayer", "Dropout"],
)
def test_keep_probability_is_a_number_in_0_1(make):
    for bad in (True, False, "0.5", None):
        with pytest.raises(TypeError, match=r"is the keep probability, a number in \(0, 1\]"):
            make(bad)
    for bad in (0.0, -0.2, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"is the keep probability, in \(0, 1\]"):
            make(bad)
    make(1)  # an int 1 keeps everything


def test_set_weights_takes_numpy_arrays_only():
    net = fd.NeuralNetwork([fd.Dense(2)], fd.MeanSquaredError(), seed=0)
    net.forward(np.zeros((1, 3), np.float32))
    weights = net.get_weights()
    with pytest.raises(TypeError, match=r"set_weights: array 0 must be a numpy array, got list"):
        net.set_weights([weights[0].tolist(), weights[1]])


def test_a_rejected_batch_leaves_the_carried_state_as_it_was():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 3, 2)).astype(np.float32)
    net = fd.NeuralNetwork(
        [fd.LSTMLayer(3, stateful=True, return_sequences=False), fd.Dense(2)],
        fd.SoftmaxCrossEntropy(),
        seed=0,
    )
    net.train_batch(x, np.array([0, 1, 0, 1]))
    before = [s.copy() for s in net.layers[0].state]
    with pytest.raises(ValueError, match="labels must be in"):
        net.train_batch(x, np.array([0, 1, 0, 7]))
    for s, b in zip(net.layers[0].state, before, strict=True):
        np.testing.assert_array_equal(s, b)


def test_ops_check_their_input_on_the_forward_pass():
    with pytest.raises(
        ValueError, match=r"BiasAdd: expected input \(\.\.\., 3\) for B \(3,\), got \(4, 1\)"
    ):
        fd.BiasAdd(np.zeros(3)).forward(np.ones((4, 1)))
    with pytest.raises(ValueError, match=r"WeightMultiply: expected input \(\.\.\., 5\)"):
        fd.WeightMultiply(np.zeros((5, 2))).forward(np.ones((4, 3)))
