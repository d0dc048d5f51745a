"""Weights in safetensors files (``net.save_weights`` / ``net.load_weights``), in NumPy only.

The format
----------
A safetensors file (Hugging Face's format, read by ``safetensors.numpy.load_file`` and
``safetensors.torch.load_file``) is:

1. 8 bytes: the header's length in bytes, an unsigned little-endian 64-bit integer;
2. the header, UTF-8 JSON: ``{key: {"dtype": "F32", "shape": [...], "data_offsets": [begin,
   end]}, ..., "__metadata__": {str: str}}`` (padded with spaces so the data starts at a
   multiple of 8 bytes);
3. the arrays' bytes, little-endian, C order, one after the other: ``data_offsets`` count
   from the first byte after the header, and together they cover the rest of the file.

fastdl writes it itself (no package needed) and reads any such file whose arrays numpy has a
dtype for (``BF16`` and the 8-bit floats are refused). The ``.npz`` files of
:mod:`fastdl.saving` stay the default format; this one is for the weights alone, for tools
that read safetensors.

What ``save_weights`` writes
----------------------------
- the parameters under PyTorch's key names and in PyTorch's layouts, and the buffers (batch
  norm's ``running_mean``, ``running_var``, ``num_batches_tracked``), as a torch state dict
  holds them (:mod:`fastdl.torch_layout`: ``0.weight``, ``0.bias``, ...), so that
  ``to_torch(net).load_state_dict(safetensors.torch.load_file(path))`` takes them as they
  are;
- ``__metadata__``: ``"format": "pt"`` (as ``safetensors.torch.save_file`` and Hugging Face's
  tools mark a torch state dict), ``"fastdl_format_version": "1"``, ``"fastdl_version"``, and
  ``"fastdl_architecture"``: JSON ``{"dtype": "float32", "input_shape": [1, 28, 28],
  "input_kind": "float", "layers": [{"name": "Conv2D", "config": {...}}, ...]}``.

What ``load_weights`` checks
----------------------------
Before any weight changes, and with a :class:`~fastdl.saving.ModelFileError` that names the
file and what differs: the file's structure (as above), the architecture (when the file has
one; a file written by ``safetensors.torch.save_file(module.state_dict())`` has none): the
same dtype and the same layers with the same configuration, initialisers, ``stateful`` and
batch norm's ``momentum`` aside, since they do not change what the weights mean; then every
key, shape and dtype. A network not set up yet is built for the file's ``input_shape``.
"""

from __future__ import annotations

import json
import math
import os
import struct

import numpy as np

from fastdl import torch_layout

__all__ = [
    "FORMAT_VERSION",
    "write_safetensors",
    "read_safetensors",
    "save_weights",
    "load_weights",
    "architecture",
]

FORMAT_VERSION = 1
_MAX_HEADER = 100 * 1024 * 1024  # the reference implementation's limit

_DTYPES = {
    "BOOL": np.dtype("|b1"), "U8": np.dtype("|u1"), "I8": np.dtype("|i1"),
    "U16": np.dtype("<u2"), "I16": np.dtype("<i2"), "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"), "I64": np.dtype("<i8"), "F64": np.dtype("<f8"),
}  # fmt: skip
_CODES = {(d.kind, d.itemsize): code for code, d in _DTYPES.items()}

#: Configuration that does not change what a layer's weights mean (not compared on loading):
#: initialisers, carrying state, and how fast training moves batch norm's running statistics.
IGNORED_CONFIG = ("weight_init", "recurrent_init", "stateful", "momentum")


def _error(message: str) -> Exception:
    from fastdl.saving import ModelFileError

    return ModelFileError(message)


# -- the file format -----------------------------------------------------------------------------


def write_safetensors(f, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None):
    """Write ``arrays`` (in their order) and ``metadata`` to the binary file ``f``.

    Parameters
    ----------
    f : binary file object
    arrays : dict of str to ndarray
        Numeric or bool arrays of any shape.
    metadata : dict of str to str, optional
    """
    header: dict = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("write_safetensors: metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    blobs, offset = [], 0
    for name, a in arrays.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"write_safetensors: {name!r} cannot be a key")
        a = np.asarray(a)
        code = _CODES.get((a.dtype.kind, a.dtype.itemsize))
        if code is None:
            raise TypeError(f"write_safetensors: {name}: dtype {a.dtype} has no safetensors code")
        data = np.ascontiguousarray(a, dtype=_DTYPES[code]).tobytes()
        header[name] = {"dtype": code, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}  # fmt: skip
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned (8 + len(text))
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for data in blobs:
        f.write(data)


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays (native byte order, in the header's order) and the metadata of a file.

    Raises
    ------
    fastdl.saving.ModelFileError
        For a file that cannot be read or is not a well-formed safetensors file: a header
        that is not JSON or overruns the file, an entry without a known dtype, a shape or
        offsets that disagree, arrays that overlap or leave bytes unaccounted for.
    """
    where = f"load_weights: {os.fspath(path)}"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise _error(f"{where}: cannot be read ({err})") from err
    if len(data) < 8:
        raise _error(f"{where}: not a safetensors file ({len(data)} bytes, shorter than 8)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER or 8 + n > len(data):
        raise _error(
            f"{where}: not a safetensors file (its first 8 bytes give a header of {n} bytes; "
            f"the file has {len(data)})"
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _error(f"{where}: its header is not UTF-8 JSON ({err})") from err
    if not isinstance(header, dict):
        raise _error(f"{where}: its header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise _error(f"{where}: __metadata__ must map strings to strings")
    buffer = memoryview(data)[8 + n :]
    spans, arrays = [], {}
    for name, entry in header.items():
        dtype, shape = _check_entry(where, name, entry, len(buffer))
        begin, end = entry["data_offsets"]
        spans.append((begin, end, name))
        a = np.frombuffer(buffer, dtype=dtype, count=math.prod(shape), offset=begin)
        arrays[name] = a.reshape(shape).astype(dtype.newbyteorder("="))  # a native copy
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            what = "overlaps the one before" if begin < position else "leaves a gap before it"
            raise _error(f"{where}: array {name!r} at bytes {begin}:{end} {what}")
        position = end
    if position != len(buffer):
        raise _error(
            f"{where}: the arrays take {position} bytes, but {len(buffer)} follow the header "
            "(truncated, or extra bytes)"
        )
    return arrays, metadata


def _check_entry(where: str, name: str, entry, size: int) -> tuple[np.dtype, tuple[int, ...]]:
    if not isinstance(entry, dict):
        raise _error(f"{where}: header entry {name!r} is not an object")
    code = entry.get("dtype")
    if code not in _DTYPES:
        raise _error(
            f"{where}: array {name!r} has dtype {code!r}, which numpy cannot hold (known: "
            f"{', '.join(_DTYPES)})"
        )
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise _error(f"{where}: array {name!r} has a malformed shape {shape!r}")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= size
    ):
        raise _error(
            f"{where}: array {name!r} has data_offsets {offsets!r} outside the {size} data bytes"
        )
    dtype = _DTYPES[code]
    if offsets[1] - offsets[0] != math.prod(shape) * dtype.itemsize:
        raise _error(
            f"{where}: array {name!r} is {code} {tuple(shape)}, "
            f"{math.prod(shape) * dtype.itemsize} bytes, but its offsets span "
            f"{offsets[1] - offsets[0]}"
        )
    return dtype, tuple(shape)


# -- networks ------------------------------------------------------------------------------------


def _jsonable(value):
    from fastdl.ops.base import Operation

    if isinstance(value, Operation):
        return {"name": type(value).__name__, "config": _jsonable(value.get_config())}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def architecture(net) -> dict:
    """What ``save_weights`` records of ``net``: dtype, input shape and kind, and each layer's
    class name and configuration (as JSON reads it back)."""
    layers = [{"name": type(layer).__name__, "config": _jsonable(layer.get_config())}
              for layer in net.layers]  # fmt: skip
    shape = None if net.input_shape is None else list(net.input_shape)
    arch = {"dtype": net.dtype.name, "input_shape": shape, "input_kind": net.input_kind,
            "layers": layers}  # fmt: skip
    return json.loads(json.dumps(arch))


def save_weights(net, path: str | os.PathLike) -> None:
    """Write ``net``'s parameters to the safetensors file ``path``, atomically (see the module
    docstring for the keys and metadata).

    Raises
    ------
    fastdl.torch_layout.ConversionError
        For a network not set up yet, or with a layer PyTorch has no counterpart for (its
        weights would have no torch name).
    """
    from fastdl import __version__
    from fastdl.saving import atomic_write

    arrays = torch_layout.state_arrays(net)
    metadata = {
        "format": "pt",
        "fastdl_format_version": str(FORMAT_VERSION),
        "fastdl_version": __version__,
        "fastdl_architecture": json.dumps(architecture(net)),
    }
    with atomic_write(path) as f:
        write_safetensors(f, arrays, metadata)


def _compared(config: dict) -> dict:
    """``config`` without :data:`IGNORED_CONFIG`; the book's ``Linear`` activation is
    ``Identity`` by another name."""
    out = {}
    for k, v in config.items():
        if k in IGNORED_CONFIG:
            continue
        if isinstance(v, dict) and v.get("name") == "Linear":
            v = {**v, "name": "Identity"}
        out[k] = v
    return out


def _check_architecture(where: str, net, text: str) -> dict:
    try:
        arch = json.loads(text)
    except json.JSONDecodeError as err:
        raise _error(f"{where}: its fastdl_architecture is not JSON ({err})") from err
    if not isinstance(arch, dict) or not isinstance(arch.get("layers"), list):
        raise _error(f"{where}: its fastdl_architecture lists no layers")
    mine = architecture(net)
    if arch.get("dtype") != mine["dtype"]:
        raise _error(
            f"{where}: the weights are {arch.get('dtype')}, the network is {mine['dtype']} "
            f"(build it with dtype=np.{arch.get('dtype')})"
        )
    theirs = [e if isinstance(e, dict) else {"name": repr(e)} for e in arch["layers"]]
    ours = mine["layers"]
    if [e.get("name") for e in theirs] != [e["name"] for e in ours]:
        raise _error(
            f"{where}: the file's layers are [{', '.join(str(e.get('name')) for e in theirs)}], "
            f"the network's [{', '.join(e['name'] for e in ours)}]"
        )
    for i, (t, o) in enumerate(zip(theirs, ours, strict=True)):
        config = t.get("config")
        tc, oc = _compared(config if isinstance(config, dict) else {}), _compared(o["config"])
        if tc != oc:
            diff = sorted(k for k in set(tc) | set(oc) if tc.get(k) != oc.get(k))
            detail = "; ".join(f"{k}: file {tc.get(k)!r}, network {oc.get(k)!r}" for k in diff)
            raise _error(f"{where}: layers[{i}] ({o['name']}) differs: {detail}")
    return arch


def load_weights(net, path: str | os.PathLike) -> None:
    """Copy the weights of the safetensors file ``path`` into ``net``, in place; a file that
    does not fit changes nothing (see the module docstring for what is checked).

    Raises
    ------
    fastdl.saving.ModelFileError
    """
    where = f"load_weights: {os.fspath(path)}"
    arrays, metadata = read_safetensors(path)
    arch = None
    if "fastdl_architecture" in metadata:
        version = metadata.get("fastdl_format_version", "")
        if not version.isdigit() or int(version) > FORMAT_VERSION:
            raise _error(
                f"{where}: fastdl weights format version {version!r} (by fastdl "
                f"{metadata.get('fastdl_version')}); this fastdl reads up to {FORMAT_VERSION}"
            )
        arch = _check_architecture(where, net, metadata["fastdl_architecture"])
    built = not any(layer.first for layer in net.layers)
    before = (net.rng.bit_generator.state, net.input_shape, net.input_kind)
    if not built:
        shape = None if arch is None else arch.get("input_shape")
        if not shape:
            raise _error(
                f"{where}: the network is not set up yet and the file does not say for which "
                "input shape; call net.build(input_shape) first"
            )
        try:
            net.build(tuple(shape), arch.get("input_kind", "float"))
        except (TypeError, ValueError) as err:
            _unbuild(net, before)
            raise _error(f"{where}: cannot build the network for input {shape}: {err}") from err
    try:
        torch_layout.load_state(net, arrays, where=where)
    except ValueError as err:
        if not built:  # leave the network as it was: not set up
            _unbuild(net, before)
        raise _error(str(err)) from err


def _unbuild(net, before) -> None:
    for layer in net.layers:
        layer.reset()
    net.rng.bit_generator.state, net.input_shape, net.input_kind = before
