"""``fastdl bench``: a quick throughput check of this machine, read against its own matmul.

Four measurements on synthetic data of the right shapes (no data set needed), float32,
with fastdl's thread count (``FASTDL_NUM_THREADS``):

=============  ===============================================================  ==========
matmul         numpy's ``a @ b`` on 2,048 × 2,048 float32 matrices, all BLAS    10% of the
               threads: the ceiling the other rates are read against            time
CNN training   the reference MNIST CNN (:func:`fastdl.recipes.mnist_cnn.build`,  40%
               without dropout unless ``dropout=True``), Adadelta, batch 64
CNN inference  the same network's inference pass on 1,000 images                20%
LSTM training  the char model (:func:`fastdl.recipes.char_lstm.build_model`):    30%
               one-hot vocabulary 65 → LSTM(256) → Dense(65), T 25, batch 32,
               Adam with ``clip_norm=5``, stateful
=============  ===============================================================  ==========

Every network is warmed up (compiled, or loaded from numba's cache) before any timing, and
the warm-up is not counted. Rates are items over the wall time of whole steps.

FLOPs per image and per token come from :func:`fastdl.summary.count`: the matrix products,
2 per multiply-add (convolutions, dense layers, the LSTM's recurrent products); a training
step counts each product's forward pass, input gradient and weight gradient, except the input
gradient of the first layer, which nobody needs; the LSTM's one-hot input product is a row
gather and is not counted. The reference CNN does 23,984,896 FLOPs per image forward and
71,565,312 in training; the LSTM 557,568 and 1,672,704 per token.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Rate", "matmul_ceiling", "main"]

LSTM_HIDDEN, LSTM_VOCAB, LSTM_T, LSTM_BATCH = 256, 65, 25, 32
#: Share of the time budget each measurement gets.
SHARES = {"matmul": 0.1, "cnn-train": 0.4, "cnn-infer": 0.2, "lstm-train": 0.3}

_MATMUL_N = 2048


@dataclass(frozen=True)
class Rate:
    """One timed measurement.

    Attributes
    ----------
    calls : int
        Timed calls of the step.
    seconds : float
        Their wall time.
    items_per_s : float
        Images or tokens (matmul: products) per second.
    gflops : float
        GFLOP/s.
    """

    calls: int
    seconds: float
    items_per_s: float
    gflops: float


def _time(fn: Callable[[], object], seconds: float, items: int, flops: float) -> Rate:
    """Call ``fn`` until ``seconds`` have passed (at least twice), ``items`` and ``flops``
    per call; the first call is untimed."""
    fn()
    calls, start = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - start < seconds:
        fn()
        calls += 1
    elapsed = time.perf_counter() - start
    return Rate(calls, elapsed, items * calls / elapsed, flops * calls / elapsed / 1e9)


def matmul_ceiling(seconds: float = 3.0) -> Rate:
    """numpy's float32 ``a @ b`` on ``(2048, 2048)`` matrices, on fastdl's thread count.

    Returns
    -------
    Rate
        ``items_per_s`` counts products; ``gflops`` is the ceiling.
    """
    from fastdl import config
    from fastdl.kernels._blas import blas_threads

    rng = np.random.default_rng(0)
    a = rng.standard_normal((_MATMUL_N, _MATMUL_N)).astype(np.float32)
    b = rng.standard_normal((_MATMUL_N, _MATMUL_N)).astype(np.float32)
    with blas_threads(config.get_num_threads()):
        return _time(lambda: a @ b, seconds, 1, 2 * _MATMUL_N**3)


class _Workloads:
    """The three networks with their synthetic data, warmed up on construction.

    Parameters
    ----------
    dropout : bool
        Build the reference CNN with its dropouts (keep 0.75 and 0.5).
    """

    def __init__(self, dropout: bool) -> None:
        import fastdl as fd
        from fastdl.recipes.char_lstm import build_model
        from fastdl.recipes.mnist_cnn import build
        from fastdl.summary import count

        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
        self.y = rng.integers(0, 10, 64).astype(np.uint8)  # as load_mnist's labels
        self.x_infer = rng.standard_normal((1000, 1, 28, 28)).astype(np.float32)
        self.cnn = build(seed=0, dropout=dropout)
        self.cnn_optim = fd.Adadelta(lr=1.0)
        fd.Trainer(self.cnn, self.cnn_optim)
        self.infer_net = build(seed=0, dropout=dropout)

        ids = rng.integers(0, LSTM_VOCAB, (LSTM_BATCH, LSTM_T + 1))
        self.x_seq = np.eye(LSTM_VOCAB, dtype=np.float32)[ids[:, :-1]]
        self.y_seq = np.ascontiguousarray(ids[:, 1:])
        self.lstm_net, _ = build_model(LSTM_VOCAB, LSTM_HIDDEN, seed=0)
        self.lstm_optim = fd.Adam(lr=2e-3, clip_norm=5.0)
        fd.Trainer(self.lstm_net, self.lstm_optim)

        cnn = count(self.cnn, (1, 28, 28))
        lstm = count(self.lstm_net, (LSTM_T, LSTM_VOCAB), one_hot=True)
        #: FLOPs per image (CNN) or per token (LSTM) of each timed step.
        self.flops = {
            "cnn-train": cnn.training_flops,
            "cnn-infer": cnn.forward_flops,
            "lstm-train": lstm.training_flops / LSTM_T,
        }
        for _ in range(2):
            self.cnn_step()
            self.cnn_infer()
            self.lstm_step()

    def cnn_step(self) -> None:
        self.cnn.train_batch(self.x, self.y)
        self.cnn_optim.step()

    def cnn_infer(self) -> None:
        self.infer_net.forward(self.x_infer, inference=True)

    def lstm_step(self) -> None:
        self.lstm_net.train_batch(self.x_seq, self.y_seq)
        self.lstm_optim.step()


def _warm_up(dropout: bool) -> tuple[_Workloads, float, str]:
    """Build and warm the networks; returns them, the seconds it took and what compiled."""
    from fastdl import config

    start = time.perf_counter()
    if config.pure():
        work = _Workloads(dropout)
        return work, time.perf_counter() - start, "NumPy twins: nothing to compile"
    from fastdl.kernels import _cache_stats

    before = _cache_stats.compile_counts()
    work = _Workloads(dropout)
    after = _cache_stats.compile_counts()
    loaded = compiled = 0
    for key, (_, hits, misses) in after.items():
        _, hits0, misses0 = before.get(key, (None, 0, 0))
        loaded, compiled = loaded + hits - hits0, compiled + misses - misses0
    what = f"{compiled} kernel signatures compiled, {loaded} loaded from the cache"
    return work, time.perf_counter() - start, what


def _print(out, text: str) -> None:
    out.write(text + "\n")
    out.flush()


def main(seconds: float = 30.0, dropout: bool = False, out=None) -> int:
    """What ``fastdl bench`` does: warm up, time the four measurements, print the rates.

    Parameters
    ----------
    seconds : float, default 30
        Total timing budget, split as :data:`SHARES` (the warm-up comes on top).
    dropout : bool, default False
        Time the reference CNN with its dropouts.
    out : text stream, default sys.stdout

    Returns
    -------
    int
        The exit status: 0.
    """
    from fastdl import config
    from fastdl.kernels import _blas  # noqa: F401  (resolves the BLAS path)

    out = sys.stdout if out is None else out
    if config.pure():
        kernels = "NumPy twins (pure), products by numpy's matmul"
    else:
        kernels = f"compiled (numba), BLAS path {config.blas_path()}"
    _print(
        out,
        f"fastdl bench: {seconds:g} s of timing; float32, synthetic data, "
        f"{config.get_num_threads()} threads, kernels {kernels}",
    )
    work, warm_s, what = _warm_up(dropout)
    _print(out, f"warm-up        {warm_s:.1f} s, not timed ({what})")

    ceiling = matmul_ceiling(seconds * SHARES["matmul"])
    _print(
        out,
        f"matmul         numpy {_MATMUL_N}×{_MATMUL_N} float32 a @ b: {ceiling.gflops:.1f} "
        f"GFLOP/s, the ceiling ({ceiling.calls} products in {ceiling.seconds:.1f} s)",
    )

    def report(title: str, rate: Rate, unit: str, calls: str) -> None:
        _print(
            out,
            f"{title:<15}{rate.items_per_s:,.0f} {unit}, {rate.gflops:.1f} GFLOP/s = "
            f"{rate.gflops / ceiling.gflops:.0%} of the matmul ceiling "
            f"({rate.calls} {calls} in {rate.seconds:.1f} s)",
        )

    which = "with dropout" if dropout else "without dropout"
    n = len(work.x)
    rate = _time(work.cnn_step, seconds * SHARES["cnn-train"], n, n * work.flops["cnn-train"])
    report("CNN training", rate, f"images/s (reference CNN {which}, batch {n})", "steps")
    n = len(work.x_infer)
    rate = _time(work.cnn_infer, seconds * SHARES["cnn-infer"], n, n * work.flops["cnn-infer"])
    report("CNN inference", rate, f"images/s (batch {n})", "passes")
    tokens = LSTM_BATCH * LSTM_T
    flops = tokens * work.flops["lstm-train"]
    rate = _time(work.lstm_step, seconds * SHARES["lstm-train"], tokens, flops)
    report(
        "LSTM training",
        rate,
        f"tokens/s (LSTM({LSTM_HIDDEN}), one-hot vocab {LSTM_VOCAB}, T {LSTM_T}, "
        f"batch {LSTM_BATCH})",
        "steps",
    )
    _print(
        out,
        f"FLOPs (fastdl.summary.count): {work.flops['cnn-train'] / 1e6:.1f} M per image in "
        f"training, {work.flops['cnn-infer'] / 1e6:.1f} M in inference, "
        f"{work.flops['lstm-train'] / 1e6:.2f} M per token; the matrix products, 2 per "
        "multiply-add, training = forward + input gradient + weight gradient (none for the "
        "first layer's input; the LSTM's one-hot input is a gather)",
    )
    return 0
