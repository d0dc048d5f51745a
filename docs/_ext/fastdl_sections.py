"""Sections numpydoc does not know, kept; numpydoc's Python warnings made Sphinx warnings.

fastdl's layers document their shapes in a ``Shape`` section (as PyTorch's modules do), and
``fastdl.onnx.export`` has sections of its own; numpydoc drops a section it does not know,
with a Python warning only. :func:`pull_sections` (before numpydoc) takes such sections out
of the docstring and :func:`put_sections` (after it) puts them back as a rubric and their
text, before the parameters. numpydoc's other Python warnings become Sphinx warnings, so
``-W`` fails the build on them.
"""

from __future__ import annotations

import re
import warnings

_HEADER = re.compile(r"^([A-Za-z][A-Za-z ]*)$")
_pulled: dict[tuple[str, str], list[list[str]]] = {}


def _known_sections() -> set[str]:
    from numpydoc.docscrape import NumpyDocString

    return set(NumpyDocString.sections)


def _section_starts(lines: list[str]) -> list[int]:
    """Indices of numpydoc section headers: a title line underlined by as many dashes."""
    return [
        i
        for i in range(len(lines) - 1)
        if _HEADER.match(lines[i].strip())
        and lines[i + 1].strip() == "-" * len(lines[i].strip())
        and lines[i].strip() == lines[i]
    ]


def _title(header: str) -> str:
    return " ".join(word.capitalize() for word in header.strip().split(" "))


def pull_sections(app, what, name, obj, options, lines) -> None:
    """Before numpydoc: take out the sections it would drop (``Shape``, ...)."""
    if what == "module":
        return
    known = _known_sections()
    starts = _section_starts(lines)
    pulled = []
    for k in reversed(range(len(starts))):
        i = starts[k]
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        if _title(lines[i]) in known:
            continue
        body = lines[i + 2 : end]
        while body and not body[-1].strip():
            body.pop()
        pulled.insert(0, [f".. rubric:: {lines[i].strip()}", "", *body, ""])
        del lines[i:end]
    if pulled:
        _pulled[(what, name)] = pulled


def put_sections(app, what, name, obj, options, lines) -> None:
    """After numpydoc: the pulled sections, before the first field list (parameters)."""
    pulled = _pulled.pop((what, name), None)
    if not pulled:
        return
    at = next((i for i, line in enumerate(lines) if line.startswith(":")), len(lines))
    block = [line for section in pulled for line in section]
    lines[at:at] = ["", *block]


def _numpydoc_warnings_to_sphinx() -> None:
    from sphinx.util import logging

    logger = logging.getLogger("fastdl_docs")
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if "numpydoc" in str(filename):
            if str(message).startswith("Unknown section"):
                # numpydoc also parses the raw __doc__ for signatures (and warns there); the
                # page's text went through pull_sections / put_sections, which keep them.
                return
            logger.warning("numpydoc: %s", message, type="fastdl", subtype="numpydoc")
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    warnings.filterwarnings("always", category=UserWarning, module="numpydoc")


def setup(app):
    app.connect("autodoc-process-docstring", pull_sections, priority=100)
    app.connect("autodoc-process-docstring", put_sections, priority=900)
    _numpydoc_warnings_to_sphinx()
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
