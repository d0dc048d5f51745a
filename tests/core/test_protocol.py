"""One protocol on every level: params() / param_grads(), one gradient hook, reprs, names."""

import numpy as np
import pytest

import fastdl as fd
from fastdl import config
from fastdl.ops.base import Operation
from fastdl.testing import gradcheck


def every_layer():
    return [
        fd.Dense(3, fd.ReLU(), dropout=0.5),
        fd.Conv2D(2, 3, padding=1, activation=fd.Tanh()),
        fd.Conv2DTranspose(2, 3, stride=2, padding=1, output_padding=1, activation=fd.ReLU()),
        fd.MaxPool2D(2),
        fd.BatchNorm2D(activation=fd.ReLU()),
        fd.BatchNorm1D(momentum=None, activation=fd.Tanh()),
        fd.Flatten(),
        fd.Embedding(7, 4),
        fd.RNNLayer(3),
        fd.GRULayer(3, return_sequences=False),
        fd.LSTMLayer(3, stateful=True),
    ]


def input_for(layer, rng):
    if isinstance(layer, fd.Embedding):
        return rng.integers(0, 7, (2, 5))
    if isinstance(layer, (fd.Conv2D, fd.Conv2DTranspose, fd.MaxPool2D, fd.BatchNorm2D, fd.Flatten)):
        return rng.standard_normal((2, 1, 6, 6))
    if isinstance(layer, (fd.Dense, fd.BatchNorm1D)):
        return rng.standard_normal((2, 5))
    return rng.standard_normal((2, 4, 5))


@pytest.mark.parametrize("layer", every_layer(), ids=lambda layer: layer.name)
def test_params_and_grads_line_up_on_operation_layer_and_network_alike(layer, rng):
    assert layer.params() == [] and layer.param_grads() == []
    x = input_for(layer, rng)
    y = layer.forward(x)
    layer.backward(np.ones_like(y))
    from_ops = [p for op in layer.operations for p in op.params()]
    assert [id(p) for p in layer.params()] == [id(p) for p in from_ops]
    grads = layer.param_grads()
    assert [g.shape for g in grads] == [p.shape for p in layer.params()]
    assert all(isinstance(g, np.ndarray) for g in grads)


@pytest.mark.parametrize("layer", every_layer(), ids=lambda layer: layer.name)
def test_buffers_line_up_on_operation_layer_and_network_alike(layer, rng):
    """``buffers()`` (arrays a layer updates itself, not learnt) is spelt as ``params()``
    on every level; only the batch norms have any, and none is also a parameter."""
    assert layer.buffers() == []
    layer.forward(input_for(layer, rng))
    from_ops = [b for op in layer.operations for b in op.buffers()]
    assert [id(b) for b in layer.buffers()] == [id(b) for b in from_ops]
    assert bool(layer.buffers()) == isinstance(layer, (fd.BatchNorm1D, fd.BatchNorm2D))
    assert not any(b is p for b in layer.buffers() for p in layer.params())
    net = fd.NeuralNetwork([layer], fd.MeanSquaredError())
    assert [id(b) for b in net.buffers()] == [id(b) for b in from_ops]


def test_the_network_lists_its_layers_params_in_order(rng):
    net = fd.NeuralNetwork([fd.Dense(4, fd.Tanh()), fd.Dense(2)], fd.SoftmaxCrossEntropy(),
                           dtype=np.float64, seed=0)  # fmt: skip
    net.train_batch(rng.standard_normal((3, 5)), np.array([0, 1, 1]))
    expected = [p for layer in net.layers for p in layer.params()]
    assert [id(p) for p in net.params()] == [id(p) for p in expected]
    assert [g.shape for g in net.param_grads()] == [p.shape for p in expected]


class Scale(Operation):
    """An operation that gives only the one hook, for both of its gradients at once."""

    def __init__(self, w):
        super().__init__()
        self.w = w

    def params(self):
        return [self.w]

    def _output(self, inference):
        return self.input_ * self.w

    def _gradients(self, output_grad, need_input_grad):
        dx = output_grad * self.w if need_input_grad else None
        return dx, [(output_grad * self.input_).sum(axis=0)]


def test_an_operation_with_only_the_gradient_hook_is_checked_like_any_other(rng):
    op = Scale(rng.standard_normal(3))
    gradcheck(op, rng.standard_normal((4, 3)))
    op.forward(np.ones((4, 3)))
    op.set_skip_input_grad(True)
    assert op.backward(np.ones((4, 3))) is None and op.param_grads()[0].shape == (3,)


def test_a_gradient_of_the_wrong_shape_is_named():
    class Bad(Scale):
        def _gradients(self, output_grad, need_input_grad):
            return output_grad, [np.zeros(2)]

    op = Bad(np.ones(3))
    op.forward(np.ones((4, 3)))
    with pytest.raises(
        ValueError, match=r"Bad: param_grads\(\)\[0\] has shape \(2,\), expected \(3,\)"
    ):
        op.backward(np.ones((4, 3)))


def test_book_style_operations_still_need_only_the_template_methods(rng):
    class Square(Operation):
        def _output(self, inference):
            return self.input_**2

        def _input_grad(self, output_grad):
            return 2 * self.input_ * output_grad

    gradcheck(Square(), rng.standard_normal((3, 2)))
    w = fd.WeightMultiply(rng.standard_normal((2, 3)))
    gradcheck(w, rng.standard_normal((4, 2)))
    assert w.param_grad is w.param_grads()[0]


def test_reprs_show_the_architecture_as_pytorch_modules_do():
    net = fd.NeuralNetwork(
        [fd.Conv2D(32, 3, padding=0, activation=fd.ReLU()), fd.MaxPool2D(2), fd.Flatten(),
         fd.Dense(128, activation=fd.ReLU(), dropout=0.5), fd.Dense(10)],
        fd.SoftmaxCrossEntropy(), seed=0,
    )  # fmt: skip
    assert repr(net) == (
        "NeuralNetwork(dtype=float32, seed=0\n"
        "  (0): Conv2D(out_channels=32, param_size=(3, 3), padding=(0, 0), activation=ReLU())\n"
        "  (1): MaxPool2D(size=2, stride=2)\n"
        "  (2): Flatten()\n"
        "  (3): Dense(neurons=128, activation=ReLU(), dropout=0.5)\n"
        "  (4): Dense(neurons=10)\n"
        "  loss: SoftmaxCrossEntropy()\n"
        ")"
    )
    net.forward(np.zeros((1, 1, 28, 28), np.float32))
    assert repr(net.layers[0]).endswith("  # params (32, 1, 3, 3), (32,)")
    assert repr(net.layers[0].operations[0]) == "Conv2DOp((32, 1, 3, 3), (32,))"
    assert repr(fd.LSTMLayer(8, stateful=True)) == "LSTMLayer(hidden_size=8, stateful=True)"


def test_identity_is_the_default_activation_and_linear_its_book_name():
    assert type(fd.Dense(3).activation) is fd.Identity
    assert issubclass(fd.Linear, fd.Identity)
    assert "PyTorch" in fd.Identity.__doc__ and "fd.Dense" in fd.Linear.__doc__


def test_an_operation_given_as_a_layer_is_refused_with_the_way_out():
    with pytest.raises(TypeError, match=r"layers\[1\] is Dropout\(\), an Operation, not a Layer: "
                                        r"an operation goes inside a layer, e\.g\. Dense\("):  # fmt: skip
        fd.NeuralNetwork([fd.Dense(3), fd.Dropout(0.8)], fd.MeanSquaredError())


def test_conv2d_keeps_the_name_it_was_given():
    assert fd.Conv2D(4, (3, 5)).param_size == (3, 5)
    assert not hasattr(fd.Conv2D(4, 3), "kernel_size")


def test_config_exports_settings_not_plumbing():
    assert not {"on_compute", "compute", "on_threads_changed"} & set(config.__all__)
    assert {"use_pure", "use_blas", "set_num_threads"} <= set(config.__all__)


#: State a layer carries from batch to batch (not what one pass keeps for its backward).
CARRIED = {"initial_state", "final_state", "state_grads", "_state", "_state_used"}


def arrays_in(obj):
    """Every ndarray an object's attributes reach directly or in a tuple or list, by name."""
    for name, value in vars(obj).items():
        items = value if isinstance(value, (tuple, list)) else [value]
        for item in items:
            if isinstance(item, np.ndarray):
                yield name, item


@pytest.mark.parametrize("layer", every_layer(), ids=lambda layer: layer.name)
def test_release_drops_everything_a_pass_kept(layer, rng):
    """After ``release()`` a layer and its operations hold only their parameters, the last
    parameter gradients, buffers and carried state: nothing the pass made for its backward
    (``pass_attrs`` names every such attribute)."""
    x = input_for(layer, rng)
    y = layer.forward(x)
    layer.backward(np.ones_like(y))
    layer.release()
    own = {id(a) for a in (*layer.params(), *layer.param_grads(), *layer.buffers())}
    left = [
        (type(obj).__name__, name, a.shape)
        for obj in (layer, *layer.operations)
        for name, a in arrays_in(obj)
        if id(a) not in own and name not in CARRIED
    ]
    assert left == []
    assert layer.input_ is None and layer.output is None and layer.input_grad is None
