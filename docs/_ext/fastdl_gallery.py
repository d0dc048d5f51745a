"""The gallery: ``examples/`` run in their ``--smoke`` mode by sphinx-gallery at build time.

- :func:`copy_examples` copies ``examples/*.py`` and ``examples/book/*.py`` (fresh at every
  build) beside the gallery headers, heads each copy's docstring with the script's path as
  its title, and adds right after the docstring one text cell that names the command the
  build ran and the command of the full run;
- :func:`reset_argv` gives each script its ``--smoke`` flags (and a folder for its
  pictures), and the ``__doc__`` and ``__file__`` of the script in ``examples/``
  (sphinx-gallery runs the code without them);
- :func:`reset_pictures` runs before and after each script (``sys.exit(0)`` must not end
  the build);
- :func:`picture_scraper` puts the PNGs a script wrote into that folder on its page (the
  examples save their figures with ``savefig`` and close them, so matplotlib's own scraper,
  which is kept too, sees nothing of theirs).
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
#: Where the scripts' pictures go while the gallery is built (one folder per script).
PICTURES = DOCS / "_build" / "gallery_pictures"

#: The script in ``examples/`` of each gallery copy (filled by :func:`copy_examples`).
ORIGINALS: dict[str, Path] = {}

#: Extra flags per script beyond ``--smoke``: ``{dir}`` is the script's picture folder. A
#: script not listed here gets ``--smoke`` alone.
EXTRA_FLAGS = {
    "autoencoder.py": ["--pictures", "{dir}", "--plot", "{dir}/training_curves.png"],
    "book_cnn.py": ["--plot", "{dir}/training_curves.png"],
    "char_lstm.py": ["--plot", "{dir}/training_curves.png"],
    "cnn_pictures.py": ["--out", "{dir}"],
    "mnist_cnn.py": ["--plot", "{dir}/training_curves.png"],
    "mnist_mlp.py": ["--plot", "{dir}/training_curves.png"],
    "regression.py": ["--plot", "{dir}/training_curves.png"],
    "ch6.py": ["--picture", "{dir}/ch6.png"],
}


def _key(src_file: str | Path) -> str:
    """``mnist_cnn`` or ``book-ch3``: the picture folder's name of a gallery script."""
    path = Path(src_file)
    return f"{path.parent.name}-{path.stem}" if path.parent.name == "book" else path.stem


def smoke_argv(src_file: str | Path) -> list[str]:
    """The arguments the build gives ``src_file`` (after its name)."""
    folder = PICTURES / _key(src_file)
    extra = EXTRA_FLAGS.get(Path(src_file).name, [])
    return ["--smoke", *(a.format(dir=folder) for a in extra)]


def reset_argv(gallery_conf, script_vars) -> list[str]:
    """sphinx-gallery's ``reset_argv``: the script's ``--smoke`` command line.

    It also gives the script the ``__doc__`` and ``__file__`` of the file in ``examples/``:
    sphinx-gallery runs the code with neither (the docstring is the page's text), and the
    scripts read both (argparse descriptions, their own folder).
    """
    original = ORIGINALS[str(Path(script_vars["src_file"]).resolve())]
    script_vars["example_globals"]["__file__"] = str(original)
    script_vars["example_globals"]["__doc__"] = ast.get_docstring(
        ast.parse(original.read_text(encoding="utf-8")), clean=False
    )
    folder = PICTURES / _key(script_vars["src_file"])
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return smoke_argv(script_vars["src_file"])


def _shown_command(rel: str, src: Path) -> str:
    args = " ".join(a.replace(str(PICTURES / _key(src)), "PICTURES") for a in smoke_argv(src))
    return f"python examples/{rel} {args}"


def _with_run_cell(source: str, rel: str, src: Path) -> str:
    """``source`` with a text cell after its docstring naming the build's and the full run."""
    tree = ast.parse(source)
    first = tree.body[0] if tree.body else None
    if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)):
        raise ValueError(f"examples/{rel}: a gallery script needs a module docstring")
    lines = source.splitlines(keepends=True)
    end = first.end_lineno
    for node in tree.body[1:]:  # after ``from __future__`` imports, which must come first
        if not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            break
        end = node.end_lineno
    cell = [
        "\n",
        "# %%\n",
        f"# This page ran ``{_shown_command(rel, src)}`` when the documentation was built;\n",
        "# the output and pictures below are that run's (``PICTURES`` is a folder of the\n",
        f"# build). The full run is ``python examples/{rel}`` (``--help`` lists its flags).\n",
        "\n",
    ]
    head = "".join(lines[:end])
    # the page's title: the script's path under examples/ (sphinx-gallery wants a heading)
    opening = min(i for i in (head.find('"""'), head.find("'''")) if i >= 0) + 3
    title = rel
    head = f"{head[:opening]}{title}\n{'=' * len(title)}\n\n{head[opening:].lstrip()}"
    return head + "".join(cell) + "".join(lines[end:])


def copy_examples(examples: Path, headers: Path, out: Path) -> Path:
    """Copy the examples and the gallery headers into ``out`` (emptied first); return it."""
    if out.exists():
        shutil.rmtree(out)
    for sub in ("", "book"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(headers / sub / "GALLERY_HEADER.rst", out / sub / "GALLERY_HEADER.rst")
        for src in sorted((examples / sub).glob("*.py")):
            rel = f"{sub}/{src.name}" if sub else src.name
            text = src.read_text(encoding="utf-8")
            if not src.name.startswith("_"):
                text = _with_run_cell(text, rel, out / sub / src.name)
            ORIGINALS[str((out / sub / src.name).resolve())] = src.resolve()
            (out / sub / src.name).write_text(text, encoding="utf-8")
    return out


_shown: dict[str, set[str]] = {}
_real_exit = sys.exit


class ExampleExit(Exception):
    """A script called ``sys.exit`` with a failure status (the gallery then fails)."""


def _exit(status=None):
    """``sys.exit`` while a script runs in the gallery's process: success returns (a script
    ending in ``sys.exit(main())`` would otherwise end Sphinx itself), failure raises."""
    if status not in (None, 0):
        raise ExampleExit(f"the script exited with status {status!r}")


def reset_pictures(gallery_conf, fname, when="before") -> None:
    """Before each script: no picture shown yet, and ``sys.exit`` guarded; after: restored."""
    _shown.clear()
    sys.exit = _exit if when == "before" else _real_exit


def picture_scraper(block, block_vars, gallery_conf) -> str:
    """The PNGs the script wrote into its picture folder since the last block, as images."""
    from sphinx_gallery.scrapers import figure_rst

    folder = PICTURES / _key(block_vars["src_file"])
    seen = _shown.setdefault(str(folder), set())
    new = sorted(p for p in folder.rglob("*.png") if str(p) not in seen) if folder.exists() else []
    images = []
    for path, target in zip(new, block_vars["image_path_iterator"], strict=False):
        shutil.copy(path, target)
        seen.add(str(path))
        images.append(target)
    return figure_rst(images, gallery_conf["src_dir"])
