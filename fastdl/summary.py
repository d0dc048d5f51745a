"""Network summaries: each layer's output shape, parameters and FLOPs (``net.summary``).

:func:`count` returns the numbers (for benchmarks and tests), :meth:`NetworkCount.table`
formats them; ``net.summary(input_shape)`` prints that table and returns it.

What is counted
---------------
FLOPs are per example and count **2 per multiply-add of the matrix products**, the
convention of fastdl's asv benchmarks and of FLOP/s ceilings of BLAS (``2·M·K·N`` for an
``(M, K) @ (K, N)`` product):

- ``Dense``: ``x @ W``, ``2·D·H`` per row (``2·T·D·H`` for a sequence ``(T, D)``);
- ``Conv2D``: the im2col product, ``2·OH·OW·C_out·C_in·KH·KW``; padded zeros are multiplied,
  so they count;
- ``Conv2DTranspose``: the product of the input with the weights, ``2·H·W·C_in·C_out·KH·KW``
  (H, W the input's); kernel copies that the padding crops away are computed, so they count;
- ``RNNLayer`` / ``GRULayer`` / ``LSTMLayer`` (G = 1, 3, 4 gate blocks): per time step the
  input projection ``2·D·G·H_hid`` and the recurrent projection ``2·H_hid·G·H_hid``;
- ``BatchNorm1D`` / ``BatchNorm2D``: 0 (elementwise: statistics, normalisation, scale and
  shift);
- ``Embedding``: 0 (a row gather); so is a recurrent first layer's input projection when
  the input is one-hot (``one_hot=True``), which fastdl gathers too (see
  :mod:`fastdl.ops.recurrent`).

Elementwise work is **not** counted: bias additions, activations and the gates'
nonlinearities, batch normalisation, dropout, max-pooling's comparisons, the loss. It is a
small share in the networks of the book (about 0.6% of the reference CNN's forward pass)
and runs at memory speed, not at the speed of the products. fvcore counts the same products, as one per
multiply-add (half of these numbers); ptflops reports multiply-adds too, and adds bias,
activation and pooling terms.

Training FLOPs are forward + backward, counted as fastdl computes them: every product
``y = x W`` of ``F`` FLOPs has two backward twins of ``F`` FLOPs each, ``dW = xᵀ dy`` and
``dx = dy Wᵀ``; the second is skipped where fastdl skips the input gradient — in the first
layer, whose input is the data (``set_skip_input_grad(True)``; an ``Embedding`` never has
one). So a first Dense, Conv2D or Conv2DTranspose costs 2× its forward, every other one 3×;
a recurrent layer's recurrent product always costs 3× (``dh_{t-1} = da_t W_hhᵀ`` carries the
gradient through time even in the first layer). Only the first layer skips: a Dense after a
first ``Flatten`` computes its input gradient, and so it is counted. The counts are those of the
dense algorithm: where a backward kernel skips the zeros of a sparse gradient (the
convolution after ReLU, :mod:`fastdl.kernels.conv`) it does less, and the NumPy twin of the
one-hot weight gradient multiplies by the one-hot matrix instead of adding rows (not
counted).

Each operation counts its own products (``Operation.flops``, from the shapes of the last
pass's operands) and a layer sums its operations (``Layer.flops``): the operations are
where the products happen and know whether they skip their input gradient, and a layer of
your own built from fastdl's operations is counted without further code.
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass

import numpy as np

from fastdl.layers.base import _same, carried_states, restore_states
from fastdl.ops.base import Operation

__all__ = ["LayerCount", "NetworkCount", "count", "label"]


@dataclass(frozen=True)
class LayerCount:
    """One layer's line of a summary; FLOPs and shapes are per example.

    Attributes
    ----------
    index : int
        Position in ``net.layers``.
    name : str
        A short description, e.g. ``Conv2D(32, 3×3, padding=0, ReLU)`` (:func:`label`).
    output_shape : tuple of int
        One example's output, without the batch axis.
    params : int
        Learnable numbers.
    param_bytes : int
        Their size in memory.
    forward_flops, backward_flops : int
        FLOPs of the forward and of the backward pass of training, per example.
    buffers : int
        Numbers in the layer's floating-point buffers, not trained: batch normalisation's
        running mean and variance (its step counter aside).
    buffer_bytes : int
        Their size in memory.
    """

    index: int
    name: str
    output_shape: tuple[int, ...]
    params: int
    param_bytes: int
    forward_flops: int
    backward_flops: int
    buffers: int = 0
    buffer_bytes: int = 0

    @property
    def training_flops(self) -> int:
        """Forward + backward FLOPs per example."""
        return self.forward_flops + self.backward_flops


@dataclass(frozen=True)
class NetworkCount:
    """What :func:`count` returns: one :class:`LayerCount` per layer, and the totals.

    Attributes
    ----------
    input_shape : tuple of int
        One example's shape.
    input_kind : {"float", "one-hot", "int"}
        What the counting pass fed: floats, exactly one-hot float rows, or token ids.
    dtype : numpy.dtype
        The network's dtype (parameters and activations).
    layers : tuple of LayerCount
    """

    input_shape: tuple[int, ...]
    input_kind: str
    dtype: np.dtype
    layers: tuple[LayerCount, ...]

    @property
    def params(self) -> int:
        """Learnable numbers (all of fastdl's parameters are trainable)."""
        return sum(layer.params for layer in self.layers)

    @property
    def param_bytes(self) -> int:
        """Bytes of the learnable arrays."""
        return sum(layer.param_bytes for layer in self.layers)

    @property
    def buffers(self) -> int:
        """Numbers in the floating-point buffers (running statistics), not trained."""
        return sum(layer.buffers for layer in self.layers)

    @property
    def forward_flops(self) -> int:
        """FLOPs of one example's forward pass."""
        return sum(layer.forward_flops for layer in self.layers)

    @property
    def backward_flops(self) -> int:
        """FLOPs of one example's backward pass."""
        return sum(layer.backward_flops for layer in self.layers)

    @property
    def training_flops(self) -> int:
        """FLOPs of one example's training pass, forward + backward (not the optimizer's
        update, which is elementwise)."""
        return self.forward_flops + self.backward_flops

    def table(self) -> str:
        """The summary as a table, one line per layer, then the totals and the convention."""
        head = ("#", "layer", "output shape", "params", "forward FLOPs", "training FLOPs")
        rows = [
            (str(c.index), c.name, str(c.output_shape), f"{c.params:,}",
             f"{c.forward_flops:,}", f"{c.training_flops:,}")
            for c in self.layers
        ]  # fmt: skip
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        left = (False, True, True, False, False, False)

        def line(cells) -> str:
            return "  ".join(
                cell.ljust(w) if flush else cell.rjust(w)
                for cell, w, flush in zip(cells, widths, left, strict=True)
            ).rstrip()

        rule = "-" * len(line(head))
        kind = {"float": self.dtype.name, "one-hot": f"one-hot {self.dtype.name} rows",
                "int": "integer token ids"}[self.input_kind]  # fmt: skip
        lines = [
            f"NeuralNetwork summary: input {self.input_shape} per example ({kind})",
            rule,
            line(head),
            rule,
            *(line(r) for r in rows),
            rule,
            f"parameters: {self.params:,}, all trainable ({self.param_bytes:,} bytes as "
            f"{self.dtype.name})",
            *(
                [
                    f"buffers: {self.buffers:,} numbers, not trained (batch norm's running "
                    f"statistics; {sum(c.buffer_bytes for c in self.layers):,} bytes)"
                ]
                if self.buffers
                else []
            ),
            f"forward FLOPs per example: {self.forward_flops:,} ({_si(self.forward_flops)})",
            f"training FLOPs per example: {self.training_flops:,} "
            f"({_si(self.training_flops)}; forward + backward)",
        ]
        note = (
            "FLOPs: 2 per multiply-add of the matrix products (Dense, Conv2D, recurrent "
            "projections); elementwise operations (bias, activations, batch norm, pooling, "
            "dropout) not counted; backward: dW and dx for each product, no dx in layer 0."
        )
        lines += textwrap.wrap(note, width=max(len(rule), 72))
        return "\n".join(lines)

    __str__ = table


def _si(n: int) -> str:
    """``23,984,896`` → ``24.0 MFLOP``."""
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            return f"{n / scale:.1f} {prefix}FLOP"
    return f"{n} FLOP"


def _shape(where: str, input_shape) -> tuple[int, ...]:
    """``input_shape`` as a tuple of positive ints, or a clear error naming ``where``."""
    if isinstance(input_shape, (int, np.integer)):
        raise TypeError(
            f"{where}: input_shape must be a tuple, the shape of one example (no batch axis), "
            f"e.g. ({int(input_shape)},); got the int {input_shape!r}"
        )
    if isinstance(input_shape, (str, bytes)) or not hasattr(input_shape, "__iter__"):
        raise TypeError(
            f"{where}: input_shape must be a tuple of ints, the shape of one example (no "
            f"batch axis), e.g. (1, 28, 28); got {input_shape!r}"
        )
    shape = tuple(input_shape)
    if not shape or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise ValueError(
            f"{where}: input_shape must be positive ints, the shape of one example (no batch "
            f"axis), e.g. (1, 28, 28); got {input_shape!r}"
        )
    return tuple(int(d) for d in shape)


def _value(v, bare: bool) -> str:
    """A configuration value, short: activations by class, ``(3, 3)`` as ``3×3``."""
    if isinstance(v, tuple) and len(v) == 2 and all(isinstance(d, int) for d in v):
        return str(v[0]) if (v[0] == v[1] and not bare) else f"{v[0]}×{v[1]}"
    if isinstance(v, Operation):  # an activation: its class name
        return type(v).__name__
    return repr(v)


def label(layer) -> str:
    """A short description of ``layer`` from its ``get_config()``, as its constructor call is
    written: required arguments bare, activations by class, other arguments as ``name=value``
    where they differ from the default (as ``repr`` chooses them); a kernel pair as ``3×3``,
    an even padding pair as one number.

    Examples
    --------
    >>> import fastdl as fd
    >>> label(fd.Conv2D(32, 3, padding=0, activation=fd.ReLU()))
    'Conv2D(32, 3×3, padding=0, ReLU)'
    """
    signature = inspect.signature(type(layer).__init__).parameters
    parts = []
    for key, v in layer.get_config().items():
        p = signature.get(key)
        default = inspect.Parameter.empty if p is None else p.default
        if default is inspect.Parameter.empty:
            parts.append(_value(v, bare=True))
        elif not _same(v, default):
            short = _value(v, bare=False)
            parts.append(short if isinstance(v, Operation) else f"{key}={short}")
    return f"{layer.name}({', '.join(parts)})"


def count(net, input_shape, one_hot: bool = False) -> NetworkCount:
    """Count each layer's parameters and FLOPs per example for input of ``input_shape``.

    Builds the network first if it is new (``net.build``: initial weights are drawn then,
    as by the first pass). Then runs one inference pass on one example of zeros (ids 0 for
    an Embedding first; with ``one_hot`` the first column set) and reads each layer's
    output shape and its operations' FLOPs from it. The weights, the random generator and
    the state of stateful layers are left as they were, but the layers' saved activations
    are those of this pass: summarise between training steps, not between a forward pass
    and its backward pass.

    Parameters
    ----------
    net : NeuralNetwork
    input_shape : tuple of int
        One example's shape, without the batch axis: ``(C_in, H, W)`` for images,
        ``(T, D)`` for sequences, ``(T,)`` token ids for a network that starts with an
        Embedding. A network already built must be summarised for the shape it was built
        for (``net.input_shape``); another shape is an error.
    one_hot : bool, default False
        The input rows (last axis) are exactly one-hot, as the book's character model feeds
        a recurrent first layer, which then gathers rows instead of multiplying (its input
        projection counts 0).

    Returns
    -------
    NetworkCount
        Per-layer :class:`LayerCount` records and the totals; ``str()`` gives the table.

    Raises
    ------
    TypeError, ValueError
        ``input_shape`` is not a tuple of positive ints, contradicts the shape the network
        was built for, or does not fit the layers (the message names the layer's error).

    Examples
    --------
    >>> import fastdl as fd
    >>> net = fd.NeuralNetwork([fd.Dense(4, fd.ReLU()), fd.Dense(2)], fd.MeanSquaredError())
    >>> c = count(net, (3,))
    >>> c.params, c.forward_flops, c.training_flops  # 2·3·4 + 2·4·2; 2× + 3×
    (26, 40, 96)
    """
    where = "NeuralNetwork.summary"
    shape = _shape(where, input_shape)
    kind = "float" if net.layers[0].float_input else "int"
    if one_hot and kind == "int":
        raise ValueError(
            f"{where}: one_hot=True is for float one-hot rows; {net.layers[0].name} takes "
            "integer token ids"
        )
    if net.input_shape is not None and tuple(net.input_shape) != shape:
        raise ValueError(
            f"{where}: the network was built for examples of shape {tuple(net.input_shape)}, "
            f"not {shape}; summarise it with input_shape={tuple(net.input_shape)}, or build a "
            "new network for the other shape"
        )
    if kind == "int":
        example = np.zeros((1,) + shape, dtype=np.int64)
    else:
        example = np.zeros((1,) + shape, dtype=net.dtype)
        if one_hot:
            example[..., 0] = 1
    built = net.input_shape is not None
    carried = carried_states(net.layers)
    net.reset_state()  # a state carried for another batch size would not fit one example
    try:
        net.build(shape, kind)
        net.forward(example, inference=True)
    except ValueError as err:
        if not built:  # leave a new network new: a failed first pass set some of it up
            net.reset()
            net.input_shape, net.input_kind = None, "float"
        raise ValueError(
            f"{where}: input_shape {shape} (one example, no batch axis) does not fit the "
            f"network: {err}"
        ) from err
    finally:
        restore_states(carried)
    records = []
    for i, layer in enumerate(net.layers):
        forward, backward = layer.flops()
        params = layer.params()
        buffers = [b for b in layer.buffers() if b.dtype.kind == "f"]
        records.append(
            LayerCount(
                index=i,
                name=label(layer),
                output_shape=tuple(int(d) for d in layer.output.shape[1:]),
                params=sum(int(p.size) for p in params),
                param_bytes=sum(int(p.nbytes) for p in params),
                forward_flops=int(forward),
                backward_flops=int(backward),
                buffers=sum(int(b.size) for b in buffers),
                buffer_bytes=sum(int(b.nbytes) for b in buffers),
            )
        )
    kind = "one-hot" if one_hot else kind
    return NetworkCount(shape, kind, net.dtype, tuple(records))
