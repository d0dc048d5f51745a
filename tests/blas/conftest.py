"""Fixtures of the BLAS tests: stand-in vendor libraries built with the C compiler, and a
fresh process per BLAS setting that runs every GEMM kernel (``kernel_sample.py``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def numpy_openblas() -> str:
    """numpy's own BLAS library file (this machine's Linux wheel: ILP64 OpenBLAS)."""
    from fastdl.kernels._blas import FOUND

    if FOUND.gemm is None or FOUND.gemm.sgemm != "scipy_cblas_sgemm64_":
        pytest.skip("numpy's BLAS here is not the OpenBLAS of numpy's PyPI wheels")
    return FOUND.gemm.library.path


@pytest.fixture(scope="session")
def build_shim(tmp_path_factory):
    """``build_shim(style, name)``: compile ``shim.c`` as a library file called ``name``
    that exports ``style``'s symbols (MKL or ACCELERATE) and forwards to numpy's OpenBLAS."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (apt-get install gcc) to build the stand-in libraries")
    target = numpy_openblas()
    made = {}

    def build(style: str, name: str) -> str:
        if (style, name) not in made:
            folder = tmp_path_factory.mktemp(f"shim-{style.lower()}")
            out = folder / name
            subprocess.run(
                [cc, "-shared", "-fPIC", "-O1", f"-DSTYLE_{style}", str(HERE / "shim.c"),
                 "-o", str(out), target, f"-Wl,-rpath,{os.path.dirname(target)}"],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            made[style, name] = str(out)
        return made[style, name]

    return build


def run_sample(tmp_path, **env) -> tuple[dict, dict]:
    """Run ``kernel_sample.py`` in a fresh process with ``env`` added; returns its arrays and
    the ``info()`` report. Raises ``AssertionError`` with the child's stderr if it failed."""
    out = tmp_path / "sample.npz"
    full = {**os.environ, **env}
    done = subprocess.run(
        [sys.executable, str(HERE / "kernel_sample.py"), str(out)],
        env=full, capture_output=True, text=True, timeout=600, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    data = dict(np.load(out))
    info = json.loads(str(data.pop("info")))
    return data, info


def assert_matches_twins(got: dict, want: dict) -> None:
    """Each array within float rounding of the NumPy twins' (float32: 1e-5 of the array's
    largest magnitude; float64: 1e-12)."""
    assert got.keys() == want.keys()
    for key, expected in want.items():
        eps = 1e-5 if "float32" in key else 1e-12
        scale = 1.0 + float(np.max(np.abs(expected), initial=0.0))
        np.testing.assert_allclose(got[key], expected, rtol=0, atol=eps * scale, err_msg=key)
