"""The "time to 99%" speedrun table: each step of ``fastdl train mnist-fast``, measured in turn.

Runs every variant of :data:`fastdl.recipes.mnist_fast.VARIANTS` (the changes in the order
they were made) with the same seeds, and prints a Markdown table: change → epochs → seconds
(from the start of training to the end of the final evaluation; warm numba cache, data
loading excluded) → test accuracy (min and mean over the seeds)::

    python examples/mnist_fast_speedrun.py                 # seeds 0 and 1, ~2 minutes
    python examples/mnist_fast_speedrun.py --seeds 0,1,2,3,4
    python examples/mnist_fast_speedrun.py --smoke         # seconds: 2,048 images
"""

from __future__ import annotations

import argparse

import numpy as np

from fastdl.recipes import mnist_fast


def main(argv: list[str] | None = None) -> list[tuple]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=mnist_fast._seeds, default=[0, 1])
    parser.add_argument("--smoke", action="store_true", help="seconds: 2,048 images, 1 epoch")
    args = parser.parse_args(argv)
    data = mnist_fast.load_data(smoke=args.smoke)
    rows = []
    for name, v in mnist_fast.VARIANTS.items():
        epochs = 1 if args.smoke else v.epochs
        mnist_fast.warm_up(name, v.batch_size)
        runs = [mnist_fast.train_once(seed, name, data, epochs, v.batch_size, v.lr, None)[:2]
                for seed in args.seeds]  # fmt: skip
        accs, secs = zip(*runs, strict=True)
        rows.append((name, v.what, epochs, v.batch_size, float(np.median(secs)), min(accs),
                     float(np.mean(accs))))  # fmt: skip
        print(f"{name}: accuracies {[round(100 * a, 2) for a in accs]}, seconds "
              f"{[round(s, 1) for s in secs]}", flush=True)  # fmt: skip
    print(f"\n| step | change | epochs | batch | seconds (median) | accuracy, min / mean of "
          f"{len(args.seeds)} seeds |\n| --- | --- | --- | --- | --- | --- |")  # fmt: skip
    for name, what, epochs, batch, sec, lo, mean in rows:
        print(f"| `{name}` | {what} | {epochs} | {batch} | {sec:.1f} | "
              f"{100 * lo:.2f}% / {100 * mean:.2f}% |")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
