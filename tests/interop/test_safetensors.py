"""Weights in safetensors files: fastdl's writer and reader against the reference package,
the keys of to_torch's module, the architecture check, and every refusal (none half-loads)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

import fastdl as fd
from fastdl import torch_layout, weights_file
from fastdl.recipes import char_lstm, mnist_cnn


def cnn(seed=0, dtype=np.float32, activation=None):
    return fd.NeuralNetwork(
        [fd.Conv2D(4, 3, padding=0, activation=activation or fd.ReLU()), fd.Conv2D(3, 2),
         fd.Conv2D(2, 3, stride=2), fd.MaxPool2D(2, dropout=0.75), fd.Flatten(),
         fd.Dense(6, fd.LeakyReLU(0.2), dropout=0.5), fd.Dense(3)],
        fd.SoftmaxCrossEntropy(), seed=seed, dtype=dtype,
    ).build((1, 12, 12))  # fmt: skip


def sequences(seed=0, dtype=np.float32):
    return fd.NeuralNetwork(
        [fd.Embedding(9, 4), fd.LSTMLayer(5, stateful=True), fd.GRULayer(4, dropout=0.8),
         fd.RNNLayer(3, return_sequences=False), fd.Dense(2, fd.Sigmoid())],
        fd.MeanSquaredError(), seed=seed, dtype=dtype,
    ).build((6,), "int")  # fmt: skip


def batch_norm_cnn(seed=0, dtype=np.float32):
    return fd.NeuralNetwork(
        [fd.Conv2D(4, 3, padding=0), fd.BatchNorm2D(activation=fd.ReLU()), fd.MaxPool2D(2),
         fd.BatchNorm2D(momentum=None), fd.Flatten(), fd.Dense(6),
         fd.BatchNorm1D(activation=fd.Tanh()), fd.Dense(3)],
        fd.SoftmaxCrossEntropy(), seed=seed, dtype=dtype,
    ).build((1, 12, 12))  # fmt: skip


def reference_cnn(seed=0):
    return mnist_cnn.build(seed).build((1, 28, 28))


def char_model(seed=0):
    net, _ = char_lstm.build_model(10, 16, seed=seed, dropout=0.7)
    return net.build((7, 10))


NETS = {"cnn": cnn, "sequences": sequences, "mnist-cnn": reference_cnn, "char-lstm": char_model,
        "batch-norm": batch_norm_cnn}  # fmt: skip


def example(name, n=2):
    rng = np.random.default_rng(1)
    if name == "sequences":
        return rng.integers(0, 9, (n, 6))
    if name == "char-lstm":
        return np.eye(10, dtype=np.float32)[rng.integers(0, 10, (n, 7))]
    shape = (1, 12, 12) if name in ("cnn", "batch-norm") else (1, 28, 28)
    return rng.standard_normal((n, *shape)).astype(np.float32)


def same_weights(a, b) -> bool:
    """Parameters and buffers (batch norm's running statistics), bit for bit."""
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights(),
                                                    strict=True))  # fmt: skip


def perturb_all(net, seed=3):
    """Make every parameter non-trivial (biases start at zero), and every buffer: running
    means and variances (positive) as if trained, a step count."""
    rng = np.random.default_rng(seed)
    for p in net.params():
        p[...] = rng.standard_normal(p.shape)
    for b in net.buffers():
        b[...] = 0.5 + rng.random(b.shape) if b.dtype.kind == "f" else 5
    return net


# -- the file format, against the reference package -------------------------------------------


@pytest.mark.parametrize("name", list(NETS))
def test_files_fastdl_writes_read_with_safetensors_numpy(name, tmp_path, st_numpy):
    from safetensors import safe_open

    net = perturb_all(NETS[name]())
    path = tmp_path / "w.safetensors"
    net.save_weights(path)
    loaded = st_numpy.load_file(str(path))
    expected = torch_layout.state_arrays(net)
    assert set(loaded) == set(expected)
    for k, a in expected.items():
        np.testing.assert_array_equal(loaded[k], a)
        assert loaded[k].dtype == a.dtype
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    assert meta["format"] == "pt" and meta["fastdl_format_version"] == "1"
    arch = json.loads(meta["fastdl_architecture"])
    assert [e["name"] for e in arch["layers"]] == [type(x).__name__ for x in net.layers]
    assert arch["input_shape"] == list(net.input_shape) and arch["dtype"] == "float32"
    header_size = struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert (8 + header_size) % 8 == 0  # the data starts 8-byte aligned


DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8,
          np.uint16, np.uint32, np.uint64, np.bool_]  # fmt: skip


def test_reader_and_writer_agree_with_the_reference_on_every_dtype(tmp_path, st_numpy):
    rng = np.random.default_rng(0)
    arrays = {f"a{i}": (rng.standard_normal((2, 3)) * 50).astype(d) for i, d in enumerate(DTYPES)}
    arrays["scalar"] = np.array(3.5, np.float32)
    arrays["empty"] = np.zeros((0, 4), np.float32)
    ours = tmp_path / "ours.safetensors"
    with open(ours, "wb") as f:
        weights_file.write_safetensors(f, arrays, {"k": "v"})
    theirs = tmp_path / "theirs.safetensors"
    st_numpy.save_file(arrays, str(theirs), metadata={"k": "v"})
    for path in (ours, theirs):
        for reader in (st_numpy.load_file, lambda p: weights_file.read_safetensors(p)[0]):
            got = reader(str(path))
            assert set(got) == set(arrays)
            for k, a in arrays.items():
                assert got[k].dtype == a.dtype and got[k].shape == a.shape
                np.testing.assert_array_equal(got[k], a)
        assert weights_file.read_safetensors(path)[1] == {"k": "v"}


def test_big_endian_arrays_are_written_little_endian(tmp_path, st_numpy):
    a = np.arange(6, dtype=">f4").reshape(2, 3)
    path = tmp_path / "be.safetensors"
    with open(path, "wb") as f:
        weights_file.write_safetensors(f, {"a": a})
    np.testing.assert_array_equal(st_numpy.load_file(str(path))["a"], a)


# -- into torch, with no renaming ------------------------------------------------------------------


@pytest.mark.parametrize("name", list(NETS))
def test_load_state_dict_of_to_torchs_module(name, tmp_path, torch, st_torch):
    from fastdl.interop.torch import to_torch

    net = perturb_all(NETS[name]())
    path = tmp_path / "w.safetensors"
    net.save_weights(path)
    state = st_torch.load_file(str(path))
    other = NETS[name](seed=7)  # the same architecture, other weights
    module = to_torch(other)
    assert list(module.state_dict()) == list(state)  # the same keys, in the same order
    module.load_state_dict(state, strict=True)
    module.eval()
    net.reset_state()
    x = example(name)
    got = module(torch.from_numpy(x)).detach().numpy()
    want = net.forward(x, inference=True)
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))


@pytest.mark.parametrize("name", list(NETS))
def test_files_torch_writes_load_into_fastdl(name, tmp_path, torch, st_torch):
    from fastdl.interop.torch import to_torch

    module = to_torch(NETS[name](seed=5))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():  # every value non-trivial, bias_hh_l0 too
            p.copy_(torch.randn_like(p))
    path = tmp_path / "torch.safetensors"
    st_torch.save_file(module.state_dict(), str(path))
    net = NETS[name]()
    net.load_weights(path)  # no fastdl metadata in this file: keys, shapes and dtypes decide
    module.eval()
    x = example(name)
    want = module(torch.from_numpy(x)).detach().numpy()
    got = net.forward(x, inference=True)
    assert np.max(np.abs(got - want)) <= 1e-5 * np.max(np.abs(want))


# -- round trips in fastdl ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["cnn", "sequences", "batch-norm"])
def test_round_trip_is_bitwise(name, dtype, tmp_path):
    net = perturb_all(NETS[name](dtype=dtype))
    path = tmp_path / "w.safetensors"
    net.save_weights(path)
    other = NETS[name](seed=9, dtype=dtype)
    other.load_weights(path)
    assert same_weights(net, other)


def test_a_new_network_is_built_for_the_files_input_shape(tmp_path):
    net = perturb_all(reference_cnn())
    path = tmp_path / "w.safetensors"
    net.save_weights(path)
    fresh = mnist_cnn.build(3)  # not set up yet
    fresh.load_weights(path)
    assert fresh.input_shape == (1, 28, 28) and same_weights(net, fresh)


def test_save_weights_keeps_npz_the_default(tmp_path):
    net = perturb_all(cnn())
    net.save(tmp_path / "model.npz")
    assert same_weights(net, fd.load(tmp_path / "model.npz"))


def test_fastdl_needs_no_torch_for_weights(tmp_path):
    """``import fastdl`` and save/load_weights work with torch unimportable; the interop
    module says how to install it."""
    code = f"""
import sys
sys.modules["torch"] = None  # import torch now raises ImportError
import numpy as np, fastdl as fd
net = fd.NeuralNetwork([fd.Dense(3, fd.ReLU()), fd.Dense(2)], fd.MeanSquaredError(), seed=0)
net.build((4,))
net.save_weights({str(tmp_path / "w.safetensors")!r})
other = fd.NeuralNetwork([fd.Dense(3, fd.ReLU()), fd.Dense(2)], fd.MeanSquaredError(), seed=1)
other.load_weights({str(tmp_path / "w.safetensors")!r})
assert all((a == b).all() for a, b in zip(net.params(), other.params()))
try:
    import fastdl.interop.torch
except ImportError as err:
    assert "pip install 'fastdl[torch]'" in str(err), err
else:
    raise SystemExit("fastdl.interop.torch imported without torch")
import fastdl.interop
print("ok")
"""
    env = {**os.environ, "FASTDL_PURE": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


# -- refusals: a bad file never half-loads ------------------------------------------------------


@pytest.fixture
def saved(tmp_path):
    net = perturb_all(cnn())
    path = tmp_path / "w.safetensors"
    net.save_weights(path)
    return net, path


def rewrite(path, out, arrays=None, metadata=None, drop=(), edit=None):
    """Write ``path``'s content, changed, to ``out`` with fastdl's writer."""
    a, m = weights_file.read_safetensors(path)
    a = {k: v for k, v in (arrays or a).items() if k not in drop}
    m = dict(m if metadata is None else metadata)
    if edit is not None:
        edit(a, m)
    with open(out, "wb") as f:
        weights_file.write_safetensors(f, a, m)
    return out


def refused(net, path, message):
    before = [p.copy() for p in net.params()]
    with pytest.raises(fd.ModelFileError, match=message):
        net.load_weights(path)
    for b, p in zip(before, net.params(), strict=True):
        np.testing.assert_array_equal(b, p)


def test_architecture_that_differs(saved, tmp_path):
    _, path = saved
    refused(cnn(activation=fd.Tanh()), path,
            r"layers\[0\] \(Conv2D\) differs: activation: file \{'name': 'ReLU'")  # fmt: skip
    other = fd.NeuralNetwork([fd.Dense(3)], fd.MeanSquaredError()).build((5,))
    refused(other, path, r"the file's layers are \[Conv2D, Conv2D, .*\], the network's \[Dense\]")
    wide = cnn(dtype=np.float64)
    refused(wide, path, "the weights are float32, the network is float64")


def test_initialisers_and_stateful_do_not_count(tmp_path):
    net = perturb_all(sequences())
    path = tmp_path / "w.safetensors"
    net.save_weights(path)
    other = fd.NeuralNetwork(
        [fd.Embedding(9, 4, weight_init="glorot"), fd.LSTMLayer(5, recurrent_init="he"),
         fd.GRULayer(4, dropout=0.8), fd.RNNLayer(3, return_sequences=False),
         fd.Dense(2, fd.Sigmoid(), weight_init="he")],
        fd.MeanSquaredError(), seed=4,
    )  # fmt: skip
    other.load_weights(path)
    assert same_weights(net, other)


def test_linear_is_identity(tmp_path):
    net = fd.NeuralNetwork([fd.Dense(3, fd.Linear())], fd.MeanSquaredError()).build((2,))
    net.save_weights(tmp_path / "w.safetensors")
    fd.NeuralNetwork([fd.Dense(3)], fd.MeanSquaredError()).load_weights(tmp_path / "w.safetensors")


def test_keys_shapes_and_dtypes(saved, tmp_path):
    net, path = saved
    target = cnn(seed=2)
    refused(
        target,
        rewrite(path, tmp_path / "a", drop=("9.bias",)),
        r"no array '9.bias' for layers\[5\] \(Dense\) \(expected float32 \(6,\)\)",
    )
    refused(
        target,
        rewrite(
            path,
            tmp_path / "b",
            metadata={},
            edit=lambda a, m: a.update(extra=np.zeros(2, np.float32)),
        ),
        r"unexpected arrays \['extra'\]",
    )

    def transpose(a, m):
        a["9.weight"] = np.ascontiguousarray(a["9.weight"].T)

    refused(
        target,
        rewrite(path, tmp_path / "c", edit=transpose),
        r"'9.weight' \(float32 \(8, 6\)\) does not fit layers\[5\] \(Dense\), which "
        r"expects float32 \(6, 8\)",
    )

    def widen(a, m):
        a["0.bias"] = a["0.bias"].astype(np.float64)

    refused(target, rewrite(path, tmp_path / "d", edit=widen), r"'0.bias' \(float64 \(4,\)\)")
    assert str(tmp_path / "d") in _message(target, tmp_path / "d")  # fmt: skip


def _message(net, path) -> str:
    with pytest.raises(fd.ModelFileError) as info:
        net.load_weights(path)
    return str(info.value)


def test_unbuilt_network_stays_unbuilt_after_a_refusal(saved, tmp_path):
    _, path = saved
    bad = rewrite(path, tmp_path / "bad", drop=("0.weight",))
    net = fd.NeuralNetwork(
        [fd.Conv2D(4, 3, padding=0, activation=fd.ReLU()), fd.Conv2D(3, 2),
         fd.Conv2D(2, 3, stride=2), fd.MaxPool2D(2, dropout=0.75), fd.Flatten(),
         fd.Dense(6, fd.LeakyReLU(0.2), dropout=0.5), fd.Dense(3)],
        fd.SoftmaxCrossEntropy(), seed=0,
    )  # fmt: skip
    state = net.rng.bit_generator.state
    with pytest.raises(fd.ModelFileError, match="no array '0.weight'"):
        net.load_weights(bad)
    assert all(layer.first for layer in net.layers) and net.input_shape is None
    assert net.rng.bit_generator.state == state
    net.load_weights(path)


def test_unbuilt_network_and_a_file_without_input_shape(tmp_path, st_numpy):
    arrays = torch_layout.state_arrays(cnn())
    path = tmp_path / "plain.safetensors"
    st_numpy.save_file(arrays, str(path))
    with pytest.raises(fd.ModelFileError, match=r"not set up yet .* net.build\(input_shape\)"):
        fd.NeuralNetwork([fd.Dense(3)], fd.MeanSquaredError()).load_weights(path)


def test_newer_format_version(saved, tmp_path):
    _, path = saved
    bad = rewrite(path, tmp_path / "v9", edit=lambda a, m: m.update(fastdl_format_version="9"))
    refused(cnn(seed=2), bad, "format version '9'")


def raw(path, header: dict | bytes, data: bytes = b"") -> str:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    return path


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "shorter than 8"),
        (b"PK\x03\x04 not a safetensors file", "not a safetensors file"),
        (struct.pack("<Q", 1 << 40) + b"{}", "header of 1099511627776 bytes"),
        (struct.pack("<Q", 3) + b"\xff\xfe{", "not UTF-8 JSON"),
        (struct.pack("<Q", 2) + b"[]", "not a JSON object"),
    ],
    ids=["empty", "zip", "huge-header", "not-json", "not-object"],
)
def test_malformed_files(tmp_path, content, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    refused(cnn(), path, message)


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


@pytest.mark.parametrize(
    "header, data, message",
    [
        ({"a": entry("BF16", offsets=(0, 4))}, b"\0" * 4, "dtype 'BF16', which numpy cannot"),
        ({"a": entry(shape=(3,))}, b"\0" * 8, r"F32 \(3,\), 12 bytes, but its offsets span 8"),
        ({"a": entry(offsets=(0, 16))}, b"\0" * 8, "outside the 8 data bytes"),
        ({"a": entry(), "b": entry(offsets=(4, 12))}, b"\0" * 12, "overlaps"),
        ({"a": entry(offsets=(4, 12))}, b"\0" * 12, "leaves a gap"),
        ({"a": entry()}, b"\0" * 12, "take 8 bytes, but 12 follow"),
        ({"a": entry(shape=(-1,))}, b"\0" * 8, "malformed shape"),
        ({"__metadata__": {"k": 1}, "a": entry()}, b"\0" * 8, "map strings to strings"),
        ({"a": [1]}, b"", "is not an object"),
    ],
    ids=["bf16", "size", "outside", "overlap", "gap", "extra-bytes", "shape", "metadata",
         "entry"],
)  # fmt: skip
def test_malformed_headers(tmp_path, header, data, message):
    path = raw(tmp_path / "bad.safetensors", header, data)
    refused(cnn(), path, message)


def test_truncated_file(saved, tmp_path):
    _, path = saved
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:-5])
    refused(cnn(seed=2), cut, r"outside the \d+ data bytes")


def test_missing_file(tmp_path):
    refused(cnn(), tmp_path / "nope.safetensors", "cannot be read")


def test_a_failed_save_leaves_the_old_file(saved, tmp_path):
    net, path = saved
    old = path.read_bytes()

    class Swish(fd.ops.Operation):
        def _output(self, inference):
            return self.input_

    odd = fd.NeuralNetwork([fd.Dense(3, Swish())], fd.MeanSquaredError()).build((2,))
    with pytest.raises(torch_layout.ConversionError, match="activation Swish"):
        odd.save_weights(path)
    assert path.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["w.safetensors"]


def test_save_needs_a_built_network(tmp_path):
    with pytest.raises(torch_layout.ConversionError, match="not set up yet"):
        fd.NeuralNetwork([fd.Dense(3)], fd.MeanSquaredError()).save_weights(tmp_path / "w")


def test_batch_norm_momentum_does_not_change_what_the_weights_mean(tmp_path):
    """Running statistics trained with one momentum load into a layer with another (it only
    says how training moves them); eps, which the normalisation uses, must match."""
    net = perturb_all(batch_norm_cnn())
    path = tmp_path / "w.safetensors"
    net.save_weights(path)
    other = fd.NeuralNetwork(
        [fd.Conv2D(4, 3, padding=0), fd.BatchNorm2D(momentum=0.01, activation=fd.ReLU()),
         fd.MaxPool2D(2), fd.BatchNorm2D(momentum=0.5), fd.Flatten(), fd.Dense(6),
         fd.BatchNorm1D(activation=fd.Tanh()), fd.Dense(3)],
        fd.SoftmaxCrossEntropy(), seed=4,
    )  # fmt: skip
    other.load_weights(path)
    assert same_weights(net, other)
    other.layers[3].eps = 1e-3
    with pytest.raises(fd.ModelFileError, match=r"layers\[3\] \(BatchNorm2D\) differs: eps"):
        other.load_weights(path)
