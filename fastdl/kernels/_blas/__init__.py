"""BLAS for the compiled kernels: which library, which path, and its thread count.

The compiled kernels multiply matrices with :func:`gemm` (see :mod:`.compiled`). Where that
GEMM's work is done is the *BLAS path*, one of :data:`fastdl.config.BLAS_PATHS`:

``cblas``
    The CBLAS ``sgemm``/``dgemm`` of numpy's own BLAS library, found by :mod:`.discovery`
    (OpenBLAS, MKL, BLIS, Accelerate; on Linux, macOS and Windows), or of the library named
    by ``FASTDL_BLAS_LIBRARY``.
``scipy``
    SciPy's BLAS (``scipy.linalg.cython_blas``, which numba's ``np.dot`` also calls), when
    SciPy is installed.
``numpy``
    The kernels that multiply matrices run in compiled stages with each product done by
    numpy's ``matmul`` from Python in between (whatever BLAS numpy has). Their ``_st`` twins
    (see :func:`fastdl.kernels._jit.pair`).
``loops``
    Compiled loop GEMMs: for a machine where numpy has no BLAS at all. 4–9× slower.

``FASTDL_BLAS=auto`` (the default) takes the first of these that exists, and warns when that
is ``loops``; any other value forces that path (an error if it cannot run here).
``config.use_blas(path)`` switches for a block. :func:`info` says what was found and which
path runs; ``fastdl info`` prints it.
"""

from __future__ import annotations

import importlib.util
import os
import warnings

import numpy as np

from fastdl import config
from fastdl.kernels._blas import discovery, threads
from fastdl.kernels._blas.threads import (
    blas_threads,
    get_blas_threads,
    serial_blas,
    set_blas_threads,
)
from fastdl.kernels._jit import numba

__all__ = [
    "gemm",
    "info",
    "format_info",
    "available_paths",
    "blas_threads",
    "get_blas_threads",
    "set_blas_threads",
    "serial_blas",
]

if numba is not None:
    from fastdl.kernels._blas import compiled
    from fastdl.kernels._blas.compiled import gemm
else:  # FASTDL_PURE=1: nothing is compiled, nothing calls gemm
    compiled = gemm = None

FOUND = discovery.discover(
    discovery.candidates(
        numpy_dir=os.path.dirname(np.__file__),
        loaded=discovery.loaded_blas(),
        numpy_blas=discovery.numpy_blas_config(),
        explicit=os.environ.get("FASTDL_BLAS_LIBRARY", "").strip() or None,
    )
)
threads.refresh()


def _scipy_fortran_gemm() -> tuple[int, int] | None:
    """Addresses of SciPy's Fortran ``sgemm``/``dgemm``, or None without SciPy."""
    try:
        from scipy.linalg import cython_blas
    except ImportError:
        return None
    import ctypes

    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    capsules = [cython_blas.__pyx_capi__[name] for name in ("sgemm", "dgemm")]
    threads.refresh()  # SciPy brought its own BLAS library: steer its threads too
    return tuple(get_pointer(c, get_name(c)) for c in capsules)


_SCIPY: list = []  # [addresses or None], looked up once


def _scipy() -> tuple[int, int] | None:
    if not _SCIPY:
        _SCIPY.append(_scipy_fortran_gemm())
    return _SCIPY[0]


def _numpy_has_blas() -> bool:
    record = discovery.numpy_blas_config()
    return FOUND.gemm is not None or bool(record.get("found", bool(record)))


def available_paths() -> list[str]:
    """The BLAS paths that can run in this process, fastest first."""
    paths = []
    if FOUND.gemm is not None:
        paths.append("cblas")
    if importlib.util.find_spec("scipy") is not None:  # imported only when chosen
        paths.append("scipy")
    if _numpy_has_blas():
        paths.append("numpy")
    return paths + ["loops"]


def _point_slots(path: str) -> None:
    """Point the compiled GEMM at the library of ``path`` (``numpy``: the best compiled one,
    for kernels called directly rather than through their ``_st`` twins)."""
    if path == "numpy":
        compiled_paths = [p for p in available_paths() if p != "numpy"]
        path = compiled_paths[0]
    if path == "cblas":
        found = FOUND.gemm
        if found.int_bits == 64:
            s, d = found.sgemm_address, found.dgemm_address
        else:
            compiled.point("fastdl_lp64_sgemm_slot", found.sgemm_address)
            compiled.point("fastdl_lp64_dgemm_slot", found.dgemm_address)
            s, d = compiled.lp64_targets()
    elif path == "scipy":
        f_s, f_d = _scipy()
        compiled.point("fastdl_f77_sgemm_slot", f_s)
        compiled.point("fastdl_f77_dgemm_slot", f_d)
        s, d = compiled.fortran_targets()
    else:
        s, d = compiled.loop_targets()
    compiled.point("fastdl_sgemm_slot", s)
    compiled.point("fastdl_dgemm_slot", d)


def _why_not(path: str) -> str:
    if path == "cblas":
        looked = "; ".join(f"{lib.path}: {why}" for lib, why in FOUND.rejected) or "nothing found"
        return f"no CBLAS library with sgemm/dgemm was found ({looked})"
    if path == "scipy":
        return "SciPy is not installed (pip install scipy)"
    return "numpy was built without a BLAS library"


def _switch(requested: str) -> str:
    """``config``'s hook: resolve ``auto``, check the path can run, point the GEMM at it."""
    paths = available_paths()
    path = paths[0] if requested == "auto" else requested
    if path not in paths:
        raise RuntimeError(f"FASTDL_BLAS={requested}: cannot run here: {_why_not(path)}")
    if requested == "auto" and path == "loops":
        warnings.warn(
            "fastdl: no BLAS library found, so matrix products run as compiled loops "
            "(4-9x slower). Install numpy from PyPI's wheels (they bring OpenBLAS) or SciPy; "
            "`fastdl info` shows what was looked for.",
            RuntimeWarning,
            stacklevel=2,
        )
    if compiled is not None:
        _point_slots(path)
    return path


def info() -> dict:
    """What fastdl found and uses for matrix products (``fastdl info`` prints it).

    Returns
    -------
    dict
        ``path`` (the BLAS path in use, or ``"pure"`` under ``FASTDL_PURE=1``),
        ``requested`` (``FASTDL_BLAS``), ``available`` (paths that can run here),
        ``provider``/``library``/``version``/``found_by`` (the CBLAS library, or None),
        ``symbols`` and ``int_bits`` (what is bound), ``numpy_blas`` (numpy's build record),
        ``threads`` (``(kind, file, threads)`` of each BLAS whose threads fastdl steers) and
        ``rejected`` (``(file, reason)`` of each library passed over).
    """
    found = FOUND.gemm
    record = discovery.numpy_blas_config()
    return {
        "path": "pure" if config.pure() else config.blas_path(),
        "requested": config.BLAS_REQUESTED,
        "available": available_paths(),
        "provider": found.library.kind if found else None,
        "library": found.library.path if found else None,
        "version": found.library.version if found else None,
        "found_by": found.library.found_by if found else None,
        "symbols": (found.sgemm, found.dgemm) if found else None,
        "int_bits": found.int_bits if found else None,
        "numpy_blas": " ".join(str(record.get(k, "")) for k in ("name", "version")).strip(),
        "threads": threads.controlled(),
        "rejected": [(lib.path, why) for lib, why in FOUND.rejected],
    }


_PATH_TEXT = {
    "cblas": "compiled kernels call the CBLAS GEMM of the library above",
    "scipy": "compiled kernels call SciPy's BLAS (scipy.linalg.cython_blas)",
    "numpy": "compiled stages, with every matrix product done by numpy's matmul in between",
    "loops": "compiled LOOP GEMMS: no BLAS in use, 4-9x slower than with one",
    "pure": "FASTDL_PURE=1: the NumPy twins, products by numpy's matmul",
}


def format_info(report: dict | None = None) -> str:
    """:func:`info` as the lines ``fastdl info`` prints."""
    r = info() if report is None else report
    lines = [f"BLAS path      {r['path']} ({_PATH_TEXT[r['path']]})"]
    lines.append(
        f"  requested    FASTDL_BLAS={r['requested']}; can run here: {', '.join(r['available'])}"
    )
    if r["library"]:
        lines.append(f"  library      {r['provider']} {r['version'] or ''} {r['library']}".rstrip())
        lines.append(f"  found by     {r['found_by']}")
        lines.append(
            f"  symbols      {r['symbols'][0]} / {r['symbols'][1]} ({r['int_bits']}-bit integers)"
        )
    else:
        lines.append("  library      none found with a CBLAS sgemm/dgemm")
    lines.append(f"  numpy's BLAS {r['numpy_blas'] or 'none recorded'}")
    for kind, path, n in r["threads"]:
        lines.append(f"  threads      {kind} {path}: {n} (held to 1 inside fastdl's kernels)")
    if not r["threads"]:
        lines.append("  threads      no steerable BLAS (Accelerate, or threadpoolctl missing)")
    for path, why in r["rejected"]:
        lines.append(f"  passed over  {path}: {why}")
    if r["path"] == "loops":
        lines.append(
            "  WARNING      matrix products run as loops; install numpy's PyPI wheels or SciPy"
        )
    return "\n".join(lines)


config.on_blas_changed(_switch)
# One thread pool at a time: inside every network pass the BLAS runs on one thread. With numba,
# fastdl's threads do the parallel work and call BLAS single-threaded (the BLAS's workers spin
# after each call, and on a small machine letting them take turns with fastdl's halves the
# speed). On the NumPy twins too: multi-threaded OpenBLAS synchronises its threads once per
# block of the inner dimension, and when another process holds a core each synchronisation
# can wait a scheduler tick.
config.on_compute(serial_blas)
