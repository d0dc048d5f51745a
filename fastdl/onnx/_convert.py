"""ONNX converters of fastdl's feed-forward operations: activations, dense, convolution,
transposed convolution, pooling, batch normalisation, flatten, reshape, embedding and
dropout.

Each converter takes ``(graph, op, x)`` — the :class:`~fastdl.onnx._graph.Graph`, the
operation (after the export's probe pass, so ``op.input_`` has the exported H×W) and the
name of its input tensor — and returns the name of its output tensor. They read the
operation's public parameters (``op.params()`` and its constructor's settings), never a
kernel's private copy (``Conv2DOp`` keeps a channels-last ``_w`` for its kernel; the graph
takes ``W``). :data:`CONVERTERS` maps each operation class, exactly, to its converter: a
subclass may compute something else, so it is not exported as its parent.
"""

from __future__ import annotations

import numpy as np

from fastdl import ops as _ops
from fastdl.ops import reshape as _reshape
from fastdl.ops.activations import Identity, LeakyReLU, Linear, ReLU, Sigmoid, Tanh
from fastdl.ops.batchnorm import BatchNormOp
from fastdl.ops.conv import Conv2DOp
from fastdl.ops.dense import BiasAdd, WeightMultiply
from fastdl.ops.dropout import Dropout
from fastdl.ops.embedding import EmbeddingLookup
from fastdl.ops.pool import MaxPool2DOp
from fastdl.ops.reshape import Flatten

__all__ = ["CONVERTERS"]


def _identity(g, op, x: str) -> str:
    """Identity (the book's Linear), and Dropout, which is the identity at inference."""
    return x


def _unary(op_type: str):
    def convert(g, op, x: str) -> str:
        return g.node(op_type, [x])

    convert.__doc__ = f"``{op_type}``, elementwise."
    return convert


def _leaky_relu(g, op: LeakyReLU, x: str) -> str:
    return g.node("LeakyRelu", [x], alpha=float(op.alpha))


def _weight_multiply(g, op: WeightMultiply, x: str) -> str:
    """``x @ W``: MatMul, which maps the last axis of a 2-D ``(N, D)`` or 3-D ``(N, T, D)``
    input as fastdl's Dense does (Gemm would take 2-D input only)."""
    return g.node("MatMul", [x, g.weight("W", op.param)])


def _bias_add(g, op: BiasAdd, x: str) -> str:
    """``x + B``, broadcast over the leading axes."""
    return g.node("Add", [x, g.weight("B", op.param)])


def _flatten(g, op: Flatten, x: str) -> str:
    """``(N, ...) → (N, prod(...))`` in C order: ONNX Flatten with ``axis=1``, channel-major on
    NCHW as fastdl's."""
    return g.node("Flatten", [x], axis=1)


def _conv2d(g, op: Conv2DOp, x: str) -> str:
    """Conv (then Relu or Tanh if fused). fastdl pads ``(PT, PB, PL, PR)``; ONNX wants
    ``[PT, PL, PB, PR]`` (all begins, then all ends). ``op.pad`` is the padding of the probe
    pass, so a ``"same"`` padding is the one for the exported H×W."""
    w, b = op.params()
    _, _, kh, kw = w.shape
    pt, pb, pl, pr = op.pad
    y = g.node(
        "Conv",
        [x, g.weight("W", w), g.weight("B", b)],
        kernel_shape=[kh, kw],
        strides=[op.stride, op.stride],
        pads=[pt, pl, pb, pr],
        dilations=[1, 1],
        group=1,
    )
    if op.tanh:
        return g.node("Tanh", [y])
    return g.node("Relu", [y]) if op.relu else y


def _maxpool2d(g, op: MaxPool2DOp, x: str) -> str:
    """MaxPool over F × F windows with stride S, no padding, windows that do not fit dropped
    (``ceil_mode=0``): fastdl's ``OH = (H - F) // S + 1``."""
    return g.node(
        "MaxPool",
        [x],
        kernel_shape=[op.size, op.size],
        strides=[op.stride, op.stride],
        pads=[0, 0, 0, 0],
        ceil_mode=0,
    )


def _batchnorm(g, op: BatchNormOp, x: str) -> str:
    """BatchNormalization in inference mode (``training_mode=0``): ``(x − mean) /
    √(var + ε) · scale + B`` with the running statistics, ONNX's channel axis 1 being
    fastdl's for images and for ``(N, D)``; features-last sequences ``(N, T, D)`` are
    transposed to ``(N, D, T)`` and back around it. Then Relu if fused."""
    sequence = op.channel_axis != 1 and op.input_.ndim == 3
    if sequence:
        x = g.node("Transpose", [x], perm=[0, 2, 1])
    inputs = [x, g.weight("scale", op.gamma), g.weight("B", op.beta),
              g.weight("mean", op.running_mean), g.weight("var", op.running_var)]  # fmt: skip
    y = g.node("BatchNormalization", inputs, epsilon=float(op.eps))
    if sequence:
        y = g.node("Transpose", [y], perm=[0, 2, 1])
    return g.node("Relu", [y]) if op.relu else y


def _embedding(g, op: EmbeddingLookup, x: str) -> str:
    """``W[ids]``: Gather on axis 0 of the table (int64 ids ``S`` → ``S + (E,)``)."""
    return g.node("Gather", [g.weight("W", op.param), x], axis=0)


def _conv_transpose2d(g, op, x: str) -> str:
    """ConvTranspose: the same ``(C_in, C_out, KH, KW)`` weights (PyTorch's layout, and
    ONNX's), ``pads`` reordered to ``[PT, PL, PB, PR]``, ``output_padding`` ``[OPH, OPW]``;
    ONNX's output size ``S·(H − 1) + OPH + KH − PT − PB`` is fastdl's."""
    w, b = op.params()
    _, _, kh, kw = w.shape
    pt, pb, pl, pr = op.pad
    return g.node(
        "ConvTranspose",
        [x, g.weight("W", w), g.weight("B", b)],
        kernel_shape=[kh, kw],
        strides=[op.stride, op.stride],
        pads=[pt, pl, pb, pr],
        output_padding=list(op.output_padding),
        dilations=[1, 1],
        group=1,
    )


def _reshape_op(g, op, x: str) -> str:
    """``(N, ...) → (N, *target_shape)`` in C order: Reshape to ``[-1, *target_shape]``."""
    shape = g.weight("shape", np.array([-1, *op.target_shape], dtype=np.int64))
    return g.node("Reshape", [x, shape])


CONVERTERS = {
    Identity: _identity,
    Linear: _identity,
    Dropout: _identity,
    ReLU: _unary("Relu"),
    Sigmoid: _unary("Sigmoid"),
    Tanh: _unary("Tanh"),
    LeakyReLU: _leaky_relu,
    WeightMultiply: _weight_multiply,
    BiasAdd: _bias_add,
    Flatten: _flatten,
    Conv2DOp: _conv2d,
    MaxPool2DOp: _maxpool2d,
    BatchNormOp: _batchnorm,
    EmbeddingLookup: _embedding,
}

# Conv2DTranspose and Reshape are newer than the rest: exported when this fastdl has them.
if getattr(_ops, "Conv2DTransposeOp", None) is not None:
    CONVERTERS[_ops.Conv2DTransposeOp] = _conv_transpose2d
if getattr(_reshape, "Reshape", None) is not None:
    CONVERTERS[_reshape.Reshape] = _reshape_op
