"""Save and load: bitwise round trips, resuming an optimizer, and every refusal."""

from __future__ import annotations

import io
import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import fastdl as fd
from fastdl import config, saving
from fastdl.layers import Layer
from fastdl.ops.dense import WeightMultiply


def cnn(seed=0, dtype=np.float32):
    return fd.NeuralNetwork(
        [fd.Conv2D(4, 3, padding=0, activation=fd.ReLU()), fd.MaxPool2D(2, dropout=0.75),
         fd.Flatten(), fd.Dense(6, fd.LeakyReLU(0.2), dropout=0.5), fd.Dense(3)],
        fd.SoftmaxCrossEntropy(), seed=seed, dtype=dtype,
    )  # fmt: skip


def sequence_net(seed=0, dtype=np.float32):
    return fd.NeuralNetwork(
        [fd.LSTMLayer(5, stateful=True), fd.GRULayer(4), fd.RNNLayer(3, return_sequences=False),
         fd.Dense(2, fd.Sigmoid())],
        fd.MeanSquaredError(), seed=seed, dtype=dtype,
    )  # fmt: skip


def embedding_net(seed=0, dtype=np.float32):
    return fd.NeuralNetwork([fd.Embedding(9, 4), fd.LSTMLayer(6), fd.Dense(9)],
                            fd.SoftmaxCrossEntropy(), seed=seed, dtype=dtype)  # fmt: skip


def autoencoder(seed=0, dtype=np.float32):
    return fd.NeuralNetwork(
        [fd.Conv2D(4, 3, stride=2, padding=1, activation=fd.ReLU()),
         fd.Conv2DTranspose(2, 3, stride=2, padding=1, output_padding=(1, 0), dropout=0.8),
         fd.Conv2DTranspose(1, 1, activation=fd.Sigmoid())],
        fd.MeanSquaredError(), seed=seed, dtype=dtype,
    )  # fmt: skip


def batchnorm_net(seed=0, dtype=np.float32):
    return fd.NeuralNetwork(
        [fd.Conv2D(4, 3, padding=0), fd.BatchNorm2D(activation=fd.ReLU()), fd.MaxPool2D(2),
         fd.BatchNorm2D(momentum=None, eps=1e-3), fd.Flatten(), fd.Dense(6),
         fd.BatchNorm1D(activation=fd.Tanh()), fd.Dense(3)],
        fd.SoftmaxCrossEntropy(), seed=seed, dtype=dtype,
    )  # fmt: skip


def data(kind, rng, dtype=np.float32):
    if kind == "autoencoder":
        x = rng.random((4, 1, 8, 7)).astype(dtype)
        return x, x
    if kind in ("cnn", "batchnorm"):
        return rng.standard_normal((6, 1, 9, 9)).astype(dtype), rng.integers(0, 3, 6)
    if kind == "sequence":
        return rng.standard_normal((4, 5, 3)).astype(dtype), rng.random((4, 2)).astype(dtype)
    ids = rng.integers(0, 9, (4, 7))
    return ids, np.roll(ids, -1, axis=1)


MAKERS = {"cnn": cnn, "sequence": sequence_net, "embedding": embedding_net,
          "autoencoder": autoencoder, "batchnorm": batchnorm_net}  # fmt: skip


def trained(kind, rng, optim=None, steps=3, dtype=np.float32):
    net = MAKERS[kind](dtype=dtype)
    optim = optim or fd.Adam(0.01)
    fd.Trainer(net, optim)
    x, y = data(kind, rng, dtype)
    for _ in range(steps):
        net.train_batch(x, y)
        optim.step()
    return net, optim, x, y


def same(a, b):
    return len(a) == len(b) and all(
        p.dtype == q.dtype and np.array_equal(p, q) for p, q in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("kind", MAKERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_round_trip_is_bitwise(kind, dtype, rng, tmp_path):
    net, _, x, _ = trained(kind, rng, dtype=dtype)
    path = tmp_path / "model.npz"
    net.save(path)
    back = fd.load(path)
    assert repr(back) == repr(net) and back.dtype == net.dtype and back.seed == net.seed
    assert same(back.params(), net.params())
    assert same(back.buffers(), net.buffers())  # running statistics, bit for bit
    assert back.input_shape == net.input_shape
    for a, b in zip(net.layers, back.layers, strict=True):
        if getattr(a, "stateful", False):
            assert same(list(a.state), list(b.state))  # the carried state comes back too
    np.testing.assert_array_equal(back.predict(x[:4]), net.predict(x[:4]))
    assert fd.NeuralNetwork.load(path).params()[0].tobytes() == net.params()[0].tobytes()


@pytest.mark.parametrize(
    "optim",
    [fd.SGD(0.1), fd.SGDMomentum(0.05, 0.9, nesterov=True, final_lr=0.01, decay_type="linear"),
     fd.AdaGrad(0.05), fd.RMSprop(0.01), fd.Adam(0.01, clip_norm=1.0), fd.AdamW(0.01),
     fd.Adadelta(1.0), fd.Adam(0.01, use_ema=True, ema_momentum=0.5)],
    ids=lambda o: type(o).__name__ + ("-ema" if o.use_ema else ""),
)  # fmt: skip
def test_training_resumed_from_a_file_is_bitwise_the_same(optim, rng, tmp_path):
    net, optim, x, y = trained("cnn", rng, optim=optim)
    optim.setup_decay(4)
    optim.decay_lr()
    path = tmp_path / "run.npz"
    net.save(path, optimizer=optim)
    back, back_optim = fd.load_with_optimizer(path)
    fd.Trainer(back, back_optim)  # binding the same network keeps the loaded state
    assert back_optim.get_config() == optim.get_config()
    for _ in range(3):  # dropout draws continue from the saved generator state
        assert net.train_batch(x, y) == back.train_batch(x, y)
        optim.step()
        back_optim.step()
    assert same(back.params(), net.params())
    if optim.use_ema:
        assert same(back_optim.ema_weights(), optim.ema_weights())


def test_a_network_saved_on_the_numba_path_predicts_alike_under_fastdl_pure(rng, tmp_path):
    net, _, x, _ = trained("cnn", rng)
    path = tmp_path / "m.npz"
    net.save(path)
    np.save(tmp_path / "x.npy", x)
    with config.use_pure():
        want = net.predict(x)
    code = (
        "import numpy as np, fastdl as fd, sys\n"
        f"net = fd.load({str(path)!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, net.predict(np.load({str(tmp_path / 'x.npy')!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "FASTDL_PURE": "1"}, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)


def test_build_sets_a_network_up_without_data_so_set_weights_works(rng):
    source, _, x, _ = trained("cnn", rng)
    fresh = cnn(seed=5)
    with pytest.raises(ValueError, match="expected 0 arrays"):
        fresh.set_weights(source.get_weights())
    assert fresh.build((1, 9, 9)) is fresh
    fresh.set_weights(source.get_weights())
    np.testing.assert_array_equal(fresh.predict(x), source.predict(x))
    assert embedding_net().build((7,), kind="int").params()[0].shape == (9, 4)
    with pytest.raises(ValueError, match="input_shape must be positive ints"):
        cnn().build((64, 0, 9))


def test_an_unbuilt_network_round_trips_its_architecture(tmp_path):
    net = cnn()
    net.save(tmp_path / "a.npz")
    back = fd.load(tmp_path / "a.npz")
    assert back.params() == [] and repr(back) == repr(net)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(rng, tmp_path, monkeypatch):
    net, _, _, _ = trained("cnn", rng)
    path = tmp_path / "m.npz"
    net.save(path)
    before = path.read_bytes()

    def broken(f, header, arrays):
        f.write(b"PK\x03\x04 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(saving, "write_archive", broken)
    with pytest.raises(OSError, match="disk full"):
        net.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]


# -- refusals ------------------------------------------------------------------------------------


class WritesAFile:
    """A pickle payload: unpickling it creates the file ``target``."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_is_refused_without_running_it(tmp_path):
    target = tmp_path / "pwned"
    evil = tmp_path / "model.npz"
    evil.write_bytes(pickle.dumps(WritesAFile(str(target))))
    with pytest.raises(
        fd.ModelFileError, match=r"model\.npz: not a fastdl file .* never unpickles"
    ):
        fd.load(evil)
    assert not target.exists()
    # also inside an archive: an object array is a pickle numpy would run
    inside = tmp_path / "objects.npz"
    np.savez(inside, __header__=np.zeros(1, np.uint8), w=np.array([WritesAFile(str(target))]))
    with pytest.raises(fd.ModelFileError, match="will not read.*allow_pickle"):
        fd.load(inside)
    assert not target.exists()


def saved(rng, tmp_path):
    net, _, _, _ = trained("cnn", rng)
    path = tmp_path / "m.npz"
    net.save(path)
    return path


def test_truncated_files_are_refused_at_every_length(rng, tmp_path):
    blob = saved(rng, tmp_path).read_bytes()
    cut = tmp_path / "cut.npz"
    for length in [0, 3, 4, 30, 100, len(blob) // 3, len(blob) // 2, len(blob) - 22, len(blob) - 1]:
        cut.write_bytes(blob[:length])
        with pytest.raises(fd.ModelFileError, match=r"cut\.npz"):
            fd.load(cut)


def test_a_flipped_bit_is_refused_or_changes_nothing(rng, tmp_path):
    """Every array's bytes are covered by zip's CRC-32 and the header's SHA-256: a flipped
    bit there is refused. Elsewhere (zip timestamps, attributes) a flip is refused or loads
    exactly the saved weights, never other ones."""
    original = saved(rng, tmp_path)
    want = fd.load(original).params()
    blob = bytearray(original.read_bytes())
    with zipfile.ZipFile(original) as z:
        payload = set()
        for info in z.infolist():  # the local header's own name and extra-field lengths
            name_len, extra_len = np.frombuffer(blob, "<u2", 2, info.header_offset + 26)
            start = info.header_offset + 30 + int(name_len) + int(extra_len)
            payload.update(range(start, start + info.compress_size))
    flipped = tmp_path / "flipped.npz"
    refused = 0
    for offset in range(0, len(blob), max(1, len(blob) // 400)):
        blob[offset] ^= 0x10
        flipped.write_bytes(bytes(blob))
        blob[offset] ^= 0x10
        try:
            got = fd.load(flipped).params()
        except fd.ModelFileError as err:
            assert "flipped.npz" in str(err)
            refused += 1
            continue
        assert offset not in payload, f"a flip in array data at byte {offset} was not noticed"
        assert same(got, want)
    assert refused > 300


def rewrite(path, edit_header=None, drop=(), replace=None):
    """Rewrite an archive with its header edited and members dropped or replaced."""
    with np.load(path, allow_pickle=False) as npz:
        members = {k: npz[k] for k in npz.files}
    header = json.loads(members.pop("__header__").tobytes())
    if edit_header:
        edit_header(header)
    for k in drop:
        members.pop(k)
    members.update(replace or {})
    blob = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(path, __header__=blob, **members)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda h: h.update(format_version=2), r"format version 2 .* reads versions up to 1"),
        (lambda h: h.update(format="something-else"), r"not a fastdl-network file"),
        (lambda h: h["layers"][0].update(name="os.system"), r"unknown layer 'os\.system'"),
        (
            lambda h: h["layers"][3]["config"]["activation"].update(name="Exploit"),
            r"unknown activation 'Exploit'",
        ),  # fmt: skip
        (lambda h: h["loss"].update(name="builtins.eval"), r"unknown loss 'builtins\.eval'"),
        (
            lambda h: h["layers"][3]["config"].update(neurons=7),
            r"layer 3 \(Dense\) parameter 0 is float32 \(36, 7\), the file's layers\.3\.params\.0 is "
            r"float32 \(36, 6\)",
        ),  # fmt: skip
        (lambda h: h["layers"][0]["config"].update(out_channels="four"), r"cannot build Conv2D"),
        (lambda h: h.update(dtype="float16"), r"dtype 'float16'"),
    ],
    ids=[
        "newer-version",
        "other-format",
        "unknown-layer",
        "unknown-activation",
        "unknown-loss",
        "wrong-shape",
        "bad-config",
        "bad-dtype",
    ],  # fmt: skip
)
def test_a_header_that_does_not_describe_the_arrays_is_refused(edit, match, rng, tmp_path):
    path = saved(rng, tmp_path)
    rewrite(path, edit_header=edit)
    with pytest.raises(fd.ModelFileError, match=match):
        fd.load(path)


def test_missing_and_altered_arrays_are_refused(rng, tmp_path):
    path = saved(rng, tmp_path)
    rewrite(path, drop=["layers.0.params.1"])
    with pytest.raises(fd.ModelFileError, match=r"array layers\.0\.params\.1 is missing"):
        fd.load(path)
    path = saved(rng, tmp_path)
    rewrite(path, replace={"layers.0.params.1": np.zeros(4, np.float32)})
    with pytest.raises(
        fd.ModelFileError, match=r"layers\.0\.params\.1 does not match its checksum"
    ):
        fd.load(path)


def test_a_plain_npz_is_refused_as_not_a_model(tmp_path):
    np.savez(tmp_path / "w.npz", a=np.ones(3))
    with pytest.raises(fd.ModelFileError, match="without fastdl's __header__"):
        fd.load(tmp_path / "w.npz")
    with pytest.raises(fd.ModelFileError, match="cannot be read"):
        fd.load(tmp_path / "missing.npz")


class Scaled(Layer):
    """A user layer: ``y = x W`` with a stated initial scale."""

    def __init__(self, units: int, scale: float = 1.0) -> None:
        super().__init__()
        self.units, self.scale = units, scale

    def get_config(self):
        return {"units": self.units, "scale": self.scale}

    def _setup_layer(self, x):
        w = self.rng.standard_normal((x.shape[1], self.units)) * self.scale
        self.operations = [WeightMultiply(w.astype(self.dtype))]


def test_a_layer_of_your_own_is_saved_only_once_registered(rng, tmp_path, monkeypatch):
    monkeypatch.setattr(saving, "LAYERS", dict(saving.LAYERS))
    net = fd.NeuralNetwork([Scaled(3, 0.5), fd.Dense(2)], fd.MeanSquaredError(), seed=1)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    net.forward(x)
    with pytest.raises(ValueError, match=r"layer 0 is a [\w.]*\.Scaled, which is not registered: call "
                                         r"fd\.register_layer\(Scaled\) first"):  # fmt: skip
        net.save(tmp_path / "u.npz")
    assert fd.register_layer(Scaled) is Scaled
    net.save(tmp_path / "u.npz")
    back = fd.load(tmp_path / "u.npz")
    np.testing.assert_array_equal(back.predict(x), net.predict(x))
    monkeypatch.setattr(saving, "LAYERS", {k: v for k, v in saving.LAYERS.items() if k != "Scaled"})
    with pytest.raises(fd.ModelFileError, match="unknown layer 'Scaled'.*fd.register_layer"):
        fd.load(tmp_path / "u.npz")
    with pytest.raises(TypeError, match="expected a Layer subclass"):
        fd.register_layer(int)


def test_load_with_optimizer_needs_one_in_the_file(rng, tmp_path):
    with pytest.raises(fd.ModelFileError, match="holds no optimizer"):
        fd.load_with_optimizer(saved(rng, tmp_path))


def test_optimizer_state_dicts_refuse_another_optimizer_or_other_shapes(rng):
    net, adam, _, _ = trained("cnn", rng)
    with pytest.raises(TypeError, match="the state is of a Adam"):
        fd.SGD(0.1).load_state_dict(adam.state_dict())
    state = adam.state_dict()
    state["slots"][0]["m"] = np.zeros(3, np.float32)
    other = fd.Adam(0.01)
    other.bind(net)
    with pytest.raises(ValueError, match="slot 'm' of parameter 0 does not fit it"):
        other.load_state_dict(state)
    assert other.iterations == 0  # unchanged by the refused state


def test_the_archive_is_a_plain_zip_of_numeric_arrays(rng, tmp_path):
    with zipfile.ZipFile(saved(rng, tmp_path)) as z:
        names = z.namelist()
        header = json.loads(np.load(io.BytesIO(z.read("__header__.npy"))).tobytes())
    assert "__header__.npy" in names and all(n.endswith(".npy") for n in names)
    assert header["format"] == "fastdl-network" and header["format_version"] == 1
    assert header["layers"][0]["name"] == "Conv2D"
    assert header["layers"][3]["config"]["activation"] == {"name": "LeakyReLU",
                                                          "config": {"alpha": 0.2}}  # fmt: skip
