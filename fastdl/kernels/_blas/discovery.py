"""Find the BLAS library numpy uses and the CBLAS GEMM symbols it exports (ctypes, no numba).

Where numpy's BLAS lives depends on how numpy was built:

=========================  ===================================================  ============
numpy build                library                                              GEMM symbol
=========================  ===================================================  ============
Linux wheel (PyPI)         ``site-packages/numpy.libs/libscipy_openblas64_*.so``  ``scipy_cblas_sgemm64_``
Windows wheel              ``site-packages/numpy.libs/libscipy_openblas64_*.dll`` ``scipy_cblas_sgemm64_``
macOS x86_64 wheel         ``site-packages/numpy/.dylibs/libscipy_openblas64_*.dylib``
                                                                                ``scipy_cblas_sgemm64_``
macOS arm64 wheel          Accelerate (``/System/Library/Frameworks/...``)      ``cblas_sgemm$NEWLAPACK$ILP64``
conda, Linux distributions MKL (``libmkl_rt``), OpenBLAS or BLIS beside Python  ``cblas_sgemm``
=========================  ===================================================  ============

Places looked in, in order (the first library that exports both ``sgemm`` and ``dgemm`` under
a known name wins; :func:`discover` reports why each other one was passed over):

1. ``FASTDL_BLAS_LIBRARY``, a file named by the user (then nothing else);
2. the BLAS libraries loaded in this process, as threadpoolctl lists them (it reads the
   process's own list of loaded libraries on Linux, macOS and Windows), numpy's own first;
3. numpy's build configuration (``numpy.show_config``): Accelerate, which threadpoolctl
   does not list;
4. the wheel layouts of the table, relative to numpy's folder.

The integer width of the CBLAS interface (LP64: 32-bit ``int``; ILP64: 64-bit) is fixed by
the symbol where its name says it (``…64_``, ``$ILP64``, MKL's ``_64``); for a plain
``cblas_sgemm`` the library is asked: OpenBLAS's ``openblas_get_config()`` names
``USE64BITINT``, BLIS's ``bli_info_get_blas_int_type_size()`` answers, and MKL's runtime
library is LP64 unless ``MKL_INTERFACE_LAYER`` asks for ILP64. (Debian's ``libopenblas64``
and ``libblis64`` export ILP64 functions under the plain names, so the name alone is not
enough.)
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from dataclasses import dataclass, field

__all__ = [
    "Library",
    "CblasGemm",
    "Discovery",
    "SYMBOLS",
    "ACCELERATE",
    "candidates",
    "find_gemm",
    "discover",
    "loaded_blas",
    "numpy_blas_config",
    "library_kind",
]

#: Accelerate's umbrella framework on macOS (numpy's arm64 wheels link it).
ACCELERATE = "/System/Library/Frameworks/Accelerate.framework/Accelerate"

#: (sgemm symbol, dgemm symbol, integer bits or None to ask the library), first match wins.
SYMBOLS: list[tuple[str, str, int | None]] = [
    ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", 64),  # numpy's OpenBLAS wheels
    ("cblas_sgemm64_", "cblas_dgemm64_", 64),  # OpenBLAS built with SYMBOLSUFFIX=64_
    ("cblas_sgemm$NEWLAPACK$ILP64", "cblas_dgemm$NEWLAPACK$ILP64", 64),  # Accelerate, macOS 13.3+
    ("cblas_sgemm_64", "cblas_dgemm_64", 64),  # MKL 2023+ ILP64 entry points
    ("scipy_cblas_sgemm", "scipy_cblas_dgemm", 32),  # SciPy's OpenBLAS wheels
    ("cblas_sgemm", "cblas_dgemm", None),  # MKL, system OpenBLAS / BLIS, Accelerate (LP64)
]

_KINDS = (
    ("openblas", "openblas"),
    ("mkl", "mkl"),
    ("blis", "blis"),
    ("flexiblas", "flexiblas"),
    ("accelerate", "accelerate"),
    ("veclib", "accelerate"),
)


@dataclass(frozen=True)
class Library:
    """A candidate BLAS library file.

    Attributes
    ----------
    path : str
    kind : str
        ``"openblas"``, ``"mkl"``, ``"blis"``, ``"flexiblas"``, ``"accelerate"`` or ``"unknown"``.
    found_by : str
        Which place of the module docstring's list named it.
    version : str
        As threadpoolctl reports it ("" when unknown).
    """

    path: str
    kind: str
    found_by: str
    version: str = ""


@dataclass(frozen=True)
class CblasGemm:
    """The CBLAS ``sgemm``/``dgemm`` of a library: their names, addresses and integer width."""

    library: Library
    sgemm: str
    dgemm: str
    int_bits: int
    sgemm_address: int
    dgemm_address: int


@dataclass
class Discovery:
    """What :func:`discover` found: the GEMM to bind (or None) and every library passed over."""

    gemm: CblasGemm | None
    rejected: list[tuple[Library, str]] = field(default_factory=list)


def library_kind(path: str, internal_api: str = "") -> str:
    """The BLAS family of a library file, from threadpoolctl's name for it or the file name."""
    if internal_api in {kind for _, kind in _KINDS}:
        return internal_api
    name = os.path.basename(path).lower()
    for needle, kind in _KINDS:
        if needle in name:
            return kind
    return "unknown"


def loaded_blas() -> list[dict]:
    """threadpoolctl's records of the BLAS libraries loaded in this process ([] without it)."""
    try:
        import threadpoolctl
    except ImportError:
        return []
    return [info for info in threadpoolctl.threadpool_info() if info.get("user_api") == "blas"]


def numpy_blas_config() -> dict:
    """numpy's build record of its BLAS (name, version, ...); {} where numpy has none."""
    import numpy as np

    try:
        return dict(np.show_config(mode="dicts")["Build Dependencies"]["blas"])
    except Exception:  # older numpy, or a build without the record
        return {}


def _layout_files(numpy_dir: str) -> list[str]:
    """BLAS files in the places numpy's wheels put them (see the module docstring's table)."""
    found = []
    for folder, patterns in (
        (os.path.join(os.path.dirname(numpy_dir), "numpy.libs"), ("*.so", "*.so.*", "*.dll")),
        (os.path.join(numpy_dir, ".dylibs"), ("*.dylib",)),
    ):
        for pattern in patterns:
            found += glob.glob(os.path.join(folder, pattern))
    return sorted({f for f in found if "blas" in os.path.basename(f).lower()})


def _inside(path: str, folders: list[str]) -> bool:
    path = os.path.realpath(path)
    return any(path.startswith(os.path.realpath(f) + os.sep) for f in folders)


def candidates(
    numpy_dir: str,
    loaded: list[dict],
    numpy_blas: dict,
    explicit: str | None = None,
    accelerate: str = ACCELERATE,
) -> list[Library]:
    """Candidate libraries, best first (see the module docstring for the order).

    Parameters
    ----------
    numpy_dir : str
        numpy's package folder (``os.path.dirname(numpy.__file__)``).
    loaded : list of dict
        threadpoolctl's records (``filepath``, ``internal_api``, ``version``) of loaded BLAS.
    numpy_blas : dict
        numpy's build record of its BLAS (``name``, ...), as :func:`numpy_blas_config` gives.
    explicit : str, optional
        ``FASTDL_BLAS_LIBRARY``: when given, the only candidate.
    accelerate : str
        Where Accelerate is (a parameter so tests can point it elsewhere).
    """
    if explicit:
        return [Library(explicit, library_kind(explicit), "FASTDL_BLAS_LIBRARY")]
    own = [numpy_dir, os.path.join(os.path.dirname(numpy_dir), "numpy.libs")]
    records = sorted(loaded, key=lambda info: not _inside(info.get("filepath", ""), own))
    found = [
        Library(
            info["filepath"],
            library_kind(info["filepath"], info.get("internal_api", "")),
            "loaded in this process (threadpoolctl)",
            str(info.get("version") or ""),
        )
        for info in records
        if info.get("filepath")
    ]
    if str(numpy_blas.get("name", "")).lower() == "accelerate":
        found.append(
            Library(accelerate, "accelerate", "numpy's build configuration",
                    str(numpy_blas.get("version", "")))
        )  # fmt: skip
    found += [Library(f, library_kind(f), "numpy's wheel layout") for f in _layout_files(numpy_dir)]
    unique, seen = [], set()
    for lib in found:
        key = os.path.realpath(lib.path)
        if key not in seen:
            seen.add(key)
            unique.append(lib)
    return unique


def _load(path: str) -> ctypes.CDLL:
    if sys.platform == "win32":
        return ctypes.CDLL(path, winmode=0)
    return ctypes.CDLL(path)


def _symbol(lib: ctypes.CDLL, name: str):
    try:
        return lib[name]
    except AttributeError:
        return None


def _plain_cblas_bits(lib: ctypes.CDLL, path: str, kind: str) -> int:
    """Integer width of a library's plain ``cblas_sgemm`` (see the module docstring)."""

    def own_symbol(name):
        fn = _symbol(lib, name)
        return fn if fn is not None and _own(path, ctypes.cast(fn, ctypes.c_void_p).value) else None

    config = own_symbol("openblas_get_config")
    if config is not None:
        config.restype = ctypes.c_char_p
        return 64 if b"USE64BITINT" in (config() or b"") else 32
    size = own_symbol("bli_info_get_blas_int_type_size")
    if size is not None:
        size.restype = ctypes.c_int32  # a gint_t (32 or 64 bits): its value fits in the low half
        return 64 if size() == 64 else 32
    if kind == "mkl" and "ILP64" in os.environ.get("MKL_INTERFACE_LAYER", "").upper():
        return 64
    return 32


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]  # fmt: skip


def _file_of(address: int) -> str | None:
    """The file that defines the code at ``address`` (``dladdr``; None where unknown)."""
    if sys.platform == "win32":  # GetProcAddress looks in the module itself only
        return None
    try:
        dladdr = ctypes.CDLL(None).dladdr
    except (OSError, AttributeError):
        return None
    dladdr.argtypes, dladdr.restype = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)], ctypes.c_int
    info = _DlInfo()
    if not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return None
    return os.fsdecode(info.dli_fname)


def _own(path: str, address: int) -> bool:
    """True unless ``address`` is known to lie in another file than ``path``."""
    where = _file_of(address)
    return where is None or os.path.realpath(where) == os.path.realpath(path)


def find_gemm(library: Library) -> CblasGemm:
    """Load ``library`` and return its CBLAS GEMM entry points.

    A symbol lookup also finds the symbols of the libraries a file depends on, so the pairs
    of :data:`SYMBOLS` that the file defines itself come first; re-exported ones (Accelerate's
    umbrella framework re-exports vecLib's) are taken only when it defines none.

    Raises
    ------
    OSError
        The file cannot be loaded.
    LookupError
        It exports none of the symbol pairs of :data:`SYMBOLS`.
    """
    lib = _load(library.path)
    pairs = []
    for s_name, d_name, bits in SYMBOLS:
        s_fn, d_fn = _symbol(lib, s_name), _symbol(lib, d_name)
        if s_fn is not None and d_fn is not None:
            own = _own(library.path, ctypes.cast(s_fn, ctypes.c_void_p).value)
            pairs.append((not own, s_name, d_name, bits, s_fn, d_fn))
    for _, s_name, d_name, bits, s_fn, d_fn in sorted(pairs, key=lambda p: p[0]):
        return CblasGemm(
            library=library,
            sgemm=s_name,
            dgemm=d_name,
            int_bits=bits
            if bits is not None
            else _plain_cblas_bits(lib, library.path, library.kind),
            sgemm_address=ctypes.cast(s_fn, ctypes.c_void_p).value,
            dgemm_address=ctypes.cast(d_fn, ctypes.c_void_p).value,
        )
    raise LookupError("exports no CBLAS sgemm/dgemm under a known name")


def discover(libraries: list[Library]) -> Discovery:
    """The first of ``libraries`` with a CBLAS GEMM, and why each one before it was not."""
    result = Discovery(gemm=None)
    for library in libraries:
        try:
            result.gemm = find_gemm(library)
            return result
        except (OSError, LookupError) as err:
            result.rejected.append((library, str(err)))
    return result
