"""MaxPool2D: max-pooling over F × F windows of NCHW images, with optional dropout."""

from __future__ import annotations

import numpy as np

from fastdl._checks import check_keep_prob, positive_int
from fastdl.layers.base import Layer
from fastdl.ops.base import check_same_shape
from fastdl.ops.conv import Conv2DOp, runs_channels_first
from fastdl.ops.dropout import Dropout
from fastdl.ops.pool import MaxPool2DOp

__all__ = ["MaxPool2D", "pooled_after", "backward_through_pool", "pools_in_one_pass",
           "forward_through_pool"]  # fmt: skip


class MaxPool2D(Layer):
    """Max-pooling: the maximum of each F × F window, per channel (PyTorch's ``MaxPool2d``).

    Parameters
    ----------
    size : int
        F, the window's height and width.
    stride : int, optional
        S; defaults to ``size`` (non-overlapping windows), as in PyTorch and Keras.
    dropout : float, default 1.0
        Keep probability applied after pooling while training (1.0 = none), as ``dropout``
        on ``Dense`` and ``Conv2D``; PyTorch's reference MNIST network has
        ``Dropout(0.25)`` here, i.e. ``dropout=0.75``.

    Shape
    -----
    - Input: ``(N, C, H, W)``.
    - Output: ``(N, C, OH, OW)`` with ``OH = (H - F) // S + 1``, ``OW = (W - F) // S + 1``
      (windows that do not fit are dropped; no padding).

    The gradient goes to each window's maximum (the first one if tied) and adds up where
    windows overlap (S < F).

    Examples
    --------
    >>> import numpy as np, fastdl as fd
    >>> fd.MaxPool2D(2).forward(np.ones((2, 3, 9, 8), dtype=np.float32)).shape
    (2, 3, 4, 4)
    """

    def __init__(self, size: int, stride: int | None = None, dropout: float = 1.0) -> None:
        super().__init__()
        self.size = positive_int("MaxPool2D", "size", size)
        self.stride = self.size if stride is None else positive_int("MaxPool2D", "stride", stride)
        self.dropout = check_keep_prob("MaxPool2D", "dropout", dropout)

    def get_config(self) -> dict:
        return {"size": self.size, "stride": self.stride, "dropout": self.dropout}

    def _check_input(self, x: np.ndarray) -> None:
        super()._check_input(x)
        if x.ndim != 4:
            raise ValueError(f"MaxPool2D: expected NCHW input (N, C, H, W), got shape {x.shape}")
        if self.size > x.shape[2] or self.size > x.shape[3]:
            raise ValueError(
                f"MaxPool2D: window {self.size}×{self.size} is larger than the input image "
                f"{x.shape[2]}×{x.shape[3]} (input shape {x.shape})"
            )

    def _setup_layer(self, x: np.ndarray) -> None:
        self.operations = [MaxPool2DOp(self.size, self.stride)]
        if self.dropout < 1.0:
            self.operations.append(Dropout(self.dropout, rng=self.rng))


def pooled_after(before: Layer, layer: Layer) -> bool:
    """Whether ``layer`` is a max-pool of the output of a convolution with ReLU that ends
    ``before`` (the same array: nothing in between): the network then differentiates the
    two in one pass, :func:`backward_through_pool`."""
    if not (isinstance(layer, MaxPool2D) and layer.operations and before.operations):
        return False
    conv, pool = before.operations[-1], layer.operations[0]
    return (  # exactly these classes: a subclass (the book's Conv2D_Op) has its own gradients
        type(conv) is Conv2DOp
        and type(pool) is MaxPool2DOp
        and type(before).backward is Layer.backward
        and type(layer).backward is Layer.backward
        and conv.relu
        and conv.output is not None
        and pool.input_ is conv.output
    )


def pools_in_one_pass(before: Layer, layer: Layer) -> bool:
    """Whether an inference pass may run ``before`` and then ``layer`` as one,
    :func:`forward_through_pool`: ``layer`` is a max-pool right after a convolution with ReLU
    that ends ``before``, both set up, with their own ``forward`` (not a subclass's)."""
    if not (isinstance(layer, MaxPool2D) and layer.operations and before.operations):
        return False
    conv, pool = before.operations[-1], layer.operations[0]
    return (  # exactly these classes: a subclass may compute its own outputs
        type(conv) is Conv2DOp
        and type(pool) is MaxPool2DOp
        and type(before).forward is Layer.forward
        and type(layer).forward is Layer.forward
        and not before.first
        and not layer.first
        and conv.relu
        and not (conv.channels_first and runs_channels_first(conv.stride, conv.W.shape[1]))
    )


def forward_through_pool(before: Layer, layer: Layer, x: np.ndarray) -> np.ndarray:
    """``before.forward(x, inference=True)`` and then ``layer.forward`` (for
    :func:`pools_in_one_pass` layers), with the convolution and the pool in one pass
    (:meth:`Conv2DOp.forward_through_pool <fastdl.ops.conv.Conv2DOp.forward_through_pool>`):
    the same output, and every ``input_`` and ``output`` set as the two calls set them."""
    before._check_input(x)
    before.input_ = x
    for op in before.operations[:-1]:
        x = op.forward(x, True)
    x = before.operations[-1].forward_through_pool(x, layer.operations[0])
    before.output = layer.operations[0].input_
    layer._check_input(before.output)
    layer.input_ = before.output
    for op in layer.operations[1:]:  # dropout after the pooling (off in inference)
        x = op.forward(x, True)
    layer.output = x
    return x


def backward_through_pool(before: Layer, layer: Layer, output_grad: np.ndarray):
    """``layer.backward`` and then ``before.backward`` (for :func:`pooled_after` layers),
    in one pass through the convolution and the pool (:meth:`Conv2DOp.backward_through_pool
    <fastdl.ops.conv.Conv2DOp.backward_through_pool>`): the same gradients, without the
    gradient of the convolution's whole output. ``layer.input_grad`` (that gradient) stays
    None; everything else is set as the two calls set it. Returns ``before``'s input
    gradient (None if skipped)."""
    if layer.output is None or before.output is None:
        raise RuntimeError(f"{layer.name}.backward called before forward")
    check_same_shape(layer.name, "output_grad", layer.output, output_grad)
    grad = output_grad
    for op in reversed(layer.operations[1:]):  # dropout after the pooling
        grad = op.backward(grad)
    grad = before.operations[-1].backward_through_pool(layer.operations[0], grad)
    layer.input_grad = None
    for op in reversed(before.operations[:-1]):
        grad = op.backward(grad)
    before.input_grad = grad
    return grad
