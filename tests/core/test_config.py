"""config: environment flags, use_pure(), thread count; the console command's dispatch."""

import os
import subprocess
import sys

import pytest

import fastdl as fd
from fastdl import config


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_use_pure_restores_the_previous_setting():
    before = config.pure()
    with config.use_pure():
        assert config.pure()
        with pytest.raises(KeyError):
            with config.use_pure(True):
                raise KeyError("boom")
        assert config.pure()
    assert config.pure() == before


def test_set_num_threads_checks_its_argument():
    with pytest.raises(ValueError, match="expected 1.."):
        fd.set_num_threads(0)
    with pytest.raises(ValueError, match="expected 1.."):
        fd.set_num_threads((os.cpu_count() or 1) + 1)
    with pytest.raises(TypeError, match="expected an int"):
        fd.set_num_threads(1.5)


def test_set_num_threads_reaches_registered_hooks():
    seen = []
    previous = config.get_num_threads()
    config.on_threads_changed(seen.append)
    try:
        fd.set_num_threads(1)
        assert config.get_num_threads() == 1
        assert seen[-1] == 1
    finally:
        config._thread_hooks.remove(seen.append)
        fd.set_num_threads(previous)


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_bad_fastdl_pure_value_is_an_error(value):
    result = run_python("import fastdl", FASTDL_PURE=value)
    assert result.returncode != 0
    assert "FASTDL_PURE=" in result.stderr and "expected 1/0" in result.stderr


def test_bad_thread_count_is_an_error():
    result = run_python("import fastdl", FASTDL_NUM_THREADS="zero")
    assert result.returncode != 0 and "FASTDL_NUM_THREADS='zero'" in result.stderr


def test_pure_mode_cannot_be_left_when_set_at_import():
    result = run_python(
        "import fastdl.config as c\n"
        "try:\n"
        "    with c.use_pure(False): pass\n"
        "except RuntimeError as e: print(e)\n",
        FASTDL_PURE="1",
    )
    assert "numba kernels are unavailable (FASTDL_PURE=1 was set at import)" in result.stdout


def test_cli_rejects_an_unknown_model(capsys):
    from fastdl import cli

    with pytest.raises(SystemExit):
        cli.main(["train", "no-such-model"])
    assert "invalid choice" in capsys.readouterr().err


def test_fastdl_info_names_the_blas_path_and_library(capsys):
    from fastdl import cli
    from fastdl.kernels import _blas

    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    report = _blas.info()
    assert f"BLAS path      {report['path']} (" in out
    if report["library"]:
        assert report["library"] in out and report["symbols"][0] in out
    assert f"numpy          {__import__('numpy').__version__}" in out


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="the BLAS path of compiled kernels")
def test_python_m_fastdl_info_says_loudly_when_products_are_loops():
    result = subprocess.run([sys.executable, "-m", "fastdl", "info"], capture_output=True,
                            text=True, env={**os.environ, "FASTDL_BLAS": "loops"}, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "BLAS path      loops (compiled LOOP GEMMS" in result.stdout
    assert "WARNING      matrix products run as loops" in result.stdout


@pytest.mark.skipif(config.PURE_AT_IMPORT, reason="the BLAS path of compiled kernels")
def test_use_blas_restores_the_previous_path():
    before = config.blas_path()
    with config.use_blas("loops"):
        assert config.blas_path() == "loops"
        with pytest.raises(KeyError):
            with config.use_blas("numpy"):
                assert config.blas_path() == "numpy"
                raise KeyError("boom")
        assert config.blas_path() == "loops"
    assert config.blas_path() == before


def test_numba_num_threads_caps_the_default_and_the_limit():
    result = run_python(
        "import fastdl as fd\n"
        "print(fd.config.get_num_threads())\n"
        "try:\n"
        "    fd.set_num_threads(2)\n"
        "except ValueError as e: print(e)\n",
        NUMBA_NUM_THREADS="1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "1", "set_num_threads: expected 1..1 threads (NUMBA_NUM_THREADS), got 2"
    ]  # fmt: skip


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_the_cpu_affinity_mask_sets_the_default_thread_count():
    result = run_python(
        "import os\nos.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})\n"
        "import fastdl as fd\nprint(fd.config.get_num_threads())\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_fastdl_num_threads_above_the_limit_takes_the_limit():
    limit = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    result = run_python("import fastdl as fd; print(fd.config.get_num_threads())",
                        FASTDL_NUM_THREADS=str(limit + 5))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(limit)
