"""The character-level LSTM recipe runs end to end on a small text (smoke run)."""

from __future__ import annotations

import numpy as np

import fastdl as fd
from fastdl.recipes import char_lstm


def test_char_lstm_smoke_run(tmp_path, capsys):
    text = "To be, or not to be, that is the question:\n" * 40
    path = tmp_path / "tiny.txt"
    path.write_text(text)
    result = char_lstm.main(
        [str(path), "--smoke", "1", "--hidden", "16", "--batch-size", "4", "--seq-len", "8",
         "--sample-chars", "30", "--prime", "To ", "--seed", "3"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "train loss" in out and "val loss" in out and "--- sample" in out
    assert result["curve"], "no evaluation was printed"
    for row in result["curve"]:
        assert np.isfinite(row["train"]) and np.isfinite(row["val"])
    assert result["curve"][-1]["val"] < np.log(len(set(text)))  # better than uniform guessing
    assert result["sample"].startswith("To ") and len(result["sample"]) == 33
    assert set(result["sample"]) <= set(text)


def test_a_text_too_short_for_the_streams_is_refused_not_looped_on(tmp_path):
    """It used to spin forever: an epoch with no window never ends the time budget."""
    import pytest

    path = tmp_path / "short.txt"
    path.write_text("To be, or not to be, that is the question:\n" * 3)
    with pytest.raises(SystemExit, match=r"training characters .* are too few .* need at least"):
        char_lstm.main([str(path), "--smoke", "1", "--batch-size", "8", "--seq-len", "16"])
    with pytest.raises(SystemExit, match=r"validation characters .* are too few"):
        char_lstm.main([str(path), "--smoke", "1", "--batch-size", "8", "--seq-len", "2"])


def test_bad_numbers_are_argument_errors(capsys):
    import pytest

    from fastdl.recipes import mnist_cnn

    cases = [
        (char_lstm.main, ["--smoke", "0"], "--smoke: must be a positive finite number, got 0"),
        (char_lstm.main, ["--temperature", "nan"], "must be a positive finite number, got nan"),
        (char_lstm.main, ["--seq-len", "0"], "--seq-len: must be a positive integer, got 0"),
        (char_lstm.main, ["--dropout", "1.5"], "must be a keep probability in (0, 1], got 1.5"),
        (mnist_cnn.main, ["--batch-size", "-5"], "--batch-size: must be a positive integer"),
        (mnist_cnn.main, ["--threads", "0"], "--threads: must be a positive integer, got 0"),
        (mnist_cnn.main, ["--epochs", "0"], "--epochs: must be a positive integer, got 0"),
    ]
    for main, argv, message in cases:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err


def test_save_writes_a_network_fd_load_reads(tmp_path, capsys):
    text = "To be, or not to be, that is the question:\n" * 40
    path = tmp_path / "tiny.txt"
    path.write_text(text)
    char_lstm.main(
        [str(path), "--smoke", "0.3", "--hidden", "8", "--batch-size", "4", "--seq-len", "8",
         "--sample-chars", "5", "--save", str(tmp_path / "lstm.npz")]
    )  # fmt: skip
    assert f"network saved to {tmp_path / 'lstm.npz'}" in capsys.readouterr().out
    net = fd.load(tmp_path / "lstm.npz")
    assert net.layers[0].hidden_size == 8


def test_mnist_cnn_save_writes_the_network_and_its_optimizer(tmp_path, capsys):
    import os

    import pytest

    from fastdl.recipes import mnist_cnn

    if not os.environ.get("FASTDL_DATA"):
        pytest.skip("FASTDL_DATA is not set (CI sets FASTDL_DATA=../shared/data)")
    acc = mnist_cnn.main(["--smoke", "--save", str(tmp_path / "cnn.npz")])
    assert f"network saved to {tmp_path / 'cnn.npz'}" in capsys.readouterr().out
    net, optim = fd.load_with_optimizer(tmp_path / "cnn.npz")
    assert type(optim).__name__ == "Adadelta" and optim.iterations == 32
    from fastdl.datasets import load_mnist

    (_, _), (x_test, y_test) = load_mnist()
    x = mnist_cnn.prepare(x_test[:1000])
    assert mnist_cnn.accuracy(net, x, y_test[:1000].astype(np.int64)) == pytest.approx(acc)


def test_char_lstm_checkpoint_and_resume(tmp_path, capsys):
    """--checkpoint keeps the run (its time budget's clock too); --resume of a finished run
    ends where it ended, without another step; other flags are refused."""
    import pytest

    text = "To be, or not to be, that is the question:\n" * 40
    path = tmp_path / "tiny.txt"
    path.write_text(text)
    ckpt = tmp_path / "run.ckpt"
    args = [str(path), "--smoke", "0.5", "--hidden", "8", "--batch-size", "4", "--seq-len", "8",
            "--sample-chars", "5", "--save", str(tmp_path / "a.npz")]  # fmt: skip
    first = char_lstm.main([*args, "--checkpoint", str(ckpt)])
    state = fd.checkpoint.read(ckpt)[0]["fit"]
    assert state["stopped"] and state["callbacks"][0]["name"] == "TimeLimit"
    assert state["callbacks"][0]["state"]["used"] >= 0.5
    args[-1] = str(tmp_path / "b.npz")
    again = char_lstm.main([*args, "--resume", str(ckpt)])
    assert again["curve"] == first["curve"]
    a, b = fd.load(tmp_path / "a.npz"), fd.load(tmp_path / "b.npz")
    assert all(np.array_equal(p, q) for p, q in zip(a.params(), b.params(), strict=True))
    with pytest.raises(ValueError, match=r"other settings .*batch_size=2 \(checkpoint: 4\)"):
        char_lstm.main([*args[:6], "2", *args[7:], "--resume", str(ckpt)])
