"""How a network maps onto one flat PyTorch ``nn.Sequential``: modules, key names, layouts.

NumPy only: this module never imports torch. :mod:`fastdl.interop.torch` builds the modules it
lists and :meth:`NeuralNetwork.save_weights <fastdl.network.NeuralNetwork.save_weights>` names
the arrays it writes with its keys, so the two agree by construction.

The modules
-----------
Every layer becomes one or more modules, in order, in one flat ``nn.Sequential``:

===============================  =========================================================
fastdl layer                     modules
===============================  =========================================================
``Dense``                        ``Linear``, [activation], [``Dropout``]
``Conv2D``                       [pad], ``Conv2d``, [activation], [``Dropout``], [``Flatten``]
``Conv2DTranspose``              ``ConvTranspose2d``, [activation], [``Dropout``]
``MaxPool2D``                    ``MaxPool2d``, [``Dropout``]
``BatchNorm2D``                  ``BatchNorm2d``, [activation]
``BatchNorm1D``                  ``BatchNorm1d`` (on ``(N, D)``) or fastdl.interop.torch's
                                 ``SequenceBatchNorm1d`` (on ``(N, T, D)``: ``BatchNorm1d``
                                 over the last axis), [activation]
``Flatten`` / ``Reshape``        ``Flatten()`` / ``Unflatten(1, target_shape)`` (after a
                                 ``Flatten()`` when the input has more than 2 axes)
``Embedding``                    ``Embedding``
``RNNLayer``, ``GRULayer``,      fastdl.interop.torch's ``RNNLayer`` / ``GRULayer`` /
``LSTMLayer``                    ``LSTMLayer`` (``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` with
                                 ``batch_first=True``), [``Dropout``]
===============================  =========================================================

- activation: ``ReLU`` → ``ReLU()``, ``Sigmoid`` → ``Sigmoid()``, ``Tanh`` → ``Tanh()``,
  ``LeakyReLU(alpha)`` → ``LeakyReLU(negative_slope=alpha)``; ``Identity`` (the book's
  ``Linear``) adds no module.
- ``Dropout``: ``nn.Dropout(p = 1 − keep)`` (fastdl's ``dropout`` is the keep probability);
  absent when ``keep = 1``.
- pad: ``Conv2D`` padding that is the same on both sides of each axis goes into the
  ``Conv2d``'s ``padding``; ``"same"`` with stride 1 and an even kernel (one more row and
  column at the bottom and right) is an ``nn.ZeroPad2d((left, right, top, bottom))`` first;
  ``"same"`` with a stride > 1, whose padding depends on the image size, is
  fastdl.interop.torch's ``SamePad2d`` (the padding computed for each input, as fastdl does).

Key names
---------
A parameter's key is ``"{i}.{name}"``: ``i`` the module's index in the flat ``Sequential``,
``name`` PyTorch's own (``weight``, ``bias``; ``weight_ih_l0``, ``weight_hh_l0``,
``bias_ih_l0``, ``bias_hh_l0``). A layer's buffers (``layer.buffers()``) have keys too, as
in a torch ``state_dict``: a batch-norm layer's are ``running_mean``, ``running_var`` and
``num_batches_tracked`` (int64, shape ``()``), after its ``weight`` and ``bias``. The reference MNIST CNN (Conv2d, ReLU, Conv2d, ReLU,
MaxPool2d, Dropout, Flatten, Linear, ReLU, Dropout, Linear) has the keys ``0.weight``,
``0.bias``, ``2.weight``, ``2.bias``, ``7.weight``, ``7.bias``, ``10.weight``, ``10.bias``:
exactly ``to_torch(net).state_dict().keys()``. For a torch module of your own the layers'
prefixes can be given instead (``prefixes={0: "conv1", 1: "conv2", 4: "fc1", 5: "fc2"}``).

Layouts
-------
- ``Dense``: fastdl ``W (D, H)``, ``B (H,)``; torch ``weight = W.T (H, D)``, ``bias = B``.
- ``Conv2D``: fastdl ``W (C_out, C_in, KH, KW)``, ``B``; torch ``weight = W``, ``bias = B``.
- ``Conv2DTranspose``: fastdl ``W (C_in, C_out, KH, KW)``, ``B``; torch the same.
- ``Embedding``: fastdl ``W (V, E)``; torch ``weight = W``.
- ``BatchNorm1D``, ``BatchNorm2D``: fastdl ``gamma``, ``beta`` and the buffers
  ``running_mean``, ``running_var``, ``num_batches_tracked``; torch ``weight = gamma``,
  ``bias = beta``, the buffers by their names, as they are (the same momentum, ε and
  unbiased running variance).
- ``RNNLayer``, ``LSTMLayer``: fastdl ``W_ih (D, G·H)``, ``W_hh (H, G·H)``, ``b (G·H,)``;
  torch ``weight_ih_l0 = W_ih.T``, ``weight_hh_l0 = W_hh.T``, ``bias_ih_l0 = b``,
  ``bias_hh_l0 = 0``.
- ``GRULayer``: fastdl ``W_ih``, ``W_hh``, ``b_ih``, ``b_hh``; torch ``weight_ih_l0 = W_ih.T``,
  ``weight_hh_l0 = W_hh.T``, ``bias_ih_l0 = b_ih``, ``bias_hh_l0 = b_hh``.

G is 1 (RNN), 3 (GRU, gates r, z, n) or 4 (LSTM, gates i, f, g, o): PyTorch's gate orders,
which fastdl's kernels use too. The RNN's and LSTM's single bias is PyTorch's two added up: it
goes out as ``bias_ih_l0 = b, bias_hh_l0 = 0`` and comes back as ``bias_ih_l0 + bias_hh_l0``.

Reading is by key and shape, never by position: every key must be there with its shape and
dtype (a square weight missing its transpose has the right shape, so the layouts above are
applied by name), and a state that does not fit is refused whole before any weight changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fastdl import layers as _layers
from fastdl.ops.activations import Identity, LeakyReLU, Linear, ReLU, Sigmoid, Tanh

__all__ = [
    "ConversionError",
    "TorchModule",
    "modules",
    "layer_prefixes",
    "layer_keys",
    "state_arrays",
    "load_state",
    "to_torch_layout",
    "from_torch_layout",
]


class ConversionError(ValueError):
    """A layer (or module) with no exact counterpart on the other side; names it and why."""


@dataclass(frozen=True)
class TorchModule:
    """One module of the flat ``nn.Sequential``.

    Attributes
    ----------
    kind : str
        ``torch.nn`` class name (``"Linear"``, ``"Conv2d"``, ...), or one of
        fastdl.interop.torch's (``"SamePad2d"``, ``"RNNLayer"``, ``"GRULayer"``,
        ``"LSTMLayer"``).
    args : dict
        Its constructor's keyword arguments.
    layer : int
        Index of the fastdl layer it comes from.
    params : tuple of str
        PyTorch's names of its parameters, then of its buffers (its ``state_dict`` keys;
        empty for modules without any).
    """

    kind: str
    args: dict = field(default_factory=dict)
    layer: int = 0
    params: tuple[str, ...] = ()


def _where(i: int, layer) -> str:
    return f"layers[{i}] ({type(layer).__name__})"


def _activation(i: int, layer) -> list[tuple[str, dict]]:
    act = layer.activation
    kind = type(act)
    if kind in (Identity, Linear):
        return []
    if kind in (ReLU, Sigmoid, Tanh):
        return [(kind.__name__, {})]
    if kind is LeakyReLU:
        return [("LeakyReLU", {"negative_slope": act.alpha})]
    raise ConversionError(
        f"{_where(i, layer)}: activation {type(act).__name__} has no torch.nn counterpart "
        "(fastdl converts Identity/Linear, ReLU, Sigmoid, Tanh and LeakyReLU)"
    )


def _dropout(keep: float) -> list[tuple[str, dict]]:
    return [] if keep >= 1.0 else [("Dropout", {"p": 1.0 - keep})]


def _t(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.T)


# -- one converter per layer class -----------------------------------------------------------
# modules(i, layer) -> [(kind, args, param names)]; to_torch(params) -> {name: array};
# from_torch({name: array}) -> params in the layer's params() order. The two array maps work
# on gradients as well as on weights (both have the parameters' shapes).


class _Dense:
    def modules(self, i, layer):
        d, h = layer.params()[0].shape
        return [("Linear", {"in_features": d, "out_features": h}, ("weight", "bias"))] + [
            (k, a, ()) for k, a in _activation(i, layer) + _dropout(layer.dropout)
        ]

    def to_torch(self, params):
        w, b = params
        return {"weight": _t(w), "bias": b}

    def from_torch(self, arrays):
        return [_t(arrays["weight"]), arrays["bias"]]


def conv_padding(i: int, layer) -> tuple[list[tuple[str, dict, tuple]], tuple[int, int]]:
    """The pad module (if any) before a ``Conv2D``'s ``Conv2d``, and the ``Conv2d``'s own
    symmetric padding ``(ph, pw)`` (see the module docstring)."""
    kh, kw = layer.param_size
    if layer.padding == "valid":
        return [], (0, 0)
    if layer.padding != "same":
        return [], tuple(layer.padding)
    if layer.stride > 1:
        return [("SamePad2d", {"kernel_size": (kh, kw), "stride": layer.stride}, ())], (0, 0)
    pt, pb, pl, pr = (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2  # fastdl's same_padding
    if pt == pb and pl == pr:
        return [], (pt, pl)
    return [("ZeroPad2d", {"padding": (pl, pr, pt, pb)}, ())], (0, 0)


class _Conv2D:
    def modules(self, i, layer):
        c_out, c_in, kh, kw = layer.params()[0].shape
        pad, padding = conv_padding(i, layer)
        conv = ("Conv2d", {"in_channels": c_in, "out_channels": c_out, "kernel_size": (kh, kw),
                           "stride": layer.stride, "padding": padding}, ("weight", "bias"))  # fmt: skip
        tail = [(k, a, ()) for k, a in _activation(i, layer) + _dropout(layer.dropout)]
        flat = [("Flatten", {}, ())] if layer.flatten else []
        return pad + [conv] + tail + flat

    def to_torch(self, params):
        w, b = params
        return {"weight": w, "bias": b}

    def from_torch(self, arrays):
        return [arrays["weight"], arrays["bias"]]


class _Conv2DTranspose(_Conv2D):
    """Read from the layer's public settings: ``stride``, ``padding`` (an int pair),
    ``output_padding`` (an int pair), ``activation``, ``dropout``; weight in PyTorch's
    ``(C_in, C_out, KH, KW)`` layout."""

    def modules(self, i, layer):
        c_in, c_out, kh, kw = layer.params()[0].shape
        padding = _pair(i, layer, "padding")
        output_padding = _pair(i, layer, "output_padding")
        conv = ("ConvTranspose2d", {"in_channels": c_in, "out_channels": c_out,
                                    "kernel_size": (kh, kw), "stride": layer.stride,
                                    "padding": padding, "output_padding": output_padding},
                ("weight", "bias"))  # fmt: skip
        dropout = _dropout(getattr(layer, "dropout", 1.0))
        return [conv] + [(k, a, ()) for k, a in _activation(i, layer) + dropout]


def _pair(i, layer, name):
    value = getattr(layer, name, 0)
    if isinstance(value, str):
        raise ConversionError(
            f"{_where(i, layer)}: {name}={value!r} has no fixed torch.nn.ConvTranspose2d "
            "counterpart (give it as ints)"
        )
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) == 4:  # (top, bottom, left, right)
        if pair[0] != pair[1] or pair[2] != pair[3]:
            raise ConversionError(
                f"{_where(i, layer)}: {name} {pair} differs between the two sides of an axis; "
                "torch.nn.ConvTranspose2d pads both sides alike"
            )
        pair = (pair[0], pair[2])
    return tuple(int(v) for v in pair)


class _BatchNorm:
    """``BatchNorm2d`` / ``BatchNorm1d`` (``SequenceBatchNorm1d`` for a ``BatchNorm1D`` set
    up on ``(N, T, D)``), then the activation. The arrays are ``params()`` then
    ``buffers()``; for gradients (``params()``'s shapes alone) just ``weight`` and
    ``bias``."""

    _NAMES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def modules(self, i, layer):
        kind = self.kind
        if kind == "BatchNorm1d" and layer.input_ndim == 3:
            kind = "SequenceBatchNorm1d"
        args = {"num_features": layer.num_features, "eps": layer.eps, "momentum": layer.momentum}
        return [(kind, args, self._NAMES)] + [(k, a, ()) for k, a in _activation(i, layer)]

    def to_torch(self, arrays):
        return dict(zip(self._NAMES, arrays, strict=False))

    def from_torch(self, arrays):
        return [arrays[name] for name in self._NAMES if name in arrays]


class _MaxPool2D:
    def modules(self, i, layer):
        pool = ("MaxPool2d", {"kernel_size": layer.size, "stride": layer.stride}, ())
        return [pool] + [(k, a, ()) for k, a in _dropout(layer.dropout)]


class _Flatten:
    def modules(self, i, layer):
        return [("Flatten", {}, ())]


class _Reshape:
    def modules(self, i, layer):
        unflatten = ("Unflatten", {"dim": 1, "unflattened_size": tuple(layer.target_shape)}, ())
        # Unflatten splits axis 1 only: an input of more axes is flattened first
        return ([("Flatten", {}, ())] if layer.input_ndim > 2 else []) + [unflatten]


class _Embedding:
    def modules(self, i, layer):
        v, e = layer.params()[0].shape
        return [("Embedding", {"num_embeddings": v, "embedding_dim": e}, ("weight",))]

    def to_torch(self, params):
        return {"weight": params[0]}

    def from_torch(self, arrays):
        return [arrays["weight"]]


_RNN_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


class _Recurrent:
    """RNN and LSTM: one bias, PyTorch's two added up."""

    def __init__(self, kind: str, single_bias: bool = True) -> None:
        self.kind = kind
        self.single_bias = single_bias

    def modules(self, i, layer):
        w_ih, w_hh = layer.params()[:2]
        args = {"input_size": w_ih.shape[0], "hidden_size": w_hh.shape[0],
                "return_sequences": layer.return_sequences, "stateful": layer.stateful}  # fmt: skip
        if self.single_bias:
            args["single_bias"] = True
        return [(self.kind, args, _RNN_NAMES)] + [(k, a, ()) for k, a in _dropout(layer.dropout)]

    def to_torch(self, params):
        w_ih, w_hh, b = params
        return {"weight_ih_l0": _t(w_ih), "weight_hh_l0": _t(w_hh), "bias_ih_l0": b,
                "bias_hh_l0": np.zeros_like(b)}  # fmt: skip

    def from_torch(self, arrays):
        b = arrays["bias_ih_l0"] + arrays["bias_hh_l0"]
        return [_t(arrays["weight_ih_l0"]), _t(arrays["weight_hh_l0"]), b]


class _GRU(_Recurrent):
    """GRU: fastdl keeps both biases (the reset gate multiplies ``h W_hn + b_hn``)."""

    def __init__(self) -> None:
        super().__init__("GRULayer", single_bias=False)

    def to_torch(self, params):
        w_ih, w_hh, b_ih, b_hh = params
        return {"weight_ih_l0": _t(w_ih), "weight_hh_l0": _t(w_hh), "bias_ih_l0": b_ih,
                "bias_hh_l0": b_hh}  # fmt: skip

    def from_torch(self, arrays):
        return [_t(arrays["weight_ih_l0"]), _t(arrays["weight_hh_l0"]), arrays["bias_ih_l0"],
                arrays["bias_hh_l0"]]  # fmt: skip


def _converters() -> dict[type, object]:
    """Converters by exact layer class (a subclass may compute something else). Layers that
    newer fastdl versions add (``Conv2DTranspose``, ``Reshape``) are included when present."""
    table = {
        _layers.Dense: _Dense(),
        _layers.Conv2D: _Conv2D(),
        _layers.MaxPool2D: _MaxPool2D(),
        _layers.BatchNorm1D: _BatchNorm("BatchNorm1d"),
        _layers.BatchNorm2D: _BatchNorm("BatchNorm2d"),
        _layers.Flatten: _Flatten(),
        _layers.Embedding: _Embedding(),
        _layers.RNNLayer: _Recurrent("RNNLayer"),
        _layers.GRULayer: _GRU(),
        _layers.LSTMLayer: _Recurrent("LSTMLayer"),
    }
    for module, name, convert in (("conv_transpose", "Conv2DTranspose", _Conv2DTranspose()),
                                  ("reshape", "Reshape", _Reshape())):  # fmt: skip
        cls = optional_layer(module, name)
        if cls is not None:
            table[cls] = convert
    return table


def optional_layer(module: str, name: str):
    """The layer class ``fastdl.layers.<module>.<name>``, or None in a fastdl without it."""
    cls = getattr(_layers, name, None)
    if cls is None:
        try:
            cls = getattr(importlib.import_module(f"fastdl.layers.{module}"), name, None)
        except ImportError:
            return None
    return cls


def converter(i: int, layer):
    """The converter of ``layer`` (``net.layers[i]``), or :class:`ConversionError`."""
    found = _converters().get(type(layer))
    if found is None:
        names = ", ".join(sorted(cls.__name__ for cls in _converters()))
        raise ConversionError(
            f"{_where(i, layer)}: no PyTorch counterpart for this layer class (fastdl converts "
            f"{names})"
        )
    return found


def _check_built(net, where: str) -> None:
    if any(layer.first for layer in net.layers):
        raise ConversionError(
            f"{where}: the network is not set up yet (no weights); call net.build(input_shape) "
            "or run a batch first"
        )


def modules(net, where: str = "fastdl.torch_layout") -> list[TorchModule]:
    """The flat ``nn.Sequential`` of ``net``, module by module (see the module docstring).

    Raises
    ------
    ConversionError
        For a network not set up yet, or a layer or activation without a counterpart.
    """
    _check_built(net, where)
    out = []
    for i, layer in enumerate(net.layers):
        for kind, args, params in converter(i, layer).modules(i, layer):
            out.append(TorchModule(kind, args, i, tuple(params)))
    return out


def layer_prefixes(net, prefixes=None) -> dict[int, str]:
    """Layer index → key prefix, for every layer with parameters.

    Parameters
    ----------
    net : NeuralNetwork
    prefixes : dict of int to str, or sequence of str, optional
        The names of the torch modules that hold each layer's parameters: ``{layer index:
        name}``, or one name per layer with parameters, in order. ``""`` means no prefix (a
        bare ``nn.LSTM``'s ``weight_ih_l0``). Default: the flat ``Sequential``'s indices.
    """
    if prefixes is None:
        found = {}
        for j, m in enumerate(modules(net)):
            if m.params:
                found[m.layer] = str(j)
        return found
    holders = [i for i, layer in enumerate(net.layers) if layer.params()]
    if isinstance(prefixes, Mapping):
        given = {int(k): str(v) for k, v in prefixes.items()}
        missing = [i for i in holders if i not in given]
        extra = [i for i in given if i not in holders]
        if missing or extra:
            raise ValueError(
                f"prefixes: give a name for each layer with parameters, {holders}; missing "
                f"{missing}, not layers with parameters {extra}"
            )
        return {i: given[i] for i in holders}
    if isinstance(prefixes, str) or not isinstance(prefixes, Sequence):
        raise TypeError(f"prefixes must be a dict or a list of str, got {prefixes!r}")
    if len(prefixes) != len(holders):
        raise ValueError(
            f"prefixes: {len(prefixes)} names for {len(holders)} layers with parameters "
            f"(layers {holders})"
        )
    return {i: str(p) for i, p in zip(holders, prefixes, strict=True)}


def _key(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def to_torch_layout(net, arrays_per_layer: Sequence[Sequence[np.ndarray]], prefixes=None):
    """``{key: array}`` in PyTorch's layout from arrays in fastdl's (one list per layer, as
    ``[layer.params() + layer.buffers() for layer in net.layers]``, or the gradients of the
    parameters alone)."""
    names = layer_prefixes(net, prefixes)
    out = {}
    for i, prefix in names.items():
        layer = net.layers[i]
        for name, a in converter(i, layer).to_torch(list(arrays_per_layer[i])).items():
            out[_key(prefix, name)] = np.asarray(a, order="C")  # (0-d stays 0-d)
    return out


def layer_keys(net, prefixes=None) -> dict[str, tuple[int, str]]:
    """Every key of :func:`state_arrays`, mapped to ``(layer index, PyTorch's name)``."""
    names = layer_prefixes(net, prefixes)
    out = {}
    for i, prefix in names.items():
        layer = net.layers[i]
        for name in converter(i, layer).to_torch(_arrays(layer)):
            out[_key(prefix, name)] = (i, name)
    return out


def _arrays(layer) -> list[np.ndarray]:
    """What a layer's torch keys hold: its parameters, then its buffers."""
    return layer.params() + layer.buffers()


def state_arrays(net, prefixes=None) -> dict[str, np.ndarray]:
    """The network's parameters and buffers as PyTorch names and lays them out:
    ``{key: array}``, copies (a torch ``state_dict``'s keys).

    Raises
    ------
    ConversionError
        As :func:`modules`.
    """
    _check_built(net, "state_arrays")
    arrays = [[a.copy() for a in _arrays(layer)] for layer in net.layers]
    return to_torch_layout(net, arrays, prefixes)


def from_torch_layout(net, arrays: Mapping[str, np.ndarray], prefixes=None):
    """Arrays in fastdl's layout, one list per layer (its parameters, then its buffers;
    empty for layers without parameters), from ``{key: array}`` in PyTorch's; the keys must
    be checked first (:func:`load_state`)."""
    names = layer_prefixes(net, prefixes)
    out = [[] for _ in net.layers]
    for i, prefix in names.items():
        layer = net.layers[i]
        suffixes = converter(i, layer).to_torch(_arrays(layer))
        out[i] = converter(i, layer).from_torch({s: arrays[_key(prefix, s)] for s in suffixes})
    return out


def _describe(a) -> str:
    return f"{np.dtype(a.dtype).name} {tuple(a.shape)}"


def load_state(net, arrays: Mapping[str, np.ndarray], prefixes=None, strict: bool = True,
               where: str = "load_state") -> None:  # fmt: skip
    """Copy ``{key: array}`` in PyTorch's layout into ``net``'s parameters and buffers, in
    place.

    Every key of :func:`state_arrays` must be present with its shape and dtype (and, with
    ``strict``, no other key); all are checked, and converted, before any weight changes.

    Raises
    ------
    ValueError
        Naming ``where``, the key, its layer, and the expected and given dtype and shape.
    """
    _check_built(net, where)
    expected = state_arrays(net, prefixes)
    owners = layer_keys(net, prefixes)
    missing = [k for k in expected if k not in arrays]
    if missing:
        k = missing[0]
        i, _ = owners[k]
        raise ValueError(
            f"{where}: no array {k!r} for {_where(i, net.layers[i])} (expected "
            f"{_describe(expected[k])}); {len(missing)} of {len(expected)} keys missing: "
            f"{missing}; given keys: {sorted(arrays)}"
        )
    unexpected = sorted(k for k in arrays if k not in expected)
    if strict and unexpected:
        raise ValueError(
            f"{where}: unexpected arrays {unexpected} (the network has {list(expected)}; "
            "strict=False ignores them)"
        )
    for k, e in expected.items():
        a = arrays[k]
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{where}: {k!r} is a {type(a).__name__}, not a numpy array")
        if a.shape != e.shape or a.dtype != e.dtype:
            i, _ = owners[k]
            raise ValueError(
                f"{where}: {k!r} ({_describe(a)}) does not fit {_where(i, net.layers[i])}, which "
                f"expects {_describe(e)}"
            )
    converted = from_torch_layout(net, arrays, prefixes)
    for layer, new in zip(net.layers, converted, strict=True):
        for p, a in zip(_arrays(layer), new, strict=True):
            if p.shape != a.shape:  # a converter's own mistake: fail before anything changes
                raise RuntimeError(f"{where}: converted {a.shape}, the parameter is {p.shape}")
    for layer, new in zip(net.layers, converted, strict=True):
        for p, a in zip(_arrays(layer), new, strict=True):
            p[...] = a
