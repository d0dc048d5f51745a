"""export: write a fastdl network as an ONNX model (opset 17, IR version 8).

The exporter walks the network as the network runs it — ``net.layers``, each layer's
``operations`` in order, each operation's ``params()`` — and maps every operation class to
ONNX nodes (:mod:`fastdl.onnx._convert`, :mod:`fastdl.onnx._recurrent`). Before that it runs
one probe pass on zeros of ``(1, *input_shape)`` in inference mode: it builds an unbuilt
network (as ``net.build``), checks that the network takes ``input_shape`` (the layers' own
checks, which name the layer and the shapes), and sets each convolution's padding for that
H×W.

Versions
--------
Opset 17 (ONNX 1.12, 2022) has every operator the export needs in its current form (LSTM,
GRU and RNN with ``layout`` since 14, Squeeze taking its axes as an input since 13,
LeakyRelu 16) and is the newest opset that the runtimes people deploy to have run for years
(ONNX Runtime since 1.12, OpenVINO, TensorRT 8.5+); a newer opset would add nothing this
exporter uses and lock out older runtimes. The IR version is pinned to 8, the one ONNX 1.12
paired with opset 17, so a file does not change with the installed ``onnx``.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["export", "ExportError", "require_onnx", "OPSET", "IR_VERSION", "INPUT", "OUTPUT"]

#: The ONNX operator set the exported models import (the default domain only).
OPSET = 17
#: The ONNX IR version written into the models (ONNX 1.12's, paired with opset 17).
IR_VERSION = 8
#: Names of the graph's input and output.
INPUT, OUTPUT = "input", "output"
#: The batch axis's symbolic name (``dim_param``) on the input and the output.
BATCH = "batch"


class ExportError(ValueError):
    """A network, or one of its layers, that cannot be written as ONNX (the message names
    the layer's index and class and why)."""


def require_onnx():
    """Import and return the ``onnx`` module, or raise an ImportError that says how to get it."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError(
            "fastdl.onnx needs the onnx package, an optional extra: pip install 'fastdl[onnx]' "
            "(onnxruntime, in the same extra, runs the exported models)"
        ) from error
    return onnx


def _layers_running_their_operations() -> set:
    """Layer classes that override ``forward`` but still run their operations in order:
    Embedding (it makes the ids contiguous first), the recurrent layers (they set the
    initial state, zeros in the export, before the time loop) and the batch-norm layers
    (they check the batch size of a training pass first)."""
    from fastdl.layers import BatchNorm1D, BatchNorm2D, Embedding, GRULayer, LSTMLayer, RNNLayer

    return {Embedding, RNNLayer, GRULayer, LSTMLayer, BatchNorm1D, BatchNorm2D}


def _check_input_shape(input_shape) -> tuple[int, ...]:
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else None
    if not shape or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise ValueError(
            "fastdl.onnx.export: input_shape must be a tuple of positive ints, one example's "
            f"shape without the batch axis (e.g. (1, 28, 28)), got {input_shape!r}"
        )
    return tuple(int(d) for d in shape)


def _probe(net, shape: tuple[int, ...], kind: str) -> tuple[int, ...]:
    """Run zeros of ``(1, *shape)`` through ``net`` in inference mode; returns one output
    example's shape. Builds an unbuilt network; leaves the carried state of stateful layers as
    it was; on refusal, undoes the setup it did and raises ``ExportError``."""
    from fastdl.layers.base import carried_states, restore_states

    dtype = net.dtype if kind == "float" else np.int64
    rng_state = net.rng.bit_generator.state
    fresh = [layer for layer in net.layers if layer.first]
    before = net.input_shape, net.input_kind
    carried = carried_states(net.layers)
    net.reset_state()
    try:
        out = net.forward(np.zeros((1, *shape), dtype=dtype), inference=True)
    except (ValueError, TypeError) as error:
        net.rng.bit_generator.state = rng_state
        for layer in fresh:
            layer.reset()
        net.input_shape, net.input_kind = before
        raise ExportError(
            f"fastdl.onnx.export: the network does not take input_shape {shape} "
            f"(examples of shape (N, {', '.join(map(str, shape))})): {error}"
        ) from error
    finally:
        restore_states(carried)
    return tuple(int(d) for d in out.shape[1:])


def _check_layers(net) -> None:
    """Refuse a layer whose ``forward`` is its own code (not its operations in order), unless
    the exporter knows what that code does."""
    from fastdl.layers.base import Layer

    own_forward_ok = _layers_running_their_operations()
    for i, layer in enumerate(net.layers):
        if type(layer).forward is not Layer.forward and type(layer) not in own_forward_ok:
            raise ExportError(
                f"fastdl.onnx.export: layers[{i}] ({layer.name}): the layer has its own "
                "forward method, which the exporter cannot follow (it exports layers that run "
                "their operations in order, as fastdl's own layers do, and knows the recurrent "
                "layers' and Embedding's forward)"
            )


def _converters() -> dict:
    from fastdl.onnx import _convert, _recurrent

    return {**_convert.CONVERTERS, **_recurrent.CONVERTERS}


def _build_graph(net, converters: dict):
    """Every layer's operations as nodes; returns the Graph and the last tensor's name."""
    from fastdl.onnx._graph import Graph

    g = Graph(np.float32)
    x = g.reserve(INPUT)
    for i, layer in enumerate(net.layers):
        where = f"fastdl.onnx.export: layers[{i}] ({layer.name})"
        g.scope = f"layers.{i}"
        for op in layer.operations:
            convert = converters.get(type(op))
            if convert is None:
                known = ", ".join(sorted(c.__name__ for c in converters))
                raise ExportError(
                    f"{where}: operation {op.name} has no ONNX converter (operations the "
                    f"exporter knows: {known})"
                )
            x = convert(g, op, x)
    return g, x


def export(net, path: str | os.PathLike, input_shape):
    """Write ``net`` as an ONNX model to ``path`` (inference: dropout is left out).

    Parameters
    ----------
    net : NeuralNetwork
        Built or not: an unbuilt network is built for ``input_shape`` first (initial weights
        drawn from its generator, as ``net.build`` draws them).
    path : str or os.PathLike
        Written atomically (temporary file in the same folder, fsync, rename): an existing
        file is replaced whole or not at all.
    input_shape : tuple of int
        One example's shape without the batch axis: ``(C, H, W)`` for images, ``(T, D)`` for
        sequences, ``(T,)`` for token ids (a network that starts with ``Embedding``).

    Returns
    -------
    onnx.ModelProto
        The model written (``onnx.checker.check_model(model, full_check=True)`` has passed).

    Shape
    -----
    - Input ``"input"``: ``(batch, *input_shape)``, float32; int64 token ids for a network
      that starts with ``Embedding``. The batch axis is dynamic (``dim_param="batch"``); the
      other axes are fixed to ``input_shape``.
    - Output ``"output"``: ``(batch, ...)``, float32, what ``net.predict`` returns (logits
      for ``SoftmaxCrossEntropy``: the loss is not exported).

    What is exported
    ----------------
    - ``Dense`` → MatMul + Add (2-D or 3-D input, mapped on the last axis), then its
      activation: ``Identity``/``Linear`` (nothing), ``ReLU``, ``Sigmoid``, ``Tanh``,
      ``LeakyReLU``.
    - ``Conv2D`` → Conv (+ Relu or Tanh when fused), ``pads`` reordered from fastdl's
      ``(PT, PB, PL, PR)`` to ONNX's ``[PT, PL, PB, PR]``. ``"same"`` padding depends on H×W
      when the stride is above 1 (and, for even kernels, is asymmetric), so the exporter
      writes the concrete pads for ``input_shape``'s H×W rather than ``auto_pad``; this is
      why H×W are fixed in the graph. ``flatten=True`` → Flatten (axis 1, channel-major).
    - ``Conv2DTranspose`` → ConvTranspose (the same ``(C_in, C_out, KH, KW)`` weights,
      ``pads`` reordered as Conv's, ``output_padding``), then its activation.
    - ``MaxPool2D`` → MaxPool, no padding, ``ceil_mode=0`` (fastdl drops windows that do not
      fit).
    - ``BatchNorm2D``, ``BatchNorm1D`` → BatchNormalization in inference mode, with the
      running statistics (what ``net.predict`` normalises with) and ``epsilon``, then the
      activation; a ``BatchNorm1D`` on ``(N, T, D)`` sequences, whose channels are the last
      axis where ONNX's are axis 1, between two Transposes. ``Flatten`` → Flatten (axis 1). ``Reshape`` → Reshape to
      ``[-1, *target_shape]``. ``Embedding`` → Gather on the table.
    - ``RNNLayer``, ``GRULayer``, ``LSTMLayer`` → Transpose to time-major, ONNX RNN / GRU
      (``linear_before_reset=1``) / LSTM with the gate blocks reordered, Transpose back
      (ONNX Runtime runs no batch-first layout); ``return_sequences=False`` → the last hidden
      state. See :mod:`fastdl.onnx._recurrent`.
    - Dropout (``dropout=`` of any layer) is the identity at inference and leaves no node.

    Decisions
    ---------
    - **Stateful recurrent layers** export like the others: every run of the ONNX model
      starts from the zero state, as ``net.reset_state()`` then ``net.predict(x)`` does. An
      ONNX model is a function of its input, so the state a ``stateful=True`` layer carries
      from batch to batch is not part of it (it is left unchanged in ``net``): feed the
      model whole sequences (or, to continue a sequence, its context again).
    - **dtype**: the model is float32, what models are served in (and ONNX Runtime's CPU
      Conv has no float64 kernel). A float64 network (fastdl's dtype for gradient checks)
      is exported with its weights rounded to float32.
    - **What does not export** raises :class:`ExportError` naming the layer's index and
      class: an operation the exporter has no converter for (a custom activation, a subclass
      of a fastdl operation), a layer class with its own ``forward`` it does not know, and
      an ``input_shape`` the network does not take (the layer's own error is quoted). The
      file is not written then.

    Raises
    ------
    ImportError
        ``onnx`` is not installed (``pip install 'fastdl[onnx]'``).
    TypeError
        ``net`` is not a NeuralNetwork.
    ValueError
        ``input_shape`` is not a tuple of positive ints; ``ExportError`` (a ValueError) as
        above.

    Examples
    --------
    Export the reference CNN, then serve it with ONNX Runtime::

        from fastdl.onnx import export
        export(net, "model.onnx", input_shape=(1, 28, 28))

        import numpy as np, onnxruntime as ort
        session = ort.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
        logits = session.run(None, {"input": x.astype(np.float32)})[0]  # x: (N, 1, 28, 28)
        classes = logits.argmax(axis=1)
    """
    onnx = require_onnx()
    from onnx import TensorProto, helper

    from fastdl import __version__
    from fastdl.network import NeuralNetwork
    from fastdl.saving import atomic_write

    if not isinstance(net, NeuralNetwork):
        raise TypeError(f"fastdl.onnx.export: expected a NeuralNetwork, got {type(net).__name__}")
    shape = _check_input_shape(input_shape)
    kind = "float" if net.layers[0].float_input else "int"
    _check_layers(net)
    out_shape = _probe(net, shape, kind)
    g, last = _build_graph(net, _converters())
    g.rename_output(last, OUTPUT)
    in_type = TensorProto.FLOAT if kind == "float" else TensorProto.INT64
    graph = helper.make_graph(
        g.nodes,
        "fastdl",
        [helper.make_tensor_value_info(INPUT, in_type, [BATCH, *shape])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [BATCH, *out_shape])],
        initializer=g.initializers,
        doc_string=repr(net),
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="fastdl",
        producer_version=__version__,
        doc_string=f"fastdl network for examples of shape {shape} (batch axis dynamic)",
    )
    onnx.checker.check_model(model, full_check=True)
    data = model.SerializeToString()
    with atomic_write(path) as f:
        f.write(data)
    return model
