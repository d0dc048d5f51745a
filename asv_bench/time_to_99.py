"""Time to 99%: ``fastdl train mnist-fast``'s recipe in fastdl and in PyTorch, alternated.

The same network (fastdl's, moved to PyTorch by ``fastdl.interop.torch.to_torch`` before
training, so both start from the same weights), the same data (MNIST, normalised), the
same recipe — Adam under a one-cycle schedule (max lr 0.02, β₁ cycled, stepped per batch;
``torch.optim.lr_scheduler.OneCycleLR``), cross-entropy with label smoothing 0.1, batch
256, two epochs, reshuffled every epoch — and the same thread count. Each run's clock starts
at its first training batch and stops after the evaluation on the 10,000 test images; both
sides warm up first (a training step on random data: numba's compile or cache load, torch's
first-call allocations). The frameworks alternate run by run, so the machine's drift hits
both alike. Prints each run and a Markdown table (median seconds, accuracies).

    python asv_bench/time_to_99.py                     # seeds 0 1 2, 2 threads
    python asv_bench/time_to_99.py --seeds 0,1,2,3,4 --threads 2

PyTorch is optional: without it only fastdl runs (and the script says so).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import fastdl as fd
from fastdl.recipes import mnist_fast


def _torch_run(torch, seed, data, epochs, batch_size, lr, smoothing):
    """Train ``mnist_fast.build(seed)``'s network in PyTorch; ``(accuracy, seconds)``."""
    from fastdl.interop.torch import to_torch

    (x_train, y_train), (x_test, y_test) = data
    net = mnist_fast.build(seed)
    net.build((1, 28, 28))
    model = to_torch(net)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    xv, yv = torch.from_numpy(x_test), torch.from_numpy(y_test)
    steps = epochs * ((len(xt) + batch_size - 1) // batch_size)
    optim = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, max_lr=lr, total_steps=steps)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(xt)))
        for i in range(0, len(xt), batch_size):
            idx = order[i : i + batch_size]
            optim.zero_grad(set_to_none=True)
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            optim.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(xv[i : i + 1000]).argmax(1) == yv[i : i + 1000]).sum())
                      for i in range(0, len(xv), 1000))  # fmt: skip
    return correct / len(xv), time.perf_counter() - start


def _torch_warm_up(torch, batch_size):
    from fastdl.interop.torch import to_torch

    net = mnist_fast.build(0)
    net.build((1, 28, 28))
    model = to_torch(net)
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch_size, 1, 28, 28)
    y = torch.randint(0, 10, (batch_size,))
    for _ in range(3):
        optim.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optim.step()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=mnist_fast._seeds, default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    v = mnist_fast.VARIANTS["final"]
    fd.set_num_threads(args.threads)
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        torch = None
        print("time_to_99: torch is not installed (pip install torch==2.13.0): fastdl only")
    data = mnist_fast.load_data()
    mnist_fast.warm_up("final", v.batch_size)
    if torch is not None:
        _torch_warm_up(torch, v.batch_size)
    peer = f"PyTorch {torch.__version__.split('+')[0]}" if torch is not None else None
    results = {"fastdl": [], peer: []}
    for seed in args.seeds:
        acc, sec = mnist_fast.train_once(seed, "final", data, v.epochs, v.batch_size, v.lr,
                                         None)[:2]  # fmt: skip
        results["fastdl"].append((acc, sec))
        print(f"fastdl   seed {seed}: {100 * acc:.2f}%  {sec:.1f} s", flush=True)
        if torch is not None:
            acc, sec = _torch_run(torch, seed, data, v.epochs, v.batch_size, v.lr,
                                  v.label_smoothing)  # fmt: skip
            results[peer].append((acc, sec))
            print(f"PyTorch  seed {seed}: {100 * acc:.2f}%  {sec:.1f} s", flush=True)
    print(f"\n| framework | seconds to the end of epoch {v.epochs} (median, range) | "
          f"test accuracy per seed {args.seeds} |\n| --- | --- | --- |")  # fmt: skip
    for name, runs in results.items():
        if not runs:
            continue
        accs, secs = zip(*runs, strict=True)
        print(f"| {name} | {statistics.median(secs):.1f} ({min(secs):.1f}–{max(secs):.1f}) | "
              f"{', '.join(f'{100 * a:.2f}%' for a in accs)} |")  # fmt: skip


if __name__ == "__main__":
    main()
