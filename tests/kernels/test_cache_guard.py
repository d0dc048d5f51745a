"""A damaged numba cache never kills a run: each cache file is emptied, cut short or altered
in turn, and the next run recompiles what it needs and computes the same numbers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fastdl import config

pytestmark = pytest.mark.skipif(config.PURE_AT_IMPORT, reason="no numba cache when pure")

SCRIPT = """
import numpy as np
from fastdl.kernels import conv
rng = np.random.default_rng(0)
x = rng.standard_normal((2, 5, 5, 2)); w = rng.standard_normal((3, 3, 2, 3)); b = np.zeros(3)
y = conv.conv2d_forward.nb(x, w, b, 1, (1, 1, 1, 1), True)
dx, dw, db = conv.conv2d_backward.nb(x, w, y, np.ones_like(y), 1, (1, 1, 1, 1), True, True)
print(repr(float(y.sum())), repr(float(dx.sum() + dw.sum() + db.sum())))
"""


def run(cache_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    return subprocess.run([sys.executable, "-W", "always", "-c", SCRIPT], capture_output=True,
                          text=True, env=env, timeout=300)  # fmt: skip


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "emptied":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:  # garbled: bytes in the middle inverted, the length kept
        mid = len(data) // 2
        path.write_bytes(
            data[:mid] + bytes(255 - b for b in data[mid : mid + 64]) + data[mid + 64 :]
        )


def test_every_damaged_cache_file_is_recompiled_not_loaded(tmp_path):
    pristine = tmp_path / "pristine"
    first = run(pristine)
    assert first.returncode == 0, first.stderr
    files = sorted(p for p in pristine.rglob("*") if p.suffix in (".nbi", ".nbc"))
    assert files and all(Path(str(p) + ".sha256").exists() for p in files if p.suffix == ".nbc")
    warned = []
    for i, target in enumerate(files):
        how = ("emptied", "truncated", "garbled")[i % 3]
        cache = tmp_path / f"case{i}"
        shutil.copytree(pristine, cache)
        damage(cache / target.relative_to(pristine), how)
        done = run(cache)
        assert done.returncode == 0, f"{target.name} {how}: {done.stderr[-2000:]}"
        assert done.stdout == first.stdout, f"{target.name} {how}"
        if "damaged numba cache entry" in done.stderr:
            warned.append(target.name)
            again = run(cache)  # the entry was replaced: no warning the second time
            assert again.returncode == 0 and "damaged" not in again.stderr
    # the kernels this script calls from Python load their own entries: their damage was seen
    assert any("_conv2d_forward_serial" in name for name in warned)
    assert any("_conv2d_backward_serial" in name for name in warned)
