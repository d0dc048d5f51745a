"""fastdl.book's layers, losses and network: the book's defaults, initial weights bit for bit,
correct gradients, and the same operations (kernels) as fastdl's own layers."""

import numpy as np
import pytest

import fastdl as fd
from fastdl.book.activations import Linear, ReLU, Sigmoid, Tanh
from fastdl.book.conv import Conv2D_Op
from fastdl.book.layers import Conv2D, Dense
from fastdl.book.losses import MeanSquaredError, SoftmaxCrossEntropy
from fastdl.book.network import NeuralNetwork
from fastdl.book.optimizers import SGD
from fastdl.book.train import Trainer
from fastdl.ops.conv import Conv2DOp
from fastdl.testing import gradcheck
from tests.interruptions import Stop, fail_at_batch


def book_draws(seed, shapes, scale):
    """What the book's Dense._setup_layer draws: reseed, then weights, then biases."""
    np.random.seed(seed)
    return [np.random.normal(loc=0, scale=scale, size=s) for s in shapes]


@pytest.mark.parametrize("init, scale", [("standard", None), ("glorot", "book")])
def test_dense_initial_weights_are_the_books_draws_bit_for_bit(init, scale):
    net = NeuralNetwork(
        [Dense(13, Sigmoid(), weight_init=init), Dense(7, Tanh(), weight_init=init),
         Dense(1, Linear(), weight_init=init)],
        MeanSquaredError(), seed=20190501,
    )  # fmt: skip
    net.forward(np.zeros((2, 5)))
    for layer, (d, h) in zip(net.layers, [(5, 13), (13, 7), (7, 1)], strict=True):
        s = 1.0 if scale is None else 2 / (d + h)
        w, b = book_draws(20190501, [(d, h), (1, h)], s)
        assert layer.params[0].dtype == np.float64
        np.testing.assert_array_equal(layer.params[0], w)
        np.testing.assert_array_equal(layer.params[1], b.ravel())
        assert layer.seed == 20190501


def test_conv_initial_weights_follow_fit_seed_and_shuffle_bit_for_bit():
    """The book's Conv2D does not reseed: fit seeds the global generator, permutes the data,
    then the first batch draws the filters; Dense then reseeds with the network's seed."""
    x = np.random.default_rng(0).normal(size=(12, 1, 6, 6))
    y = np.eye(3)[np.arange(12) % 3]
    net = NeuralNetwork([Conv2D(4, 3, weight_init="glorot", flatten=True, activation=Tanh()),
                         Dense(3)], SoftmaxCrossEntropy(), seed=7)  # fmt: skip
    # a learning rate that cannot move float64 weights of this size: the initial ones stay
    Trainer(net, SGD(lr=1e-300)).fit(x, y, x, y, epochs=1, eval_every=1, seed=11, batch_size=5)
    np.random.seed(11)
    np.random.permutation(12)
    conv = np.random.normal(loc=0, scale=2 / (1 + 4), size=(1, 4, 3, 3))
    np.testing.assert_array_equal(net.layers[0].params[0], conv)
    w, b = book_draws(7, [(4 * 36, 3), (1, 3)], 1.0)
    np.testing.assert_array_equal(net.layers[1].params[0], w)
    np.testing.assert_array_equal(net.layers[1].params[1], b.ravel())


def test_book_glorot_scale_differs_from_glorot():
    """The book's "glorot" standard deviation is 2/(fan_in+fan_out); fastdl's is its root."""
    book = NeuralNetwork([Dense(400, weight_init="glorot")], seed=0)
    book.forward(np.zeros((1, 600)))
    modern = fd.NeuralNetwork([fd.Dense(400, weight_init="glorot")], fd.MeanSquaredError(),
                              seed=0, dtype=np.float64)  # fmt: skip
    modern.forward(np.zeros((1, 600)))
    assert np.std(book.params()[0]) == pytest.approx(2 / 1000, rel=0.01)
    assert np.std(modern.params()[0]) == pytest.approx((2 / 1000) ** 0.5, rel=0.01)
    assert not modern.params()[1].any() and book.params()[1].std() > 0  # book: biases drawn


def test_book_defaults():
    net = NeuralNetwork([Dense(3)])
    assert net.dtype == np.float64 and net.seed == 1
    assert isinstance(net.loss, MeanSquaredError) and not net.loss.normalize
    assert isinstance(NeuralNetwork([Dense(3)], loss=MeanSquaredError).loss, MeanSquaredError)
    layer = Dense(4)
    assert layer.weight_init == "standard" and layer.dropout == 1.0 and not layer.conv_in
    conv = Conv2D(2, 3)
    assert conv.weight_init == "normal" and conv.param_size == (3, 3)
    assert list(iter(NeuralNetwork([layer]))) == [layer]


def test_book_layers_run_on_fastdls_operations():
    """The same kernels: book layers hold fastdl's operation classes."""
    net = NeuralNetwork(
        [Conv2D(2, 3, activation=ReLU(), flatten=True), Dense(4, Tanh(), dropout=0.5)]
    )
    net.forward(np.zeros((2, 1, 5, 5)))
    conv_ops = [type(op).__name__ for op in net.layers[0].operations]
    dense_ops = [type(op) for op in net.layers[1].operations]
    assert isinstance(net.layers[0].operations[0], Conv2DOp) and conv_ops[0] == "Conv2D_Op"
    assert net.layers[0].operations[0].relu  # the ReLU is fused, as fastdl's Conv2D fuses it
    assert dense_ops == [fd.WeightMultiply, fd.BiasAdd, fd.Tanh, fd.Dropout]
    assert isinstance(net.layers[1], fd.Dense) and isinstance(net.layers[0], fd.Conv2D)


def test_conv2d_op_is_fastdls_convolution_in_the_books_layout():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 7, 6))
    book_w = rng.normal(size=(3, 4, 5, 5))  # (C_in, C_out, K, K)
    op = Conv2D_Op(book_w)
    ref = Conv2DOp(np.ascontiguousarray(book_w.transpose(1, 0, 2, 3)), np.zeros(4), 1, (2, 2, 2, 2))
    np.testing.assert_allclose(op.forward(x), ref.forward(x), rtol=1e-13, atol=1e-13)
    g = rng.normal(size=op.output.shape)
    op.backward(g)
    ref.backward(g)
    np.testing.assert_allclose(op.input_grad, ref.input_grad, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(op.param_grad, ref.param_grads()[0].transpose(1, 0, 2, 3),
                               rtol=1e-13, atol=1e-13)  # fmt: skip
    assert op.params() == [op.param] and op.param is book_w
    book_w += 1.0  # an optimizer's in-place update is what the kernel computes with next
    np.testing.assert_allclose(
        op.forward(x),
        ref.forward(x) + Conv2DOp(np.ones((4, 3, 5, 5)), np.zeros(4), 1, (2, 2, 2, 2)).forward(x),
        rtol=1e-12,
        atol=1e-10,
    )
    gradcheck(Conv2D_Op(rng.normal(size=(2, 3, 3, 3))), rng.normal(size=(2, 2, 5, 5)))
    with pytest.raises(ValueError, match=r"Conv2D_Op: expected a parameter \(C_in, C_out, K, K\)"):
        Conv2D_Op(np.zeros((2, 3, 3, 2)))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_book_network_gradcheck(k):
    rng = np.random.default_rng(k)
    net = NeuralNetwork([Conv2D(3, k, weight_init="glorot", activation=Tanh(), flatten=True),
                         Dense(5, Sigmoid(), weight_init="glorot"), Dense(4)],
                        SoftmaxCrossEntropy(), seed=k)  # fmt: skip
    x = rng.normal(size=(3, 2, 6, 6))
    gradcheck(net, x, np.eye(4)[[0, 3, 1]])


def test_mean_squared_error_is_the_books_and_gradchecks():
    rng = np.random.default_rng(0)
    p, y = rng.uniform(0.1, 1, size=(6, 10)), np.eye(10)[rng.integers(0, 10, 6)]
    loss = MeanSquaredError()
    assert loss.forward(p, y) == pytest.approx(((p - y) ** 2).sum() / 6, rel=1e-14)
    np.testing.assert_allclose(loss.backward(), 2 * (p - y) / 6, rtol=1e-14)
    # fastdl's own averages over the outputs too: 10x smaller with 10 outputs
    assert fd.MeanSquaredError().forward(p, y) == pytest.approx(loss.forward(p, y) / 10)
    gradcheck(MeanSquaredError(), p, y)
    norm = MeanSquaredError(normalize=True)
    q = p / p.sum(axis=1, keepdims=True)
    assert norm.forward(p, y) == pytest.approx(((q - y) ** 2).sum() / 6, rel=1e-14)
    gradcheck(MeanSquaredError(normalize=True), p, y)  # through the normalisation
    with pytest.raises(ValueError, match="a prediction row sums to 0"):
        norm.forward(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="normalize must be True or False"):
        MeanSquaredError(normalize="yes")


def test_softmax_cross_entropy_reports_the_true_cross_entropy():
    rng = np.random.default_rng(1)
    z, y = rng.normal(size=(5, 4)), np.eye(4)[[0, 1, 2, 3, 0]]
    loss = SoftmaxCrossEntropy()
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert loss.forward(z, y) == pytest.approx(-(y * logp).sum() / 5, rel=1e-13)
    np.testing.assert_allclose(loss.backward(), (np.exp(logp) - y) / 5, rtol=1e-12)
    gradcheck(loss, z, y)
    with pytest.raises(ValueError, match=r"eps must be a number in \(0, 0.5\)"):
        SoftmaxCrossEntropy(eps=0)


def test_unknown_weight_init_is_refused_naming_the_layer():
    with pytest.raises(ValueError, match="Dense: weight_init must be one of"):
        Dense(3, weight_init="he")
    with pytest.raises(ValueError, match="Conv2D: weight_init must be one of"):
        Conv2D(3, 3, weight_init="xavier")
    with pytest.raises(ValueError, match="Conv2D: param_size"):
        Conv2D(3, 0)


def test_bias_add_takes_the_books_row_bias():
    rng = np.random.default_rng(2)
    b = rng.normal(size=(1, 3))
    op = fd.BiasAdd(b)
    x = rng.normal(size=(4, 3))
    np.testing.assert_array_equal(op.forward(x), x + b)
    op.backward(np.ones((4, 3)))
    assert op.param_grad.shape == (1, 3)
    np.testing.assert_array_equal(op.param_grad, np.full((1, 3), 4.0))
    gradcheck(fd.BiasAdd(b.copy()), x)
    with pytest.raises(ValueError, match=r"BiasAdd: expected a bias of shape \(H,\) or \(1, H\)"):
        fd.BiasAdd(np.zeros((2, 3)))


def test_book_network_saves_and_loads_as_a_book_network(tmp_path):
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(8, 1, 5, 5)), np.eye(3)[rng.integers(0, 3, 8)]
    net = NeuralNetwork([Conv2D(2, 3, weight_init="glorot", activation=Tanh(), flatten=True),
                         Dense(3, dropout=0.8, weight_init="glorot")],
                        MeanSquaredError(normalize=True), seed=9)  # fmt: skip
    optim = fd.book.optimizers.SGDMomentum(0.1, momentum=0.9)
    Trainer(net, optim).fit(x, y, x, y, epochs=2, eval_every=2, batch_size=4)
    net.save(tmp_path / "book.npz", optimizer=optim)
    back, back_optim = fd.load_with_optimizer(tmp_path / "book.npz")
    assert type(back) is NeuralNetwork and back.dtype == np.float64
    assert [type(layer) for layer in back.layers] == [Conv2D, Dense]
    assert back.loss.normalize and all(layer.seed == 9 for layer in back.layers)
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
    for a, b in zip(back_optim.state[0].values(), optim.state[0].values(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert fd.saving.registered_name(fd.saving.LAYERS, Dense) == "book.Dense"
    assert fd.saving.registered_name(fd.saving.LAYERS, fd.Dense) == "Dense"


def test_loading_does_not_move_the_global_generator_and_resume_works(tmp_path):
    """fd.load sets book layers up without moving NumPy's global generator; fastdl's own
    Trainer checkpoints and resumes a book network; a subclass of fd.NeuralNetwork saves
    as its base."""
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 1))
    net = NeuralNetwork([Dense(3, Tanh()), Dense(1)], MeanSquaredError(), seed=3)
    net.forward(x)
    net.save(tmp_path / "n.npz")
    np.random.seed(0)
    fd.load(tmp_path / "n.npz")
    after_load = np.random.random()
    np.random.seed(0)
    assert np.random.random() == after_load
    ck = tmp_path / "run.ckpt"
    fresh = lambda: NeuralNetwork([Dense(3, Tanh()), Dense(1)], MeanSquaredError(), seed=3)  # noqa: E731
    whole = fresh()
    fd.Trainer(whole, fd.SGDMomentum(0.01)).fit(x, y, epochs=4, eval_every=1, verbose=0,
                                                batch_size=8)  # fmt: skip
    part = fresh()
    fail_at_batch(part, 3)  # a crash in the first epoch's last batch
    with pytest.raises(Stop):
        fd.Trainer(part, fd.SGDMomentum(0.01)).fit(x, y, epochs=4, eval_every=1, verbose=0,
                                                   batch_size=8, checkpoint=ck,
                                                   checkpoint_every=1)  # fmt: skip
    resumed = fresh()
    fd.Trainer(resumed, fd.SGDMomentum(0.01)).fit(x, y, epochs=4, eval_every=1, verbose=0,
                                                  batch_size=8, resume=ck)  # fmt: skip
    for a, b in zip(whole.params(), resumed.params(), strict=True):
        np.testing.assert_array_equal(a, b)

    class MyNet(fd.NeuralNetwork):
        pass

    mine = MyNet([fd.Dense(2)], fd.MeanSquaredError(), seed=0)
    mine.forward(x.astype(np.float32))
    mine.save(tmp_path / "mine.npz")
    assert type(fd.load(tmp_path / "mine.npz")) is fd.NeuralNetwork


def test_book_optimizers_save_and_load_as_themselves(tmp_path):
    from fastdl.book import optimizers as bo

    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(10, 3)), rng.normal(size=(10, 1))
    for optim in (bo.SGD(0.01, gradient_clipping=True), bo.AdaGrad(0.02),
                  bo.SGDMomentum(0.1, final_lr=0.01, decay_type="linear", momentum=0.5),
                  bo.RegularizedSGD(0.01, alpha=0.05)):  # fmt: skip
        net = NeuralNetwork([Dense(2), Dense(1)], MeanSquaredError(), seed=1)
        Trainer(net, optim).fit(x, y, x, y, epochs=2, eval_every=2)
        net.save(tmp_path / "o.npz", optimizer=optim)
        _, back = fd.load_with_optimizer(tmp_path / "o.npz")
        assert type(back) is type(optim) and back.get_config() == optim.get_config()
