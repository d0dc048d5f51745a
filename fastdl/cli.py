"""The ``fastdl`` console command: ``fastdl info`` and ``fastdl train MODEL [options]``.

``fastdl info`` prints the versions, the thread count, whether the compiled kernels or the
NumPy twins run, and which BLAS library and path the compiled kernels use (loudly when it is
the slow loop fallback): the first thing to paste into a bug report. ``python -m fastdl``
is the same command.

Models (each a recipe in :mod:`fastdl.recipes`, written with the public API only):

- ``mnist-cnn``: the reference CNN of PyTorch's MNIST example; prints test accuracy, images/s
  and wall time;
- ``char-lstm``: the character-level LSTM language model on Tiny Shakespeare.

``fastdl train MODEL --help`` lists each model's options.
"""

from __future__ import annotations

import argparse
import importlib
import sys

RECIPES = {
    "mnist-cnn": "fastdl.recipes.mnist_cnn",
    "char-lstm": "fastdl.recipes.char_lstm",
}


def info_text() -> str:
    """What ``fastdl info`` prints."""
    import os
    import platform

    import numpy as np

    import fastdl
    from fastdl import config
    from fastdl.kernels import _blas

    lines = [
        f"fastdl         {fastdl.__version__} ({os.path.dirname(fastdl.__file__)})",
        f"Python         {platform.python_version()} on {platform.system()} {platform.machine()}",
        f"numpy          {np.__version__}",
    ]
    if config.PURE_AT_IMPORT:
        lines.append("numba          not used (FASTDL_PURE=1 or numba missing): NumPy twins")
    else:
        import numba

        cache = os.environ.get("NUMBA_CACHE_DIR") or "__pycache__ beside each kernel file"
        lines += [
            f"numba          {numba.__version__}, threading layer {numba.config.THREADING_LAYER}",
            f"numba cache    {cache}",
        ]
    lines.append(
        f"threads        {config.get_num_threads()} (fd.set_num_threads, FASTDL_NUM_THREADS)"
    )
    lines.append(f"kernels        {'NumPy twins (pure)' if config.pure() else 'compiled (numba)'}")
    lines.append(_blas.format_info())
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="fastdl", description="fastdl: train the book's models")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, threads, and the BLAS library and path in use")
    train = sub.add_parser(
        "train", help="train a model (fastdl train MODEL --help for its options)"
    )
    train.add_argument("model", choices=sorted(RECIPES), help="which model")
    if argv[:1] == ["train"] and len(argv) >= 2 and argv[1] in RECIPES:
        recipe = importlib.import_module(RECIPES[argv[1]])
        recipe.main(argv[2:])
        return 0
    args = parser.parse_args(argv)  # prints usage and exits for anything else
    if args.command == "info":
        print(info_text())
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
