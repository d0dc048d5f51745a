"""Data-parallel training of the reference MNIST CNN over MPI: the same ``fit``, more processes.

Run it as it is on one process, or under an MPI launcher on several (``pip install
'fastdl[mpi]'`` brings mpi4py and MPICH's ``mpiexec``)::

    python examples/distributed_mnist.py --epochs 1                    # one process
    mpiexec -n 2 python examples/distributed_mnist.py --epochs 1       # two, on this machine
    mpiexec -hosts a,b -n 4 python examples/distributed_mnist.py       # four, on machines a, b
    srun -n 8 python examples/distributed_mnist.py                     # under Slurm

``--batch-size`` is the global batch (64, as PyTorch's example): each process trains its
rows of every batch, the gradients are summed across processes before each step, and the
weights come out as one process training the same batches would make them (see
:mod:`fastdl._data_parallel`). Process 0 prints and writes ``--checkpoint``; a job that
dies (a machine lost, a process killed) is relaunched with ``--resume FILE`` and continues.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastdl as fd
from fastdl.datasets import load_mnist
from fastdl.recipes.mnist_cnn import build, prepare


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--checkpoint", help="write fit's state here (process 0)")
    parser.add_argument("--resume", help="continue the run that wrote this checkpoint")
    parser.add_argument("--smoke", action="store_true", help="seconds: 2,048 images, 1 epoch")
    args = parser.parse_args(argv)

    comm = fd.distributed.init()  # MPI under mpiexec/srun, one process otherwise
    (x_train, y_train), (x_test, y_test) = load_mnist()
    if args.smoke:
        x_train, y_train, x_test, y_test = (
            x_train[:2048],
            y_train[:2048],
            x_test[:1000],
            y_test[:1000],
        )
        args.epochs = 1
    x_train, x_test = prepare(x_train), prepare(x_test)
    y_train, y_test = y_train.astype(np.int64), y_test.astype(np.int64)

    net = build(args.seed)
    decay = {"final_lr": 0.7 ** (args.epochs - 1), "decay_type": "exponential"}
    optim = fd.Adadelta(lr=1.0, **(decay if args.epochs > 1 else {}))
    if comm.rank == 0:
        print(f"{comm.size} process(es) ({comm.backend}), {fd.config.get_num_threads()} "
              f"thread(s) each, global batch {args.batch_size}", flush=True)  # fmt: skip
    start = time.perf_counter()
    history = fd.Trainer(net, optim, distributed=comm).fit(
        x_train, y_train, x_test, y_test, epochs=args.epochs, eval_every=1,
        batch_size=args.batch_size, seed=args.seed, early_stopping=False,
        checkpoint=args.checkpoint or args.resume, resume=args.resume,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    acc = history.val_accuracy[-1]
    if comm.rank == 0:
        print(f"test accuracy {100 * acc:.2f}%  |  {args.epochs * len(x_train) / seconds:,.0f} "
              f"images/s over {comm.size} process(es)  |  {seconds:.1f} s", flush=True)  # fmt: skip
    return acc


if __name__ == "__main__":
    main()
