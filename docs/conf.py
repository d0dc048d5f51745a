"""Sphinx configuration of fastdl's documentation (``make docs``; warnings are errors).

Three things are generated here at every build, so that no page can drift from the code:

- ``api/ref/*.rst``: one page per public module, listing exactly its ``__all__``
  (:mod:`fastdl_api` in ``docs/_ext``); autosummary then writes one page per name;
- ``_gallery_src/``: a fresh copy of ``examples/*.py`` and ``examples/book/*.py`` with the
  gallery headers of ``docs/gallery_headers/`` (sphinx-gallery wants a header file beside
  the scripts, and ``examples/`` is not the documentation's to write into); the scripts run
  in their ``--smoke`` mode (:func:`fastdl_gallery.reset_argv`);
- the "How it works" pages run ``fastdl.testing.gradcheck`` and draw their diagrams with
  matplotlib while they are built.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

os.environ.setdefault("FASTDL_PROGRESS", "0")  # no progress bars in captured output
os.environ.setdefault("MPLBACKEND", "Agg")

import fastdl_api  # noqa: E402
import fastdl_gallery  # noqa: E402

import fastdl  # noqa: E402

project = "fastdl"
author = "fastdl contributors"
copyright = "fastdl contributors"  # noqa: A001
release = fastdl.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    # The torch modules of fastdl.interop.torch follow PyTorch's docstring convention (Args:,
    # Shape:, Examples:); napoleon reads those, numpydoc (after it) the numpydoc ones.
    "sphinx.ext.napoleon",
    "numpydoc",
    "matplotlib.sphinxext.plot_directive",
    "sphinx_gallery.gen_gallery",
    "sphinx-mathjax-offline",  # MathJax 3 copied into _static/mathjax: no CDN
    "myst_parser",  # the guides include sections of README.md (one copy of each text)
    "fastdl_docs",
    "fastdl_sections",
]

exclude_patterns = [
    "_build",
    "_gallery_src",
    "gallery_headers",
    "**/GALLERY_HEADER.rst",
    "gallery/**.codeobj.json",
]
templates_path = ["_templates"]
source_suffix = {".rst": "restructuredtext"}  # Markdown only through include (README.md)
html_theme = "furo"
html_title = f"fastdl {release}"
html_static_path: list[str] = []
html_copy_source = False
html_show_sourcelink = False

# -- API reference ------------------------------------------------------------------------
fastdl_api.write_reference(DOCS / "api" / "ref")
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
napoleon_google_docstring = True
napoleon_numpy_docstring = False  # numpydoc's
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- maths and plots ----------------------------------------------------------------------
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.autolayout": False}

# -- gallery ------------------------------------------------------------------------------
GALLERY_SRC = fastdl_gallery.copy_examples(
    ROOT / "examples", DOCS / "gallery_headers", DOCS / "_gallery_src"
)
sphinx_gallery_conf = {
    "examples_dirs": [str(GALLERY_SRC)],
    "gallery_dirs": ["gallery"],
    "filename_pattern": r"/[^_][^/]*\.py$",  # every example runs; helpers (_mnist.py) do not
    "ignore_pattern": r"(^|/)_[^/]*\.py$",
    "reset_argv": "fastdl_gallery.reset_argv",
    "image_scrapers": ("fastdl_gallery.picture_scraper", "matplotlib"),
    "reset_modules": ("fastdl_gallery.reset_pictures", "matplotlib"),
    "reset_modules_order": "both",  # sys.exit is guarded during a script, restored after
    "download_all_examples": False,
    # its execution-time pages load jQuery and DataTables from CDNs: not written (each
    # example page states its own running time)
    "write_computation_times": False,
    "show_signature": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
    "only_warn_on_example_error": False,
    "plot_gallery": "True",
}
