"""Networks to and from PyTorch: ``to_torch``, ``from_torch``, and state dicts both ways.

``to_torch(net)`` builds one flat ``torch.nn.Sequential`` that computes what ``net`` computes,
with its weights; ``from_torch(module, input_shape)`` builds the fastdl network of such a
``Sequential`` (or of one module). ``state_dict(net)`` and ``load_state_dict(net, sd)`` carry
weights between a fastdl network and a torch module of your own with the same layers, by key
names. The modules each layer becomes, the key names (``"0.weight"``, ``"0.bias"``, ...: a
parameter's key is its module's index in the flat ``Sequential`` and PyTorch's own name) and
the weight layouts are tabled in :mod:`fastdl.torch_layout`; ``net.save_weights`` writes the
same keys, so ``to_torch(net).load_state_dict(safetensors.torch.load_file(path))`` just works.

What differs from torch's defaults, and why
-------------------------------------------
- Recurrent layers are this module's :class:`RNNLayer`, :class:`GRULayer` and
  :class:`LSTMLayer`: ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM`` with ``batch_first=True`` (fastdl's
  ``(N, T, D)``) whose ``forward`` returns the output alone (all steps, or the last with
  ``return_sequences=False``), so that they fit in an ``nn.Sequential``, and which can carry
  their state from batch to batch (``stateful=True``) as fastdl's do. Their parameters keep
  torch's names (``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``).
- fastdl's RNN and LSTM learn one bias per gate; torch's learn two that add up. ``to_torch``
  sets ``bias_ih_l0 = b`` and ``bias_hh_l0 = 0`` and freezes ``bias_hh_l0``
  (``requires_grad=False``, :class:`LSTMLayer`'s ``single_bias=True``), so that a step taken
  in torch is the step fastdl takes (with both learning, plain SGD would move their sum twice
  as far). ``from_torch`` adds the two. fastdl's GRU has torch's two biases as they are.
- fastdl's ``dropout`` is the keep probability: ``nn.Dropout(p = 1 − keep)``. The two draw
  different masks, so outputs agree in evaluation mode (``module.eval()``,
  ``net.forward(x, inference=True)``) and in training without dropout.
- ``Conv2D(padding="same")`` with a stride > 1 pads as TensorFlow does, by an amount that
  depends on the image size; it becomes :class:`SamePad2d` (that padding, for each input)
  then a ``Conv2d`` without padding. With stride 1 and an even kernel it is an
  ``nn.ZeroPad2d`` (one more row and column at the bottom and right, as torch's
  ``padding="same"``).
- A stateful layer's carried state goes over with the weights, both ways.
- ``BatchNorm2D`` is ``nn.BatchNorm2d`` and ``BatchNorm1D`` on ``(N, D)`` is
  ``nn.BatchNorm1d``, with the same ``momentum`` (PyTorch's convention is fastdl's) and
  ``eps``; the running statistics and ``num_batches_tracked`` go over with the weights,
  both ways, and the module is in training mode as ``to_torch`` returns it (call
  ``.eval()`` to normalise with the running statistics, as ``inference=True`` does).
  ``BatchNorm1D`` on ``(N, T, D)`` normalises the last axis (fastdl's sequences are
  features-last), where ``nn.BatchNorm1d`` normalises axis 1 of ``(N, C, L)``: it becomes
  :class:`SequenceBatchNorm1d`, which transposes around it.

What does not convert (:class:`~fastdl.torch_layout.ConversionError`, naming the layer or
module and why): fastdl layers and activations of your own; torch modules other than those
listed in :mod:`fastdl.torch_layout` (a module with its own ``forward`` is converted by
building the fastdl network yourself and calling :func:`load_state_dict` with ``prefixes``);
``bias=False``; batch norm with ``affine=False`` or ``track_running_stats=False``, and
``nn.BatchNorm1d`` on ``(N, C, L)`` input (use :class:`SequenceBatchNorm1d`); convolutions with ``dilation``, ``groups``, a ``padding_mode`` other than
zeros, different strides along the two axes or padding that differs between the sides of an
axis (other than fastdl's ``"same"``); pooling with padding, dilation or ``ceil_mode``;
embeddings with ``padding_idx``, ``max_norm`` or ``scale_grad_by_freq``; recurrent modules
with several layers, both directions, ``proj_size``, ``batch_first=False`` or a ReLU RNN; an
activation or dropout that does not follow a layer fastdl can attach it to (fastdl applies
them inside ``Dense``, ``Conv2D``, ``Conv2DTranspose`` and the batch-norm layers, and dropout
in the first three and after ``MaxPool2D`` and the recurrent layers), or two activations in
a row.

Examples
--------
>>> import numpy as np, torch, fastdl as fd
>>> from fastdl.interop.torch import to_torch, from_torch
>>> net = fd.NeuralNetwork([fd.Dense(4, fd.ReLU()), fd.Dense(2)], fd.MeanSquaredError(), seed=0)
>>> net.build((3,))  # doctest: +ELLIPSIS
NeuralNetwork(...)
>>> module = to_torch(net)
>>> list(module.state_dict())
['0.weight', '0.bias', '2.weight', '2.bias']
>>> back = from_torch(module, (3,), loss=fd.MeanSquaredError())
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError as err:  # pragma: no cover - depends on the environment
    raise ImportError(
        "fastdl.interop.torch needs PyTorch, an optional extra of fastdl: pip install "
        "'fastdl[torch]' (install torch first as your platform wants it; fastdl is tested "
        "with the CPU build, pip install torch==2.13.0)"
    ) from err

import fastdl.layers as fl
from fastdl import torch_layout
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.ops.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from fastdl.ops.conv import same_padding
from fastdl.torch_layout import ConversionError

__all__ = [
    "to_torch",
    "from_torch",
    "state_dict",
    "load_state_dict",
    "SamePad2d",
    "SequenceBatchNorm1d",
    "RNNLayer",
    "GRULayer",
    "LSTMLayer",
    "ConversionError",
]

_TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}
_NUMPY_DTYPES = {v: k for k, v in _TORCH_DTYPES.items()}


# -- modules of fastdl's own ----------------------------------------------------------------------


class SamePad2d(nn.Module):
    """Zero padding of fastdl's (and TensorFlow's) ``padding="same"`` for a convolution of
    ``kernel_size`` and ``stride`` that follows: ``OH = ceil(H / S)``, ``OW = ceil(W / S)``,
    the smaller half of each axis's padding first.

    Args:
        kernel_size (int or (int, int)): KH, KW of the convolution.
        stride (int): ``S``.

    Shape:
        - Input: ``(N, C, H, W)``. Output: ``(N, C, H + PT + PB, W + PL + PR)``.

    Examples:
        >>> pad = SamePad2d((3, 3), 2)
        >>> pad(torch.zeros(1, 1, 8, 8)).shape
        torch.Size([1, 1, 9, 9])
    """

    def __init__(self, kernel_size, stride: int) -> None:
        super().__init__()
        k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        self.kernel_size = (int(k[0]), int(k[1]))
        self.stride = int(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pt, pb, pl, pr = same_padding(int(x.shape[2]), int(x.shape[3]), *self.kernel_size,
                                      self.stride)  # fmt: skip
        return F.pad(x, (pl, pr, pt, pb))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class SequenceBatchNorm1d(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` over the last axis of ``(N, T, D)`` sequences, as fastdl's
    ``BatchNorm1D`` normalises them (each feature over the N·T steps); ``(N, D)`` input as
    ``nn.BatchNorm1d``. Its parameters and buffers are ``nn.BatchNorm1d``'s, by name.

    Args:
        num_features (int): ``D``.
        eps (float), momentum (float or None): as ``nn.BatchNorm1d``'s.

    Shape:
        - Input: ``(N, T, D)`` or ``(N, D)``. Output: the input's shape.

    Examples:
        >>> SequenceBatchNorm1d(3)(torch.zeros(2, 5, 3)).shape
        torch.Size([2, 5, 3])
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1):
        super().__init__(num_features, eps=eps, momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            return super().forward(x.transpose(1, 2)).transpose(1, 2)
        return super().forward(x)


class _Sequence:
    """What the three recurrent modules share: output alone, last step, carried state."""

    _n_states = 1

    def _fastdl_setup(self, return_sequences: bool, stateful: bool, single_bias: bool) -> None:
        self.return_sequences = bool(return_sequences)
        self.stateful = bool(stateful)
        self.single_bias = bool(single_bias)
        self._carried: tuple[torch.Tensor, ...] | None = None
        if single_bias:
            with torch.no_grad():
                self.bias_hh_l0.zero_()
            self.bias_hh_l0.requires_grad_(False)

    @property
    def state(self) -> tuple[torch.Tensor, ...] | None:
        """The carried state ``(h,)`` or ``(h, c)``, each ``(N, H)``; None means zeros."""
        return self._carried

    def reset_state(self) -> None:
        """Start the next batch from the zero state."""
        self._carried = None

    def set_state(self, *arrays) -> None:
        """Set the carried state (``h``, or ``h, c`` for the LSTM; each ``(N, H)``)."""
        if len(arrays) != self._n_states:
            raise ValueError(
                f"{type(self).__name__}.set_state: takes {self._n_states} arrays, got {len(arrays)}"
            )
        p = self.weight_hh_l0
        self._carried = tuple(torch.as_tensor(a, dtype=p.dtype, device=p.device).detach().clone()
                              for a in arrays)  # fmt: skip

    def _hx(self, x: torch.Tensor):
        if not (self.stateful and self._carried is not None):
            return None
        carried = self._carried[0].shape[0]
        if carried != x.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: stateful module carries state for batch size "
                f"{carried}, got a batch of {x.shape[0]}; call reset_state() first"
            )
        states = tuple(s.unsqueeze(0) for s in self._carried)
        return states if self._n_states == 2 else states[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, T, D)`` → ``(N, T, H)``, or ``(N, H)`` with ``return_sequences=False``."""
        out, final = super().forward(x, self._hx(x))
        if self.stateful:
            final = final if isinstance(final, tuple) else (final,)
            self._carried = tuple(s[0].detach() for s in final)
        return out if self.return_sequences else out[:, -1]

    def extra_repr(self) -> str:
        return (
            super().extra_repr()
            + f", return_sequences={self.return_sequences}, stateful={self.stateful}"
            + (", single_bias=True" if self.single_bias else "")
        )


class RNNLayer(_Sequence, nn.RNN):
    """``nn.RNN(input_size, hidden_size, batch_first=True)`` (tanh) that returns the output
    alone, as fastdl's ``RNNLayer``.

    Args:
        input_size (int): ``D``.
        hidden_size (int): ``H``.
        return_sequences (bool): every step ``(N, T, H)`` (default), or the last ``(N, H)``.
        stateful (bool): carry the final state into the next batch (detached, truncated
            backpropagation through time); ``reset_state()`` returns to zeros.
        single_bias (bool): hold ``bias_hh_l0`` at zero, out of training, so the module
            learns fastdl's one bias (``to_torch`` sets it).

    Shape:
        - Input: ``(N, T, D)``. Output: ``(N, T, H)`` or ``(N, H)``.

    Examples:
        >>> RNNLayer(3, 5, return_sequences=False)(torch.zeros(2, 4, 3)).shape
        torch.Size([2, 5])
    """

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = True,
                 stateful: bool = False, single_bias: bool = False) -> None:  # fmt: skip
        nn.RNN.__init__(self, input_size, hidden_size, batch_first=True)
        self._fastdl_setup(return_sequences, stateful, single_bias)


class GRULayer(_Sequence, nn.GRU):
    """``nn.GRU(input_size, hidden_size, batch_first=True)`` that returns the output alone, as
    fastdl's ``GRULayer`` (whose two biases are torch's).

    Args:
        input_size (int): ``D``.
        hidden_size (int): ``H``.
        return_sequences (bool), stateful (bool): as for :class:`RNNLayer`.

    Shape:
        - Input: ``(N, T, D)``. Output: ``(N, T, H)`` or ``(N, H)``.

    Examples:
        >>> GRULayer(3, 5)(torch.zeros(2, 4, 3)).shape
        torch.Size([2, 4, 5])
    """

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = True,
                 stateful: bool = False) -> None:  # fmt: skip
        nn.GRU.__init__(self, input_size, hidden_size, batch_first=True)
        self._fastdl_setup(return_sequences, stateful, False)


class LSTMLayer(_Sequence, nn.LSTM):
    """``nn.LSTM(input_size, hidden_size, batch_first=True)`` that returns the output alone,
    as fastdl's ``LSTMLayer``; the state is ``(h, c)``.

    Args:
        input_size (int): ``D``.
        hidden_size (int): ``H``.
        return_sequences (bool), stateful (bool), single_bias (bool): as for
            :class:`RNNLayer`.

    Shape:
        - Input: ``(N, T, D)``. Output: ``(N, T, H)`` or ``(N, H)``.

    Examples:
        >>> LSTMLayer(3, 5, stateful=True)(torch.zeros(2, 4, 3)).shape
        torch.Size([2, 4, 5])
    """

    _n_states = 2

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = True,
                 stateful: bool = False, single_bias: bool = False) -> None:  # fmt: skip
        nn.LSTM.__init__(self, input_size, hidden_size, batch_first=True)
        self._fastdl_setup(return_sequences, stateful, single_bias)


_OWN = {"SamePad2d": SamePad2d, "RNNLayer": RNNLayer, "GRULayer": GRULayer,
        "LSTMLayer": LSTMLayer, "SequenceBatchNorm1d": SequenceBatchNorm1d}  # fmt: skip
_RECURRENT = (RNNLayer, GRULayer, LSTMLayer)


# -- fastdl → torch --------------------------------------------------------------------------------


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, copy=True))  # a writable copy of its own


def state_dict(net, prefixes=None) -> OrderedDict:
    """``net``'s parameters (and buffers: batch norm's running statistics) as a torch state
    dict, under PyTorch's names and in its layouts.

    Parameters
    ----------
    net : NeuralNetwork
        Set up (``net.build(input_shape)`` or a first batch).
    prefixes : dict of int to str, or list of str, optional
        The names of the modules that hold each layer's parameters in a torch module of
        your own: ``{layer index: "conv1", ...}`` or one name per layer with parameters, in
        order (keys become ``"conv1.weight"``, ...). Default: the indices of
        :func:`to_torch`'s ``Sequential`` (``"0.weight"``, ...).

    Returns
    -------
    OrderedDict of str to torch.Tensor
        Copies; ``module.load_state_dict(state_dict(net, prefixes))`` loads them.
    """
    arrays = torch_layout.state_arrays(net, prefixes)
    return OrderedDict((k, _tensor(a)) for k, a in arrays.items())


def _module(spec: torch_layout.TorchModule) -> nn.Module:
    cls = _OWN.get(spec.kind) or getattr(nn, spec.kind)
    return cls(**spec.args)


def to_torch(net) -> nn.Sequential:
    """An ``nn.Sequential`` that computes what ``net`` computes, with copies of its weights.

    Parameters
    ----------
    net : NeuralNetwork
        Set up (``net.build(input_shape)`` or a first batch). Its loss is not converted.

    Returns
    -------
    torch.nn.Sequential
        In ``net``'s dtype, in training mode; modules and key names as tabled in
        :mod:`fastdl.torch_layout`. A stateful layer's carried state and a batch norm's
        running statistics (buffers, in the state dict) are copied too.

    Raises
    ------
    ConversionError
        Naming the layer (and activation) with no PyTorch counterpart, or a network not set
        up yet.
    """
    specs = torch_layout.modules(net, where="to_torch")
    modules = [_module(spec) for spec in specs]
    seq = nn.Sequential(*modules).to(_TORCH_DTYPES[net.dtype])
    seq.load_state_dict(state_dict(net), strict=True)
    for spec, module in zip(specs, modules, strict=True):
        layer = net.layers[spec.layer]
        if isinstance(module, _RECURRENT) and getattr(layer, "state", None) is not None:
            module.set_state(*(_tensor(s) for s in layer.state))
    return seq


# -- torch → fastdl --------------------------------------------------------------------------------


def _numpy(where: str, key: str, t) -> np.ndarray:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{where}: {key!r} is a {type(t).__name__}, not a tensor")
    t = t.detach().cpu()
    try:
        return t.numpy()
    except TypeError as err:  # bfloat16 and other dtypes numpy lacks
        raise ValueError(f"{where}: {key!r} has dtype {t.dtype}, which numpy cannot hold") from err


def load_state_dict(net, state_dict, prefixes=None, strict: bool = True) -> None:
    """Copy a torch state dict into ``net``'s parameters (and buffers), by key names, in
    place.

    Parameters
    ----------
    net : NeuralNetwork
        Set up (``net.build(input_shape)``), with the layers of the module the state came
        from.
    state_dict : mapping of str to torch.Tensor
        E.g. ``module.state_dict()``.
    prefixes : dict of int to str, or list of str, optional
        As for :func:`state_dict`.
    strict : bool, default True
        Refuse keys the network has no parameter for (missing keys are always refused).

    Raises
    ------
    ValueError
        Before any weight changes, naming the key, the layer, and the expected and given
        dtype and shape.
    """
    where = "load_state_dict"
    arrays = {k: _numpy(where, k, t) for k, t in state_dict.items()}
    torch_layout.load_state(net, arrays, prefixes, strict=strict, where=where)


def _flat(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for every module of nested ``nn.Sequential`` containers, in order."""
    if type(module) is not nn.Sequential:
        return [(prefix, module)]
    out = []
    for name, child in module.named_children():
        out += _flat(child, f"{prefix}.{name}" if prefix else name)
    return out


def _label(name: str, module: nn.Module) -> str:
    return f"module {name or '(the module itself)'} ({type(module).__name__})"


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


class _Reader:
    """Walks the flat module list and builds fastdl layers (see :func:`from_torch`)."""

    def __init__(self, named: list[tuple[str, nn.Module]]) -> None:
        self.named = [(n, m) for n, m in named if type(m) is not nn.Identity]
        self.i = 0
        self.layers: list = []
        self.holders: dict[int, str] = {}
        self.channels_first_1d: dict[int, tuple[str, nn.Module]] = {}  # nn.BatchNorm1d

    def fail(self, name, module, why: str):
        raise ConversionError(f"from_torch: {_label(name, module)}: {why}")

    def peek(self):
        return self.named[self.i] if self.i < len(self.named) else (None, None)

    def activation(self):
        """The activation module next, as a fastdl operation (None if there is none)."""
        name, m = self.peek()
        kind = type(m)
        if kind in (nn.ReLU, nn.Sigmoid, nn.Tanh):
            self.i += 1
            return {nn.ReLU: ReLU, nn.Sigmoid: Sigmoid, nn.Tanh: Tanh}[kind]()
        if kind is nn.LeakyReLU:
            self.i += 1
            if not 0.0 <= m.negative_slope < 1.0:
                self.fail(name, m, f"negative_slope {m.negative_slope} is outside fastdl's [0, 1)")
            return LeakyReLU(m.negative_slope)
        return None

    def dropout(self) -> float:
        """The keep probability of the ``nn.Dropout`` next (1.0 if there is none)."""
        name, m = self.peek()
        if type(m) is not nn.Dropout:
            return 1.0
        self.i += 1
        if m.p >= 1.0:
            self.fail(name, m, "p = 1 drops everything (fastdl's keep probability must be > 0)")
        return round(1.0 - m.p, 12)  # 1 - (1 - 0.3) is 0.30000000000000004 in floats

    def add(self, layer, name: str | None = None) -> None:
        if name is not None:
            self.holders[len(self.layers)] = name
        self.layers.append(layer)

    def run(self) -> None:
        while self.i < len(self.named):
            name, m = self.named[self.i]
            self.i += 1
            read = _READERS.get(type(m))
            if read is None:
                if type(m) in _TAILS:
                    before = self.named[self.i - 2][1] if self.i >= 2 else None
                    after = "the start" if before is None else type(before).__name__
                    self.fail(
                        name,
                        m,
                        f"follows {after}, which fastdl cannot attach it to (fastdl applies "
                        "activations inside Dense, Conv2D, Conv2DTranspose and batch norm, and "
                        "dropout in the first three and after MaxPool2D and recurrent layers; "
                        "one activation each)",
                    )
                self.fail(
                    name,
                    m,
                    "has no fastdl layer (fastdl reads Linear, Conv2d, ConvTranspose2d, "
                    "ZeroPad2d, MaxPool2d, BatchNorm1d, BatchNorm2d, Flatten, Unflatten, "
                    "Embedding, fastdl.interop.torch's RNNLayer/GRULayer/LSTMLayer, SamePad2d "
                    "and SequenceBatchNorm1d, nn.RNN/GRU/LSTM, Dropout, ReLU, Sigmoid, Tanh, "
                    "LeakyReLU, Identity, in nn.Sequential)",
                )
            read(self, name, m)


def _needs_bias(r: _Reader, name, m) -> None:
    if m.bias is None:
        r.fail(name, m, "bias=False: fastdl's layer always learns a bias")


def _read_linear(r: _Reader, name, m: nn.Linear) -> None:
    _needs_bias(r, name, m)
    act = r.activation()
    r.add(fl.Dense(m.out_features, activation=act, dropout=r.dropout()), name)


def _conv_checks(r: _Reader, name, m) -> int:
    _needs_bias(r, name, m)
    if tuple(m.dilation) != (1, 1):
        r.fail(name, m, f"dilation {tuple(m.dilation)}: fastdl's convolutions have none")
    if m.groups != 1:
        r.fail(name, m, f"groups={m.groups}: fastdl's convolutions are not grouped")
    if m.padding_mode != "zeros":
        r.fail(name, m, f"padding_mode={m.padding_mode!r}: fastdl pads with zeros only")
    sh, sw = m.stride
    if sh != sw:
        r.fail(name, m, f"stride {tuple(m.stride)}: fastdl's stride is the same on both axes")
    return int(sh)


def _read_pad(r: _Reader, name, m) -> None:
    cname, conv = r.peek()
    if type(conv) is not nn.Conv2d:
        r.fail(name, m, "fastdl reads a padding module only right before an nn.Conv2d")
    r.i += 1
    _read_conv(r, cname, conv, pad=(name, m))


def _read_conv(r: _Reader, name, m: nn.Conv2d, pad=None) -> None:
    stride = _conv_checks(r, name, m)
    kh, kw = m.kernel_size
    same = (kh - 1) // 2, kh // 2, (kw - 1) // 2, kw // 2  # fastdl's "same" for stride 1
    if isinstance(m.padding, str):  # torch's "same" (stride 1) or "valid"
        if pad is not None:
            r.fail(name, m, f"padding={m.padding!r} after a padding module")
        padding = m.padding
    elif pad is not None and type(pad[1]) is SamePad2d:
        if tuple(m.padding) != (0, 0) or pad[1].kernel_size != (kh, kw) or pad[1].stride != stride:
            r.fail(name, m, f"does not match the {_label(*pad)} before it")
        padding = "same"
    else:
        ph, pw = m.padding
        left, right, top, bottom = (0, 0, 0, 0) if pad is None else pad[1].padding
        t, b, le, ri = top + ph, bottom + ph, left + pw, right + pw
        if t == b and le == ri:
            padding = (t, le)
        elif stride == 1 and (t, b, le, ri) == same:
            padding = "same"
        else:
            r.fail(
                name,
                m,
                f"padding top {t}, bottom {b}, left {le}, right {ri}: fastdl's Conv2D pads both "
                "sides of an axis alike, or as 'same' (stride 1: the extra row and column at the "
                "bottom and right)",
            )
    act = r.activation()
    layer = fl.Conv2D(m.out_channels, (kh, kw), stride=stride, padding=padding, activation=act,
                      dropout=r.dropout())  # fmt: skip
    r.add(layer, name)


def _read_conv_transpose(r: _Reader, name, m: nn.ConvTranspose2d) -> None:
    cls = torch_layout.optional_layer("conv_transpose", "Conv2DTranspose")
    if cls is None:
        r.fail(name, m, "this fastdl has no Conv2DTranspose layer")
    stride = _conv_checks(r, name, m)
    act = r.activation()
    layer = cls(m.out_channels, tuple(m.kernel_size), stride=stride, padding=tuple(m.padding),
                output_padding=tuple(m.output_padding), activation=act, dropout=r.dropout())  # fmt: skip
    r.add(layer, name)


def _read_batchnorm(r: _Reader, name, m) -> None:
    if not m.affine:
        r.fail(name, m, "affine=False: fastdl's batch norm always learns its scale and shift")
    if not m.track_running_stats:
        r.fail(name, m, "track_running_stats=False: fastdl's batch norm keeps running "
               "statistics, and normalises with them at inference")  # fmt: skip
    cls = fl.BatchNorm2D if type(m) is nn.BatchNorm2d else fl.BatchNorm1D
    if type(m) is nn.BatchNorm1d:
        r.channels_first_1d[len(r.layers)] = (name, m)
    r.add(cls(momentum=m.momentum, eps=m.eps, activation=r.activation()), name)


def _read_pool(r: _Reader, name, m: nn.MaxPool2d) -> None:
    kh, kw = _pair(m.kernel_size)
    stride = _pair(m.stride if m.stride is not None else m.kernel_size)
    if kh != kw or stride[0] != stride[1]:
        r.fail(name, m, "fastdl's MaxPool2D has square windows and one stride")
    if _pair(m.padding) != (0, 0) or _pair(m.dilation) != (1, 1) or m.ceil_mode:
        r.fail(name, m, "padding, dilation and ceil_mode are not in fastdl's MaxPool2D")
    if m.return_indices:
        r.fail(name, m, "return_indices=True returns a pair, not an array")
    r.add(fl.MaxPool2D(kh, stride=stride[0], dropout=r.dropout()))


def _read_flatten(r: _Reader, name, m: nn.Flatten) -> None:
    if m.start_dim != 1 or m.end_dim != -1:
        r.fail(name, m, f"start_dim={m.start_dim}, end_dim={m.end_dim}: fastdl flattens 1..-1")
    r.add(fl.Flatten())


def _read_unflatten(r: _Reader, name, m: nn.Unflatten) -> None:
    cls = torch_layout.optional_layer("reshape", "Reshape")
    if cls is None:
        r.fail(name, m, "this fastdl has no Reshape layer")
    if m.dim != 1:
        r.fail(name, m, f"dim={m.dim}: fastdl's Reshape gives each example (axis 1 on) a shape")
    r.add(cls(tuple(int(d) for d in m.unflattened_size)))


def _read_embedding(r: _Reader, name, m: nn.Embedding) -> None:
    if m.padding_idx is not None or m.max_norm is not None or m.scale_grad_by_freq:
        r.fail(
            name, m, "padding_idx, max_norm and scale_grad_by_freq are not in fastdl's Embedding"
        )
    r.add(fl.Embedding(m.num_embeddings, m.embedding_dim), name)


def _read_recurrent(r: _Reader, name, m) -> None:
    if m.num_layers != 1 or m.bidirectional or not m.bias or getattr(m, "proj_size", 0):
        r.fail(name, m, "fastdl's recurrent layers have one layer, one direction, biases and no "
               "proj_size (stack fastdl layers for more)")  # fmt: skip
    if not m.batch_first:
        r.fail(name, m, "batch_first=False: fastdl's sequences are (N, T, D)")
    if type(m) is nn.RNN and m.nonlinearity != "tanh":
        r.fail(name, m, "nonlinearity='relu': fastdl's RNNLayer is tanh")
    if isinstance(m, _Sequence):
        sequences, stateful = m.return_sequences, m.stateful
    else:
        if r.i != len(r.named):
            r.fail(name, m, f"returns (output, state), so in an nn.Sequential it must come last; "
                   f"use fastdl.interop.torch.{_FASTDL_RECURRENT[type(m)].__name__}, which "
                   "returns the output alone")  # fmt: skip
        sequences, stateful = True, False
    cls = _FASTDL_RECURRENT[type(m)]
    layer = cls(m.hidden_size, return_sequences=sequences, stateful=stateful, dropout=r.dropout())
    r.add(layer, name)


_READERS = {
    nn.Linear: _read_linear,
    nn.Conv2d: _read_conv,
    nn.ConvTranspose2d: _read_conv_transpose,
    nn.ZeroPad2d: _read_pad,
    SamePad2d: _read_pad,
    nn.MaxPool2d: _read_pool,
    nn.BatchNorm1d: _read_batchnorm,
    nn.BatchNorm2d: _read_batchnorm,
    SequenceBatchNorm1d: _read_batchnorm,
    nn.Flatten: _read_flatten,
    nn.Unflatten: _read_unflatten,
    nn.Embedding: _read_embedding,
    nn.RNN: _read_recurrent,
    nn.GRU: _read_recurrent,
    nn.LSTM: _read_recurrent,
    RNNLayer: _read_recurrent,
    GRULayer: _read_recurrent,
    LSTMLayer: _read_recurrent,
}
_TAILS = (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.Dropout)
_FASTDL_RECURRENT = {
    nn.RNN: fl.RNNLayer, RNNLayer: fl.RNNLayer,
    nn.GRU: fl.GRULayer, GRULayer: fl.GRULayer,
    nn.LSTM: fl.LSTMLayer, LSTMLayer: fl.LSTMLayer,
}  # fmt: skip


def _dtype(module: nn.Module, dtype) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    found = {p.dtype for p in module.parameters()}
    if not found:
        return np.dtype(np.float32)
    if len(found) > 1 or next(iter(found)) not in _NUMPY_DTYPES:
        raise ConversionError(
            f"from_torch: the module's parameters are {sorted(map(str, found))}; fastdl takes "
            "float32 or float64 throughout (module.float() or .double() first)"
        )
    return _NUMPY_DTYPES[next(iter(found))]


def from_torch(module: nn.Module, input_shape, loss=None, seed=None, dtype=None) -> NeuralNetwork:
    """The fastdl network of an ``nn.Sequential`` (or of one module), with copies of its
    weights.

    Parameters
    ----------
    module : torch.nn.Module
        An ``nn.Sequential`` (nested ones are read as one) of the modules listed in
        :mod:`fastdl.torch_layout` — as :func:`to_torch` makes — or one such module. A bare
        ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (``batch_first=True``) may come last; it becomes a
        layer returning every step.
    input_shape : tuple of int
        One example's shape (no batch axis), e.g. ``(1, 28, 28)``, or ``(T,)`` token ids for
        a module that starts with ``nn.Embedding``; the network is built for it.
    loss : Loss, default ``SoftmaxCrossEntropy()``
        The network's loss (a torch module has none).
    seed : int, optional
        The network's seed (dropout masks; the initial weights are overwritten).
    dtype : float32 or float64, optional
        Default: the module's parameters' dtype.

    Returns
    -------
    NeuralNetwork
        Built; an activation following a layer becomes its ``activation``, an
        ``nn.Dropout(p)`` its ``dropout = 1 − p``; a stateful module's carried state and a
        batch norm's running statistics are copied.

    Raises
    ------
    ConversionError
        Naming the module and why it has no fastdl counterpart.
    ValueError
        For weights that do not fit the network built for ``input_shape``.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    reader = _Reader(_flat(module))
    if type(module) is not nn.Sequential and list(module.children()):
        reader.fail("", module, "a module with its own forward() is not a sequence of layers; "
                    "build the fastdl network yourself and copy the weights with "
                    "load_state_dict(net, module.state_dict(), prefixes=...)")  # fmt: skip
    reader.run()
    if not reader.layers:
        raise ConversionError("from_torch: the module holds no layers")
    net = NeuralNetwork(reader.layers, loss if loss is not None else SoftmaxCrossEntropy(),
                        seed=seed, dtype=_dtype(module, dtype))  # fmt: skip
    kind = "int" if type(reader.layers[0]) is fl.Embedding else "float"
    try:
        net.build(tuple(input_shape), kind)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"from_torch: the fastdl network does not take input_shape {tuple(input_shape)}: {err}"
        ) from err
    for i, (name, m) in reader.channels_first_1d.items():
        if net.layers[i].input_ndim == 3:
            raise ConversionError(
                f"from_torch: {_label(name, m)}: on 3-D input nn.BatchNorm1d normalises axis 1 "
                "of (N, C, L); fastdl's BatchNorm1D normalises the last axis of (N, T, D) "
                "sequences (use fastdl.interop.torch.SequenceBatchNorm1d for that)"
            )
    arrays = {}
    for key, t in module.state_dict().items():
        a = _numpy("from_torch", key, t)
        arrays[key] = a.astype(net.dtype) if a.dtype.kind == "f" else a
    torch_layout.load_state(net, arrays, reader.holders, where="from_torch")
    modules = dict(_flat(module))
    for i, name in reader.holders.items():
        state = getattr(modules[name], "state", None)
        if isinstance(modules[name], _Sequence) and state is not None and net.layers[i].stateful:
            net.layers[i].set_state(*(_numpy("from_torch", name, s).copy() for s in state))
    return net
