"""The ``fastdl`` command: ``info``, ``warmup``, ``bench`` (subprocesses and in-process)."""

import io
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from terminal import run_on_terminal

import fastdl
from fastdl import config
from fastdl.cli import main
from fastdl.datasets import inventory, registry
from fastdl.warmup import Progress

needs_numba = pytest.mark.skipif(config.PURE_AT_IMPORT, reason="numba kernels off")

MNIST_NAMES = [f.gz_name for f in registry.MNIST.files]
FASHION_SYSTEM = Path(registry.FASHION_MNIST.system_dirs[0])


def _mnist_into(folder: Path, names=MNIST_NAMES) -> None:
    """Link the MNIST files of ``$FASTDL_DATA/mnist`` into ``folder`` where they exist, else
    write placeholders (``info`` looks at file names only; the loaders check contents)."""
    folder.mkdir(parents=True)
    source = Path(os.environ.get("FASTDL_DATA") or "/nonexistent") / "mnist"
    for name in names:
        if (source / name).is_file():
            (folder / name).symlink_to(source / name)
        else:
            (folder / name).write_bytes(b"")


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    """A data folder holding only MNIST, an empty user cache, and an empty numba cache."""
    data = tmp_path / "data"
    _mnist_into(data / "mnist")
    env = {
        "FASTDL_DATA": str(data),
        "XDG_CACHE_HOME": str(tmp_path / "xdg"),
        "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _run(args, env=None, timeout=240):
    full = dict(os.environ, **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "fastdl", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _line(text: str, start: str) -> str:
    lines = [line for line in text.splitlines() if line.lstrip().startswith(start)]
    assert lines, f"no line starting with {start!r} in:\n{text}"
    return lines[0]


def _cache(text: str) -> tuple[float, int]:
    """(megabytes, files) of the ``numba cache`` line of ``fastdl info``."""
    m = re.search(r"numba cache +([\d.]+) MB in ([\d,]+) files", text)
    assert m, text
    return float(m.group(1)), int(m.group(2).replace(",", ""))


def _warmup_counts(text: str) -> tuple[int, int]:
    m = re.search(r"(\d+) kernel signatures compiled, (\d+) loaded from the cache", text)
    assert m, text
    return int(m.group(1)), int(m.group(2))


# --- info ---------------------------------------------------------------------------------


def test_info_in_process_versions_and_data_sets(data_env, capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert f"fastdl         {fastdl.__version__}" in out
    assert f"numpy          {np.__version__}" in out
    assert f"Python         {platform.python_version()}" in out
    assert f"threads        {config.get_num_threads()}" in out
    assert (
        _line(out, "kernels")
        .split(None, 1)[1]
        .startswith("NumPy twins" if config.pure() else "compiled")
    )
    assert "BLAS path" in out
    assert f"FASTDL_DATA={data_env['FASTDL_DATA']}" in out
    mnist = _line(out, "MNIST ")
    assert "complete" in mnist and str(Path(data_env["FASTDL_DATA"]) / "mnist") in mnist
    fashion = _line(out, "Fashion-MNIST")
    assert data_env["FASTDL_DATA"] not in fashion
    if not FASHION_SYSTEM.is_dir():
        assert "missing" in fashion
    for title in ("Tiny Shakespeare", "Boston housing", "California housing"):
        assert "missing" in _line(out, title)


@needs_numba
def test_info_numba_lines(capsys):
    import numba

    from fastdl.kernels import _cache_stats

    main(["info"])
    out = capsys.readouterr().out
    assert f"numba          {numba.__version__}, nogil kernels on fastdl's own threads" in out
    usage = _cache_stats.cache_usage()
    assert _cache(out) == (round(usage.n_bytes / 1e6, 1), usage.n_files)
    folders = [line.split(None, 1)[1] for line in out.splitlines() if line.startswith("  folder")]
    assert folders == list(usage.folders) and folders


def test_inventory_incomplete_and_wrong_size(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTDL_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    _mnist_into(tmp_path / "mnist", MNIST_NAMES[:3])
    (tmp_path / "boston").mkdir()
    (tmp_path / "boston" / "BostonHousing.csv").write_text("crim,zn\n1,2\n3,4\n")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "tinyshakespeare.txt").write_text("To be, or not to be")
    found = {d.title: d for d in inventory.inventory()}
    assert found["MNIST"].status == "incomplete"
    assert MNIST_NAMES[3] in found["MNIST"].detail
    assert found["Boston housing"].status == "incomplete"
    assert "2 rows, the reference has 506" in found["Boston housing"].detail
    assert found["Tiny Shakespeare"].status == "complete"  # any text works
    assert "not the reference file" in found["Tiny Shakespeare"].detail
    monkeypatch.delenv("FASTDL_DATA")
    found = {d.title: d for d in inventory.inventory()}
    assert found["MNIST"].status == "missing"  # the user cache is empty
    assert found["Boston housing"].detail == "FASTDL_DATA is not set"


def test_info_subprocess(data_env):
    result = _run(["info"], data_env)
    assert result.returncode == 0, result.stderr
    assert fastdl.__version__ in result.stdout and np.__version__ in result.stdout
    assert "complete" in _line(result.stdout, "MNIST ")


# --- warmup -------------------------------------------------------------------------------


@needs_numba
def test_warmup_cold_then_warm_cache(data_env):
    """A fresh NUMBA_CACHE_DIR: warm-up compiles and the cache grows; a second run loads."""
    info = _run(["info"], data_env).stdout
    assert f"NUMBA_CACHE_DIR={data_env['NUMBA_CACHE_DIR']}" in info
    assert _cache(info) == (0.0, 0)
    assert f"  folder       {data_env['NUMBA_CACHE_DIR']}{os.sep}kernels_" in info
    cold = _run(["warmup", "--steps", "mse", "--dtype", "float32"], data_env)
    assert cold.returncode == 0, cold.stderr
    compiled, loaded = _warmup_counts(cold.stdout)
    assert compiled > 0 and loaded == 0
    assert "\r" not in cold.stdout  # not a terminal: plain lines
    assert re.search(r"^\[1/1\] mse float32 .* s  compiled \d+, loaded 0$", cold.stdout, re.M)
    after = _cache(_run(["info"], data_env).stdout)
    assert after[0] > 0 and after[1] > 0
    warm = _run(["warmup", "--steps", "mse", "--dtype", "float32"], data_env)
    assert warm.returncode == 0, warm.stderr
    compiled, loaded = _warmup_counts(warm.stdout)
    assert compiled == 0 and loaded > 0
    for folder in Path(data_env["NUMBA_CACHE_DIR"]).iterdir():
        assert any(p.suffix == ".nbi" for p in folder.iterdir())


def _run_in_terminal(args, env, timeout=120) -> str:
    """Run ``python -m fastdl args`` with a pseudo-terminal as stdout; return what it wrote."""
    cmd = [sys.executable, "-m", "fastdl", *args]
    return run_on_terminal(cmd, {**os.environ, **env}, timeout, columns=100, stderr_too=False)


@needs_numba
@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_warmup_progress_bar_on_a_terminal(data_env):
    out = _run_in_terminal(["warmup", "--steps", "mse,dense", "--dtype", "float32"], data_env)
    # a terminal turns "\n" into "\r\n"; a redraw is a "\r" not followed by "\n"
    assert re.search(r"\r(?!\n)", out), repr(out)
    assert "2/2" in out and "done in" in out
    assert not re.search(r"^\[1/2\] ", out, re.M)  # no plain step lines


def test_own_progress_bar_without_tqdm():
    terminal = io.StringIO()
    bar = Progress(2, terminal, terminal=True, use_tqdm=False)
    for label in ("a float32", "b float32"):
        bar.start(label)
        bar.finish(label, 0.5, 3, 0)
    bar.close()
    text = terminal.getvalue()
    assert text.count("\r") == 4 and "2/2" in text and text.endswith("\n")
    plain = io.StringIO()
    bar = Progress(2, plain)  # StringIO is not a terminal
    bar.start("a float32")
    bar.finish("a float32", 0.5, 3, 1)
    bar.close()
    assert plain.getvalue() == "[1/2] a float32         0.5 s  compiled 3, loaded 1\n"


@needs_numba
def test_warmup_in_process(capsys):
    assert main(["warmup", "--steps", "mse", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("fastdl warmup: 1 step (mse × float32)")
    assert re.search(r"^\[1/1\] mse float32 ", out, re.M)
    compiled, loaded = _warmup_counts(out)
    assert compiled >= 0 and loaded >= 0


def test_warmup_pure_has_nothing_to_compile(data_env):
    result = _run(["warmup"], dict(data_env, FASTDL_PURE="1"))
    assert result.returncode == 0, result.stderr
    assert "nothing to compile" in result.stdout


def test_warmup_rejects_unknown_step(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["warmup", "--steps", "dense,transformer"])
    assert exc.value.code == 2
    assert "transformer" in capsys.readouterr().err


# --- bench --------------------------------------------------------------------------------


def test_bench_prints_positive_rates():
    env = {"FASTDL_DATA": ""}  # synthetic data: no data set needed
    result = _run(["bench", "--seconds", "3"], env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    ceiling = re.search(r"a @ b: ([\d.]+) GFLOP/s", _line(out, "matmul"))
    assert ceiling and float(ceiling.group(1)) > 0
    for title, unit in (
        ("CNN training", "images/s"),
        ("CNN inference", "images/s"),
        ("LSTM training", "tokens/s"),
    ):
        line = _line(out, title)
        m = re.search(rf"([\d,]+) {unit}.*?, ([\d.]+) GFLOP/s = (\d+)% of the matmul", line)
        assert m, line
        assert int(m.group(1).replace(",", "")) > 0 and float(m.group(2)) > 0
    assert "without dropout" in _line(out, "CNN training")


def test_bench_rejects_bad_seconds(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--seconds", "0"])
    assert exc.value.code == 2


def test_bench_flop_counts_by_hand():
    """The FLOPs bench divides by (from fastdl.summary) equal the products counted by hand:
    2 per multiply-add; training 3× (forward, dx, dW), the first layer 2× (no dx)."""
    from fastdl.bench import LSTM_HIDDEN, LSTM_VOCAB, _Workloads

    work = _Workloads(dropout=False)
    conv1, conv2 = 2 * 26 * 26 * 32 * 1 * 9, 2 * 24 * 24 * 64 * 32 * 9
    dense = 2 * 9216 * 128 + 2 * 128 * 10
    lstm = 2 * (4 * LSTM_HIDDEN * LSTM_HIDDEN + LSTM_HIDDEN * LSTM_VOCAB)  # h @ W_hh, output
    assert work.flops == {
        "cnn-train": 2 * conv1 + 3 * (conv2 + dense),
        "cnn-infer": conv1 + conv2 + dense,
        "lstm-train": 3 * lstm,  # the one-hot input product is a gather: 0
    }
    assert work.flops["cnn-infer"] == 23_984_896


def test_python_m_fastdl_without_command_is_a_usage_error():
    result = _run([])
    assert result.returncode == 2 and "usage: fastdl" in result.stderr


SCRIPT = Path(sys.executable).with_name("fastdl")


@pytest.mark.skipif(not SCRIPT.is_file(), reason="console script not installed beside python")
def test_console_script():
    result = subprocess.run([SCRIPT, "info"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and fastdl.__version__ in result.stdout


# --- train --export-onnx ------------------------------------------------------------------


def test_export_onnx_without_onnx_fails_before_training(monkeypatch, capsys):
    """``--export-onnx`` with no ``onnx`` installed stops before any data is loaded."""
    from fastdl.recipes import mnist_cnn

    def no_data(*args, **kwargs):
        raise AssertionError("the recipe went on to load the data")

    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    monkeypatch.setattr(mnist_cnn, "load_mnist", no_data)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "mnist-cnn", "--smoke", "--export-onnx", "model.onnx"])
    message = str(exit_info.value.code)
    assert message.startswith("--export-onnx: ") and "pip install 'fastdl[onnx]'" in message
