"""Write the API reference's module pages from the code: each lists its module's ``__all__``.

The pages are generated at every build (into ``docs/api/ref/``, not kept in git), so a name
added to or removed from an ``__all__`` appears on or leaves the site without anyone editing
a page; autosummary then writes one page per name from its docstring.
"""

from __future__ import annotations

import importlib
import pkgutil
import shutil
import types
from pathlib import Path

#: The public modules, in the order of the reference's table of contents (fastdl.book's
#: submodules are found by walking the package).
MODULES = [
    "fastdl",
    "fastdl.config",
    "fastdl.datasets",
    "fastdl.callbacks",
    "fastdl.schedules",
    "fastdl.augment",
    "fastdl.testing",
    "fastdl.autodiff",
    "fastdl.distributed",
    "fastdl.interop.torch",
    "fastdl.onnx",
    "fastdl.book",
]


def public_modules() -> list[str]:
    """:data:`MODULES` with every public submodule of :mod:`fastdl.book` after it."""
    import fastdl.book

    book = sorted(
        info.name
        for info in pkgutil.walk_packages(fastdl.book.__path__, "fastdl.book.")
        if not any(part.startswith("_") for part in info.name.split("."))
    )
    return MODULES + book


def public_names(module: types.ModuleType) -> list[str]:
    """The module's ``__all__``; for a module without one (a package of submodules), []."""
    return list(getattr(module, "__all__", []))


def _page(name: str, all_modules: list[str], first_home: dict[int, str]) -> str:
    """The page of module ``name``. A class or function already documented under another
    public name (``fastdl.callbacks.Callback`` is ``fastdl.Callback``) is listed with a link
    to that page rather than documented twice; ``first_home`` maps ``id(obj)`` to that name."""
    module = importlib.import_module(name)
    names = public_names(module)
    submodules = [n for n in names if isinstance(getattr(module, n), types.ModuleType)]
    objects, aliases = [], []
    for n in names:
        if n in submodules:
            continue
        obj = getattr(module, n)
        home = first_home.get(id(obj)) if isinstance(obj, (type, types.FunctionType)) else None
        if home is None:
            objects.append(n)
            if isinstance(obj, (type, types.FunctionType)):
                first_home[id(obj)] = f"{name}.{n}"
        else:
            aliases.append((n, home))
    children = [m for m in all_modules if m.rpartition(".")[0] == name]
    lines = [
        f"``{name}``",
        "=" * (len(name) + 4),
        "",
        f".. automodule:: {name}",
        "   :no-members:",
        "",
    ]
    if objects:
        lines += [
            ".. rubric:: Public names (its ``__all__``)",
            "",
            f".. currentmodule:: {name}",
            "",
            ".. autosummary::",
            "   :toctree: ../generated/",
            "   :nosignatures:",
            "",
            *[f"   {n}" for n in objects],
            "",
        ]
    if aliases:
        lines += [
            ".. rubric:: Also here (the same objects, documented under their first public name)",
            "",
            *[f"- ``{name}.{n}``: :doc:`{home} <../generated/{home}>`" for n, home in aliases],
            "",
        ]
    linked = [f"{name}.{n}" for n in submodules] + children
    if linked:
        lines += [".. rubric:: Modules", "", *[f"- :doc:`{m}`" for m in linked], ""]
    return "\n".join(lines)


def write_reference(out: Path) -> list[str]:
    """Write ``out/<module>.rst`` for every public module (``api/index.rst`` lists them).

    ``out`` and autosummary's ``generated/`` beside it are emptied first: a name that left an
    ``__all__`` must not keep its page.
    """
    modules = public_modules()
    for stale in (out, out.parent / "generated"):
        if stale.exists():
            shutil.rmtree(stale)
    out.mkdir(parents=True)
    first_home: dict[int, str] = {}
    for name in modules:
        (out / f"{name}.rst").write_text(_page(name, modules, first_home), encoding="utf-8")
    return modules
