"""The ``fastdl`` console command: ``fastdl train MODEL [options]``.

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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="fastdl", description="fastdl: train the book's models")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser(
        "train", help="train a model (fastdl train MODEL --help for its options)"
    )
    train.add_argument("model", choices=sorted(RECIPES), help="which model")
    if argv[:1] == ["train"] and len(argv) >= 2 and argv[1] in RECIPES:
        recipe = importlib.import_module(RECIPES[argv[1]])
        recipe.main(argv[2:])
        return 0
    parser.parse_args(argv)  # prints usage and exits for anything else
    return 2


if __name__ == "__main__":
    sys.exit(main())
