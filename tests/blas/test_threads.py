"""BLAS thread counts: every steerable library is held to one thread while fastdl computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fastdl import config
from fastdl.kernels._blas import threads


def test_every_steerable_blas_is_serial_inside_a_network_pass_and_restored_after():
    import scipy.linalg  # noqa: F401  (loads SciPy's own OpenBLAS: a second library)

    threads.refresh()
    if len(threads.controlled()) < 2:
        pytest.skip("SciPy's and numpy's BLAS are one library here")
    with threads.blas_threads(2):
        before = [n for _, _, n in threads.controlled()]
        with config.compute():
            assert [n for _, _, n in threads.controlled()] == [1] * len(before)
        assert [n for _, _, n in threads.controlled()] == before == [2] * len(before)
        with threads.serial_blas():
            assert threads.get_blas_threads() == 1
        assert threads.get_blas_threads() == 2


def test_an_mkl_style_library_is_steered_through_threadpoolctl(build_shim):
    shim = build_shim("MKL", "libmkl_rt.so.2")
    code = (
        "import json, numpy as np, fastdl as fd\n"
        "from fastdl import config\n"
        "from fastdl.kernels._blas import threads\n"
        "mkl = lambda: [n for k, p, n in threads.controlled() if k == 'mkl']\n"
        "out = {'before': mkl()}\n"
        "with config.compute(): out['inside'] = mkl()\n"
        "out['after'] = mkl()\n"
        "print(json.dumps(out))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "FASTDL_BLAS_LIBRARY": shim}, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == {"before": [4], "inside": [1], "after": [4]}
