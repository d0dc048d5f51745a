"""The ``fastdl`` console command: ``info``, ``warmup``, ``bench`` and ``train MODEL``.

- ``fastdl info`` prints the versions, the thread count, whether the compiled kernels or the
  NumPy twins run, numba's cache folders and their size, which BLAS library and path the
  compiled kernels use (loudly when it is the slow loop fallback), and the data folder with
  the data sets found: the first thing to paste into a bug report.
- ``fastdl warmup`` compiles every kernel into numba's cache (:mod:`fastdl.warmup`), so the
  first real run does not wait for the compiler.
- ``fastdl bench`` measures the reference CNN's training and inference and the character
  LSTM's training step against the machine's float32 matmul (:mod:`fastdl.bench`).
- ``fastdl train MODEL`` trains one of the book's models (each a recipe in
  :mod:`fastdl.recipes`, written with the public API only):

  - ``mnist-cnn``: the reference CNN of PyTorch's MNIST example; prints test accuracy,
    images/s and wall time;
  - ``char-lstm``: the character-level LSTM language model on Tiny Shakespeare (chapter 6);
  - ``book-cnn``: the book's chapter 5 CNN; ``mnist-mlp``: its chapter 4 MLP;
  - ``regression``: chapter 3's deep network against linear regression on housing data;
  - ``mnist-fast``: MNIST to 99% in seconds (batch norm, one-cycle, label smoothing);
  - ``autoencoder``: chapter 7's convolutional autoencoder on MNIST (transposed convolutions),
    with pictures of its reconstructions and codes.

  Every model takes the shared flags of :mod:`fastdl.recipes.training_flags` (``--epochs
  --batch-size --lr --seed --threads --pure --plot --save --export-onnx --checkpoint
  --resume``).

  ``fastdl train MODEL --help`` lists each model's options.

``python -m fastdl`` is the same command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

RECIPES = {
    "mnist-cnn": "fastdl.recipes.mnist_cnn",
    "char-lstm": "fastdl.recipes.char_lstm",
    "mnist-mlp": "fastdl.recipes.mnist_mlp",
    "book-cnn": "fastdl.recipes.book_cnn",
    "regression": "fastdl.recipes.regression",
    "autoencoder": "fastdl.recipes.autoencoder",
    "mnist-fast": "fastdl.recipes.mnist_fast",
}


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def _cache_lines() -> list[str]:
    """The ``numba cache`` lines: where numba keeps fastdl's kernels and how much is there."""
    import numba

    from fastdl.kernels import _cache_stats

    usage = _cache_stats.cache_usage()
    why = (  # numba read NUMBA_CACHE_DIR when it was imported
        f"NUMBA_CACHE_DIR={numba.config.CACHE_DIR}"
        if numba.config.CACHE_DIR
        else "__pycache__ beside each kernel file (NUMBA_CACHE_DIR unset)"
    )
    lines = [
        f"numba cache    {_megabytes(usage.n_bytes)} in {usage.n_files:,} files "
        f"({usage.n_indexes:,} kernel indexes)",
        f"  location     {why}",
    ]
    lines += [f"  folder       {folder}" for folder in usage.folders]
    if usage.n_indexes == 0:
        lines.append("  empty        the first run compiles (tens of seconds); `fastdl warmup`")
    return lines


def _data_lines() -> list[str]:
    """The ``data`` lines: ``FASTDL_DATA``, the loaders' search order, the data sets found."""
    from fastdl.datasets import inventory, user_cache_dir

    home = inventory.data_home()
    cache = user_cache_dir("<name>")
    lines = [
        f"data folder    {'FASTDL_DATA=' + home if home else 'FASTDL_DATA is not set'}",
        f"  MNIST-format $FASTDL_DATA/<name>/, then {cache}/, then download "
        "(Fashion-MNIST also /usr/share/datasets/fashion-mnist/)",
        "  text, CSV    $FASTDL_DATA/<folder>/<file> (or the path you give the loader)",
    ]
    for found in inventory.inventory():
        where = f" {found.where}" if found.where else ""
        lines.append(f"  {found.title:<19} {found.status}{where} ({found.detail})")
    return lines


def info_text() -> str:
    """What ``fastdl info`` prints: versions, threads, kernels, cache, BLAS, data sets.

    Returns
    -------
    str
        Lines of ``name  value``, without a final newline.
    """
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

        lines.append(f"numba          {numba.__version__}, nogil kernels on fastdl's own threads")
        lines += _cache_lines()
    lines.append(
        f"threads        {config.get_num_threads()} (fd.set_num_threads, FASTDL_NUM_THREADS)"
    )
    lines.append(f"kernels        {'NumPy twins (pure)' if config.pure() else 'compiled (numba)'}")
    lines.append(_blas.format_info())
    lines += _data_lines()
    return "\n".join(lines)


def _steps(value: str) -> list[str]:
    """``--steps a,b``: warm-up step names, checked against :data:`fastdl.warmup.STEPS`."""
    from fastdl.warmup import STEPS

    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in STEPS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown step {', '.join(unknown) or value!r}; choose from {', '.join(STEPS)}"
        )
    return names


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {value!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {value}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Run the ``fastdl`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit
    status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="fastdl", description="fastdl: train the book's models")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, threads, numba cache, BLAS library and path, data sets")
    warmup = sub.add_parser(
        "warmup", help="compile every kernel into numba's cache, with a progress bar"
    )
    warmup.add_argument(
        "--steps",
        type=_steps,
        default=None,
        help="comma-separated subset of dense,mse,cnn,conv,rnn,gru,lstm,augment (default: all)",
    )
    warmup.add_argument(
        "--dtype",
        choices=["float32", "float64", "both"],
        default="both",
        help="which float dtype to compile for (default: both)",
    )
    bench = sub.add_parser(
        "bench", help="throughput of the reference CNN and the char LSTM, against matmul"
    )
    bench.add_argument(
        "--seconds",
        type=_seconds,
        default=30.0,
        help="total timing budget, split between the four measurements (default: 30)",
    )
    bench.add_argument(
        "--dropout",
        action="store_true",
        help="time the reference CNN with its dropouts (default: without, as the README's table)",
    )
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
    if args.command == "warmup":
        from fastdl import warmup as warmup_module

        dtypes = warmup_module.DTYPES if args.dtype == "both" else (args.dtype,)
        return warmup_module.main(args.steps, dtypes)
    if args.command == "bench":
        from fastdl import bench as bench_module

        return bench_module.main(args.seconds, dropout=args.dropout)
    return 2


if __name__ == "__main__":
    sys.exit(main())
