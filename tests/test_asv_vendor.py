"""The scripts asv's published pages load, vendored in asv_bench/vendor, are all in the
repository: ``make bench-history`` publishes from a fresh clone without the network.

(A ``dist/`` pattern in .gitignore once kept jQuery's and bootstrap's ``dist/`` folders out
of every commit; the history then failed at ``asv publish`` on any clone but the one that
had downloaded them.)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "asv_bench" / "vendor"


def _manifest() -> dict:
    return json.loads((VENDOR / "manifest.json").read_text())


def test_every_vendored_file_is_there_with_its_recorded_hash():
    files = _manifest()["files"]
    assert files
    for name, digest in files.items():
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name


def test_every_vendored_file_is_tracked_by_git():
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files", "asv_bench/vendor"], cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout.split()  # fmt: skip
    wanted = (f"asv_bench/vendor/{name}" for name in _manifest()["files"])
    missing = sorted(set(wanted) - set(tracked))
    assert not missing, f"vendored but not committed (see .gitignore): {missing}"


def test_every_script_the_pages_load_maps_to_a_vendored_file():
    urls = _manifest()["urls"]
    files = _manifest()["files"]
    assert all(path in files for path in urls.values())
    pytest.importorskip("asv")
    import sys

    sys.path.insert(0, str(ROOT / "asv_bench"))
    try:
        import history
    finally:
        sys.path.remove(str(ROOT / "asv_bench"))
    assert set(history.asv_integrity()) <= set(urls)
