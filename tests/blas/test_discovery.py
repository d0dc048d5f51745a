"""Finding numpy's BLAS: the candidate order, the wheel layouts of Linux, macOS and Windows,
stand-in MKL and Accelerate libraries, Debian's OpenBLAS and BLIS (LP64 and ILP64)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
from conftest import assert_matches_twins, numpy_openblas, run_sample
from kernel_sample import reference

from fastdl import config
from fastdl.kernels._blas import discovery

needs_numba = pytest.mark.skipif(config.PURE_AT_IMPORT, reason="no compiled kernels when pure")

# Debian's packages (installed by .ci/run): file, expected integer bits
SYSTEM = {
    "openblas-lp64": ("libopenblas0-pthread", "/usr/lib/*/openblas-pthread/libopenblas.so.0", 32),
    "openblas-ilp64": ("libopenblas64-0-pthread", "/usr/lib/*/openblas64-pthread/libopenblas64.so.0", 64),
    "blis-lp64": ("libblis4-pthread", "/usr/lib/*/blis-pthread/libblis.so.4", 32),
    "blis-ilp64": ("libblis64-4-pthread", "/usr/lib/*/blis64-pthread/libblis64.so.4", 64),
}  # fmt: skip


def system_library(which: str) -> str:
    package, pattern, _ = SYSTEM[which]
    found = sorted(glob.glob(pattern))
    if not found:
        pytest.skip(f"{pattern} missing: apt-get install {package}")
    return found[0]


@pytest.fixture(scope="module")
def twins():
    return reference()


def in_child(code: str) -> dict:
    """Run ``code`` (which sets ``out``) in a fresh interpreter; libraries it loads stay there."""
    script = (
        f"import json\nfrom fastdl.kernels._blas import discovery\n{code}\nprint(json.dumps(out))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the order of the candidates ------------------------------------------------------------------


def test_numpys_own_loaded_library_comes_first(tmp_path):
    numpy_dir = tmp_path / "site" / "numpy"
    own = str(tmp_path / "site" / "numpy.libs" / "libscipy_openblas64_-1.so")
    other = "/opt/scipy.libs/libscipy_openblas-2.so"
    loaded = [{"filepath": other, "internal_api": "openblas", "version": "0.3.30"},
              {"filepath": own, "internal_api": "openblas", "version": "0.3.31"}]  # fmt: skip
    libs = discovery.candidates(str(numpy_dir), loaded, {})
    assert [lib.path for lib in libs] == [own, other]
    assert libs[0].kind == "openblas" and libs[0].version == "0.3.31"
    assert libs[0].found_by == "loaded in this process (threadpoolctl)"


def test_a_named_library_is_the_only_candidate(tmp_path):
    libs = discovery.candidates(str(tmp_path), [{"filepath": "/x/libopenblas.so"}], {},
                                explicit="/y/libmkl_rt.so.2")  # fmt: skip
    assert [(lib.path, lib.kind, lib.found_by) for lib in libs] == [
        ("/y/libmkl_rt.so.2", "mkl", "FASTDL_BLAS_LIBRARY")
    ]


def test_accelerate_comes_from_numpys_build_record(tmp_path):
    libs = discovery.candidates(str(tmp_path / "numpy"), [], {"name": "accelerate"},
                                accelerate="/S/Accelerate")  # fmt: skip
    assert [(lib.path, lib.kind, lib.found_by) for lib in libs] == [
        ("/S/Accelerate", "accelerate", "numpy's build configuration")
    ]
    default = discovery.candidates(str(tmp_path / "numpy"), [], {"name": "accelerate"})
    assert default[0].path == "/System/Library/Frameworks/Accelerate.framework/Accelerate"


def test_the_same_file_is_tried_once(tmp_path):
    lib = tmp_path / "numpy.libs" / "libscipy_openblas64_-1.so"
    lib.parent.mkdir()
    lib.write_bytes(b"")
    loaded = [{"filepath": str(lib), "internal_api": "openblas"}]
    assert len(discovery.candidates(str(tmp_path / "numpy"), loaded, {})) == 1


@pytest.mark.parametrize(
    ("kind", "relative"),
    [
        ("linux", "numpy.libs/libscipy_openblas64_-32a4b2a6.so"),
        ("windows", "numpy.libs/libscipy_openblas64_-fb1711452d4d8cee9f276fd1449ee5c7.dll"),
        ("macos-x86_64", "numpy/.dylibs/libscipy_openblas64_.dylib"),
    ],
)
def test_wheel_layouts_are_found_and_bound(kind, relative, tmp_path):
    """A copy of this machine's numpy BLAS under each platform's name and place; discovered
    with nothing loaded, and its GEMM found (in a child process, which loads the copy)."""
    source = numpy_openblas()
    site = tmp_path / "site"
    (site / "numpy").mkdir(parents=True)
    target = site / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    (site / "numpy.libs" / "README.txt").parent.mkdir(exist_ok=True)
    (site / "numpy.libs" / "README.txt").write_text("not a library")
    out = in_child(
        f"libs = discovery.candidates({str(site / 'numpy')!r}, [], {{}})\n"
        "g = discovery.find_gemm(libs[0])\n"
        "out = dict(paths=[l.path for l in libs], found_by=libs[0].found_by, sgemm=g.sgemm, "
        "bits=g.int_bits)"
    )
    assert out == {"paths": [str(target)], "found_by": "numpy's wheel layout",
                   "sgemm": "scipy_cblas_sgemm64_", "bits": 64}  # fmt: skip


# -- libraries of other vendors -------------------------------------------------------------------


@needs_numba
def test_an_mkl_style_library_is_bound_through_its_lp64_cblas(build_shim, twins, tmp_path):
    shim = build_shim("MKL", "libmkl_rt.so.2")
    out = in_child(
        f"g = discovery.find_gemm(discovery.Library({shim!r}, discovery.library_kind({shim!r}), 't'))\n"
        "out = dict(kind=g.library.kind, sgemm=g.sgemm, dgemm=g.dgemm, bits=g.int_bits)"
    )
    assert out == {"kind": "mkl", "sgemm": "cblas_sgemm", "dgemm": "cblas_dgemm", "bits": 32}
    got, info = run_sample(tmp_path, FASTDL_BLAS="cblas", FASTDL_BLAS_LIBRARY=shim)
    assert (info["provider"], info["int_bits"], info["library"]) == ("mkl", 32, shim)
    assert info["shim_calls"]["lp64"] > 0
    assert ["mkl", shim, 4] in info["threads"]  # threadpoolctl steers the stand-in's threads
    assert_matches_twins(got, twins)


def test_mkl_interface_layer_ilp64_makes_plain_cblas_64_bit(build_shim, monkeypatch):
    shim = build_shim("MKL", "libmkl_rt.so.2")
    code = (f"g = discovery.find_gemm(discovery.Library({shim!r}, 'mkl', 't'))\n"
            "out = g.int_bits")  # fmt: skip
    for layer, bits in (("LP64", 32), ("GNU,ILP64", 64)):
        monkeypatch.setenv("MKL_INTERFACE_LAYER", layer)
        assert in_child(code) == bits


@needs_numba
def test_an_accelerate_style_library_is_bound_through_its_ilp64_symbols(build_shim, twins,
                                                                        tmp_path):  # fmt: skip
    shim = build_shim("ACCELERATE", "Accelerate")
    out = in_child(
        f"libs = discovery.candidates('/nowhere/numpy', [], {{'name': 'accelerate'}}, accelerate={shim!r})\n"
        "g = discovery.find_gemm(libs[0])\n"
        "out = dict(kind=g.library.kind, sgemm=g.sgemm, bits=g.int_bits)"
    )
    assert out == {"kind": "accelerate", "sgemm": "cblas_sgemm$NEWLAPACK$ILP64", "bits": 64}
    got, info = run_sample(tmp_path, FASTDL_BLAS="cblas", FASTDL_BLAS_LIBRARY=shim)
    assert info["symbols"] == ["cblas_sgemm$NEWLAPACK$ILP64", "cblas_dgemm$NEWLAPACK$ILP64"]
    assert info["shim_calls"]["ilp64"] > 0 and info["shim_calls"]["lp64"] == 0
    assert_matches_twins(got, twins)


@needs_numba
@pytest.mark.parametrize("which", SYSTEM)
def test_debians_openblas_and_blis_are_bound_with_their_integer_width(which, twins, tmp_path):
    """A system BLAS, as a conda or distribution numpy links: Debian's LP64 and ILP64 builds
    export the same plain names, so the width comes from asking the library."""
    path = system_library(which)
    got, info = run_sample(tmp_path, FASTDL_BLAS="cblas", FASTDL_BLAS_LIBRARY=path)
    assert info["path"] == "cblas" and info["library"] == path
    assert info["symbols"] == ["cblas_sgemm", "cblas_dgemm"]
    assert info["int_bits"] == SYSTEM[which][2]
    assert info["provider"] == which.split("-")[0]
    assert any(kind == info["provider"] for kind, _, _ in info["threads"])
    assert_matches_twins(got, twins)


def test_a_system_library_loaded_in_the_process_is_a_candidate(tmp_path):
    """A numpy that links a system BLAS: threadpoolctl lists that library, and it is tried."""
    path = system_library("openblas-lp64")
    libs = discovery.candidates(str(tmp_path / "numpy"),
                                [{"filepath": path, "internal_api": "openblas"}], {})  # fmt: skip
    assert [(lib.path, lib.kind) for lib in libs] == [(path, "openblas")]


# -- what is passed over, and why ----------------------------------------------------------------


def test_files_without_a_cblas_gemm_are_passed_over_with_the_reason(tmp_path):
    libm = sorted(glob.glob("/lib/*/libm.so.6") + glob.glob("/usr/lib/*/libm.so.6"))
    if not libm:
        pytest.skip("no libm.so.6 to stand for a library without BLAS")
    junk = tmp_path / "libopenblas.so"
    junk.write_bytes(b"not an ELF file")
    good = numpy_openblas()
    found = discovery.discover([
        discovery.Library(str(junk), "openblas", "t"),
        discovery.Library(libm[0], "unknown", "t"),
        discovery.Library(good, "openblas", "t"),
    ])  # fmt: skip
    assert found.gemm is not None and found.gemm.library.path == good
    (bad, why_bad), (plain, why_plain) = found.rejected
    assert bad.path == str(junk) and why_bad  # OSError text from the loader
    assert plain.path == libm[0] and why_plain == "exports no CBLAS sgemm/dgemm under a known name"


def test_library_kind_from_threadpoolctl_or_the_file_name():
    assert discovery.library_kind("/a/libfoo.so", "blis") == "blis"
    assert discovery.library_kind("/a/mkl_rt.2.dll") == "mkl"
    assert discovery.library_kind("/a/libopenblas64_.0.dylib") == "openblas"
    assert discovery.library_kind("/S/vecLib.framework/vecLib") == "accelerate"
    assert discovery.library_kind("/a/libcblas.so.3") == "unknown"
    assert os.path.basename(discovery.ACCELERATE) == "Accelerate"
