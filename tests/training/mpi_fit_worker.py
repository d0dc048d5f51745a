"""Trains small models with ``Trainer(..., distributed=fd.distributed.init())`` and writes
each rank's final weights: run under ``mpiexec -n K`` by ``test_fit_over_mpi.py``, and once
without it for the one-process reference.

    python mpi_fit_worker.py OUT_DIR float64|float32
"""

import sys
from pathlib import Path

import numpy as np

import fastdl as fd

V = 7


def reference_cnn(dtype):
    """The reference CNN of ``fastdl.recipes.mnist_cnn`` in the given dtype."""
    return fd.NeuralNetwork(
        [fd.Conv2D(32, 3, padding=0, activation=fd.ReLU()),
         fd.Conv2D(64, 3, padding=0, activation=fd.ReLU()),
         fd.MaxPool2D(2, dropout=0.75), fd.Flatten(),
         fd.Dense(128, fd.ReLU(), dropout=0.5), fd.Dense(10)],
        fd.SoftmaxCrossEntropy(), seed=1, dtype=dtype,
    )  # fmt: skip


def small_lstm(dtype):
    return fd.NeuralNetwork([fd.LSTMLayer(16, dropout=0.8), fd.Dense(V)],
                            fd.SoftmaxCrossEntropy(), seed=1, dtype=dtype)  # fmt: skip


def data(model):
    rng = np.random.default_rng(0)
    if model == "cnn":  # 160 images: global batches of 64, 64 and 32 (uneven over 3 ranks)
        return rng.standard_normal((160, 1, 28, 28)), rng.integers(0, 10, 160)
    ids = rng.integers(0, V, (100, 9))
    return np.eye(V)[ids[:, :-1]], ids[:, 1:]


OPTIMIZERS = {"sgdm": lambda: fd.SGDMomentum(0.05, momentum=0.9), "adam": lambda: fd.Adam(3e-3)}


def main(out: Path, dtype: str) -> None:
    comm = fd.distributed.init()
    for model in ("cnn", "lstm"):
        x, y = data(model)
        x = x.astype(dtype)
        batch = 64 if model == "cnn" else 32
        epochs = 2  # float64: 6 (cnn) and 8 (lstm) steps
        if dtype == "float32":  # a few steps only: float32 trajectories then drift apart
            x, y, epochs = x[: 2 * batch], y[: 2 * batch], 1
        for name, make in OPTIMIZERS.items():
            net = (reference_cnn if model == "cnn" else small_lstm)(np.dtype(dtype))
            trainer = fd.Trainer(net, make(), distributed=comm)
            trainer.fit(x, y, x[:40], y[:40], epochs=epochs, eval_every=1, batch_size=batch,
                        seed=3, early_stopping=False, verbose=0)  # fmt: skip
            arrays = {f"p{i}": p for i, p in enumerate(net.params())}
            np.savez(out / f"{model}-{name}-rank{comm.rank}.npz", **arrays)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
