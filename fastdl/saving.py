"""Save and load networks (and their optimizer): data, never code.

File format (version 1)
-----------------------
One ``.npz`` file — a zip archive that numpy writes and reads with ``allow_pickle=False`` —
holding plain numeric arrays:

- ``__header__``: a uint8 array of UTF-8 JSON::

      {"format": "fastdl-network", "format_version": 1, "fastdl_version": "0.1.0",
       "dtype": "float32", "seed": 0, "rng_state": {...},  # numpy PCG64 state
       "input_shape": [1, 28, 28], "input_kind": "float",  # one example, as net.build takes
       "loss": {"name": "SoftmaxCrossEntropy", "config": {"label_smoothing": 0.0}},
       "layers": [{"name": "Conv2D", "config": {...}, "params": ["layers.0.params.0", ...],
                   "state": [], "buffers": []}, ...],
       "arrays": {"layers.0.params.0": {"shape": [32, 1, 3, 3], "dtype": "float32",
                                        "sha256": "..."}, ...},
       "optimizer": null or {"name": "Adadelta", "config": {...}, "iterations": 938,
                             "lr": 0.7, "decay_per_epoch": null,
                             "slots": {"0": {"mean_sq_grad": "optimizer.slots.0.mean_sq_grad"}},
                             "ema": null or ["optimizer.ema.0", ...]}}

- one member per array named in ``arrays``, in ``float32``/``float64`` (parameters, optimizer
  state, a stateful layer's carried state, a layer's buffers; ``num_batches_tracked`` is
  int64).

A layer's ``"state"`` is the state a ``stateful=True`` recurrent layer carries from batch to
batch (``layers.{i}.state.{j}``, put back with ``set_state``); its ``"buffers"`` are the
arrays it updates itself without learning them, batch normalisation's running mean and
variance and ``num_batches_tracked`` (shape ``()``), in ``layer.buffers()``'s order
(``layers.{i}.buffers.{j}``, copied back in place). A file without ``"buffers"`` (written
before they existed) has none.

Every name in the header is looked up in fixed registries of fastdl's own classes
(:data:`LAYERS`, :data:`ACTIVATIONS`, :data:`LOSSES`, :data:`OPTIMIZERS`); nothing in a file
ever names a module to import. A layer class of your own is saved and loaded only after
``fd.register_layer(MyLayer)`` (it must give ``get_config()`` with its constructor's
arguments). Reading refuses, with a :class:`ModelFileError` naming the file and what was
wrong, and without running anything from it: a file that is not a zip archive (a pickle, for
instance), an array that needs pickle (object arrays), a truncated or altered file (zip's
CRC-32 and each array's SHA-256), a header of a newer format version, unknown names, and
missing or misshapen arrays.

Writes are atomic: the file is written beside its destination under a temporary name, flushed
and synced to disk, renamed over the destination, and the folder is synced; a crash or a kill
leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
import tempfile
import zipfile
import zlib

import numpy as np

from fastdl.layers import (
    BatchNorm1D,
    BatchNorm2D,
    Conv2D,
    Conv2DTranspose,
    Dense,
    Embedding,
    Flatten,
    GRULayer,
    Layer,
    LSTMLayer,
    MaxPool2D,
    Reshape,
    RNNLayer,
)
from fastdl.losses import MeanSquaredError, SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.ops.activations import Identity, LeakyReLU, Linear, ReLU, Sigmoid, Tanh
from fastdl.ops.base import Operation
from fastdl.optimizers import (
    SGD,
    Adadelta,
    AdaGrad,
    Adam,
    AdamW,
    Optimizer,
    RMSprop,
    SGDMomentum,
)

__all__ = [
    "FORMAT_VERSION",
    "ModelFileError",
    "register_layer",
    "save",
    "load",
    "load_with_optimizer",
    "atomic_write",
    "LAYERS",
    "ACTIVATIONS",
    "LOSSES",
    "OPTIMIZERS",
    "NETWORKS",
    "registered_name",
    "header_name",
    "network_name",
]

FORMAT = "fastdl-network"
FORMAT_VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"

LAYERS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Dense,
        Conv2D,
        Conv2DTranspose,
        MaxPool2D,
        BatchNorm1D,
        BatchNorm2D,
        Flatten,
        Reshape,
        Embedding,
        RNNLayer,
        GRULayer,
        LSTMLayer,
    )
}
ACTIVATIONS: dict[str, type] = {
    cls.__name__: cls for cls in (Identity, Linear, Sigmoid, Tanh, ReLU, LeakyReLU)
}
LOSSES: dict[str, type] = {cls.__name__: cls for cls in (SoftmaxCrossEntropy, MeanSquaredError)}
OPTIMIZERS: dict[str, type] = {
    cls.__name__: cls for cls in (SGD, SGDMomentum, AdaGrad, RMSprop, Adam, AdamW, Adadelta)
}
#: Network classes: fastdl's, and those of namespaces built on it (``"book.NeuralNetwork"``,
#: registered by :mod:`fastdl.book`, whose layers and losses are registered as
#: ``"book.Dense"``, ``"book.MeanSquaredError"``, ...). A file without ``"network"`` is
#: fastdl's ``NeuralNetwork``.
NETWORKS: dict[str, type] = {"NeuralNetwork": NeuralNetwork}


def registered_name(registry: dict[str, type], cls: type) -> str | None:
    """The name under which ``cls`` itself is registered, or None (a class of the same name
    from elsewhere — a subclass, fastdl.book's — is not ``cls``)."""
    name = cls.__name__
    if registry.get(name) is cls:
        return name
    return next((key for key, value in registry.items() if value is cls), None)


def header_name(registry: dict[str, type], cls: type) -> str:
    """What a header calls ``cls``: its registered name, else its class name (a checkpoint
    of a network with a loss of your own still names it)."""
    return registered_name(registry, cls) or cls.__name__


def network_name(cls: type) -> str | None:
    """The registered name of ``cls`` or of its nearest registered base class: a subclass of
    ``NeuralNetwork`` of your own is saved, and loads, as that base."""
    return next((n for c in cls.__mro__ if (n := registered_name(NETWORKS, c)) is not None), None)


class ModelFileError(ValueError):
    """A model file that cannot be read or does not describe a network; names the file."""


def register_layer(cls: type) -> type:
    """Allow ``cls`` (a :class:`~fastdl.layers.Layer` subclass with ``get_config()``) in saved
    files, under its class name. Usable as a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer: expected a Layer subclass, got {cls!r}")
    known = LAYERS.get(cls.__name__)
    if known is not None and known is not cls:
        raise ValueError(
            f"register_layer: the name {cls.__name__!r} is taken by {known.__module__}."
            f"{known.__qualname__}"
        )
    LAYERS[cls.__name__] = cls
    return cls


# -- writing -------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike):
    """Yield a binary file object; on success it replaces ``path`` atomically (temporary file
    in the same folder, flush, fsync, rename, fsync of the folder). On an error or a kill the
    destination is untouched and the temporary file is removed (or, after a kill, left under
    a ``.tmp`` name that is never read)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _operation_config(op: Operation) -> dict:
    name = registered_name(ACTIVATIONS, type(op))
    if name is None:
        raise ValueError(f"fastdl.save: activation {type(op).__name__} is not one fastdl can save")
    return {"name": name, "config": op.get_config()}


def _jsonable(value):
    if isinstance(value, Operation):
        return _operation_config(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _jsonable_config(config: dict) -> dict:
    """``config`` as it reads back from a file's JSON (tuples as lists, floats as floats)."""
    return json.loads(json.dumps({k: _jsonable(v) for k, v in config.items()}))


def _layer_entry(i: int, layer: Layer, arrays: dict) -> dict:
    name = registered_name(LAYERS, type(layer))
    if name is None:
        cls = type(layer)
        raise ValueError(
            f"fastdl.save: layer {i} is a {cls.__module__}.{cls.__qualname__}, which is not "
            f"registered: call fd.register_layer({cls.__name__}) first (it must give "
            "get_config())"
        )
    entry = {
        "name": name,
        "config": _jsonable_config(layer.get_config()),
        "params": [],
        "state": [],
    }
    for j, p in enumerate(layer.params()):
        key = f"layers.{i}.params.{j}"
        arrays[key] = p
        entry["params"].append(key)
    state = getattr(layer, "state", None) if getattr(layer, "stateful", False) else None
    for j, s in enumerate(state or ()):
        key = f"layers.{i}.state.{j}"
        arrays[key] = s
        entry["state"].append(key)
    entry["buffers"] = []
    for j, b in enumerate(layer.buffers()):
        key = f"layers.{i}.buffers.{j}"
        arrays[key] = b
        entry["buffers"].append(key)
    return entry


def _optimizer_entry(optim: Optimizer, arrays: dict) -> dict:
    state = optim.state_dict()
    entry = {k: state[k] for k in ("iterations", "lr", "decay_per_epoch")}
    entry["name"] = header_name(OPTIMIZERS, type(optim))
    entry["config"] = _jsonable_config(state["config"])
    entry["slots"] = {}
    for i, slots in state["slots"].items():
        entry["slots"][str(i)] = {}
        for name, array in slots.items():
            key = f"optimizer.slots.{i}.{name}"
            arrays[key] = array
            entry["slots"][str(i)][name] = key
    entry["ema"] = None
    if state["ema"] is not None:
        entry["ema"] = []
        for i, array in enumerate(state["ema"]):
            key = f"optimizer.ema.{i}"
            arrays[key] = array
            entry["ema"].append(key)
    return entry


def _header(net, optimizer: Optimizer | None, arrays: dict) -> dict:
    from fastdl import __version__

    if optimizer is not None and optimizer.net is not net:
        raise ValueError("fastdl.save: the optimizer is not bound to this network")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastdl_version": __version__,
        "dtype": net.dtype.name,
        "seed": net.seed,
        "rng_state": net.rng.bit_generator.state,
        "input_shape": None if net.input_shape is None else list(net.input_shape),
        "input_kind": net.input_kind,
        "network": network_name(type(net)),
        "loss": {"name": header_name(LOSSES, type(net.loss)), "config": net.loss.get_config()},
        "layers": [_layer_entry(i, layer, arrays) for i, layer in enumerate(net.layers)],
        "optimizer": None if optimizer is None else _optimizer_entry(optimizer, arrays),
    }


def write_archive(f, header: dict, arrays: dict) -> None:
    """Write ``header`` (with each array's shape, dtype and SHA-256 added) and ``arrays`` as
    an ``.npz`` archive to the binary file ``f``."""
    plain = {k: np.asarray(v, order="C") for k, v in arrays.items()}
    header = dict(header)
    header["arrays"] = {
        k: {"shape": list(v.shape), "dtype": v.dtype.name,
            "sha256": hashlib.sha256(v.tobytes()).hexdigest()}
        for k, v in plain.items()
    }  # fmt: skip
    blob = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    np.savez(f, __header__=blob, **plain)


def save(net, path: str | os.PathLike, optimizer: Optimizer | None = None) -> None:
    """Write ``net`` (and ``optimizer``'s state, if given) to ``path`` atomically.

    See the module docstring for the format. The file name is used as given (numpy's
    ``.npz`` suffix is not added).
    """
    named = [
        ("network", network_name(type(net)), net),
        ("loss", registered_name(LOSSES, type(net.loss)), net.loss),
    ]
    if optimizer is not None:
        named.append(("optimizer", registered_name(OPTIMIZERS, type(optimizer)), optimizer))
    for what, name, obj in named:
        if name is None:
            cls = type(obj)
            raise ValueError(
                f"fastdl.save: the {what} {cls.__module__}.{cls.__qualname__} is not one "
                "fastdl can save"
            )
    arrays: dict[str, np.ndarray] = {}
    header = _header(net, optimizer, arrays)
    with atomic_write(path) as f:
        write_archive(f, header, arrays)


# -- reading -------------------------------------------------------------------------------------


def read_archive(path: str | os.PathLike, format_name: str = FORMAT) -> tuple[dict, dict]:
    """The header and the arrays of a fastdl file, every check of the module docstring done.

    Raises
    ------
    ModelFileError
    """
    path = os.fspath(path)
    where = f"fastdl.load: {path}"
    try:
        with open(path, "rb") as f:
            head = f.read(4)
            data = head + f.read()
    except OSError as err:
        raise ModelFileError(f"{where}: cannot be read ({err})") from err
    if head != _ZIP_MAGIC:
        raise ModelFileError(
            f"{where}: not a fastdl file (an .npz zip archive starts with {_ZIP_MAGIC!r}, this "
            f"one with {head!r}); fastdl never unpickles files"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            bad = archive.testzip()  # reads every member and checks its CRC-32
        if bad is not None:
            raise ModelFileError(f"{where}: member {bad} is corrupt (CRC-32 mismatch)")
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            members = {name: npz[name] for name in npz.files}
    except ModelFileError:
        raise
    except ValueError as err:  # object arrays ask for pickle
        raise ModelFileError(f"{where}: holds data fastdl will not read: {err}") from err
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, NotImplementedError, RuntimeError,
            UnicodeDecodeError, zlib.error, struct.error) as err:  # fmt: skip
        # (a flipped bit in a zip header reads as an unknown compression method or an
        # encrypted member; numpy's .npy header parser raises ValueError, handled above)
        raise ModelFileError(f"{where}: truncated or corrupt ({err})") from err
    if "__header__" not in members:
        raise ModelFileError(f"{where}: an .npz file, but without fastdl's __header__")
    try:
        header = json.loads(members.pop("__header__").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFileError(f"{where}: its header is not valid JSON ({err})") from err
    if not isinstance(header, dict) or header.get("format") != format_name:
        raise ModelFileError(f"{where}: not a {format_name} file (format {header.get('format')!r})")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(
            f"{where}: written in format version {version!r} by fastdl "
            f"{header.get('fastdl_version')}; this fastdl reads versions up to {FORMAT_VERSION}"
        )
    listed = header.get("arrays")
    if not isinstance(listed, dict):
        raise ModelFileError(f"{where}: its header lists no arrays")
    for name, meta in listed.items():
        if name not in members:
            raise ModelFileError(f"{where}: array {name} is missing")
        a = members[name]
        if list(a.shape) != meta.get("shape") or a.dtype.name != meta.get("dtype"):
            raise ModelFileError(
                f"{where}: array {name} is {a.dtype.name} {a.shape}, the header says "
                f"{meta.get('dtype')} {tuple(meta.get('shape') or ())}"
            )
        if hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest() != meta.get("sha256"):
            raise ModelFileError(f"{where}: array {name} does not match its checksum")
        if a.dtype.kind not in "fiub":
            raise ModelFileError(f"{where}: array {name} has dtype {a.dtype}, not numeric")
    return header, members


def _from_registry(where: str, registry: dict, entry, what: str):
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ModelFileError(f"{where}: a {what} entry is malformed: {entry!r}")
    cls = registry.get(entry["name"])
    if cls is None:
        raise ModelFileError(
            f"{where}: unknown {what} {entry['name']!r} (known: {', '.join(sorted(registry))}; "
            "a layer of your own needs fd.register_layer)"
        )
    config = entry.get("config", {})
    if not isinstance(config, dict):
        raise ModelFileError(f"{where}: the config of {entry['name']} is not a mapping")
    return cls, config


def _build_object(where: str, cls: type, config: dict):
    kwargs = {}
    for k, v in config.items():
        if isinstance(v, dict) and "name" in v:  # an activation
            act_cls, act_config = _from_registry(where, ACTIVATIONS, v, "activation")
            v = _build_object(where, act_cls, act_config)
        elif isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{where}: cannot build {cls.__name__}({config}): {err}") from err


def _network_from(where: str, header: dict, arrays: dict):
    network = header.get("network") or "NeuralNetwork"
    network_cls = NETWORKS.get(network)
    if network_cls is None:
        raise ModelFileError(
            f"{where}: unknown network {network!r} (known: {', '.join(sorted(NETWORKS))})"
        )
    layers = []
    for entry in header.get("layers") or []:
        cls, config = _from_registry(where, LAYERS, entry, "layer")
        layers.append(_build_object(where, cls, config))
    if not layers:
        raise ModelFileError(f"{where}: the header lists no layers")
    loss_cls, loss_config = _from_registry(where, LOSSES, header.get("loss"), "loss")
    dtype = header.get("dtype")
    if dtype not in ("float32", "float64"):
        raise ModelFileError(f"{where}: dtype {dtype!r} is not float32 or float64")
    net = network_cls(layers, _build_object(where, loss_cls, loss_config),
                      seed=header.get("seed"), dtype=np.dtype(dtype))  # fmt: skip
    if header.get("input_shape") is not None:
        # Setting layers up may draw from NumPy's global generator (fastdl.book's layers do,
        # as the book's); loading a file must not move it for the caller.
        global_state = np.random.get_state()  # noqa: NPY002 (kept, not drawn from)
        try:
            net.build(tuple(header["input_shape"]), header.get("input_kind", "float"))
        finally:
            np.random.set_state(global_state)  # noqa: NPY002
    for i, (layer, entry) in enumerate(zip(net.layers, header["layers"], strict=True)):
        params, names = layer.params(), entry.get("params") or []
        if len(names) != len(params):
            raise ModelFileError(
                f"{where}: layer {i} ({layer.name}) has {len(params)} parameter arrays, the "
                f"file {len(names)}"
            )
        for j, (p, name) in enumerate(zip(params, names, strict=True)):
            a = arrays[name]
            if a.shape != p.shape or a.dtype != p.dtype:
                raise ModelFileError(
                    f"{where}: layer {i} ({layer.name}) parameter {j} is {p.dtype} {p.shape}, "
                    f"the file's {name} is {a.dtype} {a.shape}"
                )
            p[...] = a
        buffers, names = layer.buffers(), entry.get("buffers") or []
        if len(names) != len(buffers):
            raise ModelFileError(
                f"{where}: layer {i} ({layer.name}) has {len(buffers)} buffers, the file "
                f"{len(names)}"
            )
        for j, (b, name) in enumerate(zip(buffers, names, strict=True)):
            a = arrays.get(name)
            if a is None or a.shape != b.shape or a.dtype != b.dtype:
                given = "nothing" if a is None else f"{a.dtype} {a.shape}"
                raise ModelFileError(
                    f"{where}: layer {i} ({layer.name}) buffer {j} is {b.dtype} {b.shape}, "
                    f"the file's {name} is {given}"
                )
            b[...] = a
        if entry.get("state"):
            layer.set_state(*(arrays[name].copy() for name in entry["state"]))
    if header.get("rng_state") is not None:
        try:
            net.rng.bit_generator.state = header["rng_state"]
        except (TypeError, ValueError, KeyError) as err:
            raise ModelFileError(f"{where}: its random generator state is malformed") from err
    return net


def _optimizer_from(where: str, entry: dict, arrays: dict, net) -> Optimizer:
    cls, config = _from_registry(where, OPTIMIZERS, entry, "optimizer")
    optim = _build_object(where, cls, config)
    optim.bind(net)
    state = {k: entry.get(k) for k in ("config", "iterations", "lr", "decay_per_epoch")}
    state["name"] = type(optim).__name__  # built from the entry's name: the state is its own
    state["slots"] = {
        int(i): {name: arrays[key].copy() for name, key in slots.items()}
        for i, slots in (entry.get("slots") or {}).items()
    }
    state["ema"] = None if entry.get("ema") is None else [arrays[k].copy() for k in entry["ema"]]
    try:
        optim.load_state_dict(state)
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{where}: its optimizer state does not fit: {err}") from err
    return optim


def load(path: str | os.PathLike):
    """Read a network written by :func:`save` (``net.save``).

    Returns
    -------
    NeuralNetwork
        With the saved dtype, seed, layer configuration, weights (bit for bit), buffers
        (running statistics), carried state of stateful layers and random generator state.

    Raises
    ------
    ModelFileError
        See the module docstring.
    """
    header, arrays = read_archive(path)
    return _network_from(f"fastdl.load: {os.fspath(path)}", header, arrays)


def load_with_optimizer(path: str | os.PathLike):
    """Read a network and the optimizer saved with it (``net.save(path, optimizer=optim)``).

    Returns
    -------
    (NeuralNetwork, Optimizer)
        The optimizer is bound to the network with its state (velocities, moments, step
        count, learning-rate schedule position, moving average) as saved, so
        ``Trainer(net, optim)`` continues where the saved training stopped.
    """
    header, arrays = read_archive(path)
    where = f"fastdl.load: {os.fspath(path)}"
    net = _network_from(where, header, arrays)
    if header.get("optimizer") is None:
        raise ModelFileError(f"{where}: holds no optimizer (save it with optimizer=...)")
    return net, _optimizer_from(where, header["optimizer"], arrays, net)
