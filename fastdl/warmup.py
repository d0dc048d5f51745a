"""``fastdl warmup``: compile every kernel into numba's cache before the first real run.

numba compiles a kernel the first time it is called with a new signature (dtypes, number of
dimensions, memory layout of its arguments) and caches the result on disk, so the first
training run on a fresh install spends its first tens of seconds compiling. Warm-up runs
small real forward and backward passes — and inference passes — of every layer type, in
float32 and float64, so exactly the signatures that training and inference reach get
compiled, including the serial and parallel variants (each pass runs at a tiny and at a
realistic batch size, on both sides of the kernels' size thresholds):

=========  =============================================================================
dense      Dense with every activation and dropout; softmax cross-entropy with uint8,
           int32, int64 and one-hot labels
mse        Dense (sigmoid) → Dense, mean squared error
cnn        the reference MNIST CNN: valid 3×3 convolutions, ReLU, max-pool, dropout
conv       padded ("same", odd and even kernels), strided convolutions, tanh and sigmoid,
           overlapping max-pool, ``Conv2D(flatten=True)``; an autoencoder's strided
           ``Conv2DTranspose`` layers (the transposed-convolution kernels); batch
           normalisation after a convolution (channels-last) and after pooling (NCHW),
           ``BatchNorm1D`` after a Dense layer, with and without a fused ReLU
rnn        Embedding → RNN → RNN (last step); one-hot RNN (the gather path); stacked RNNs
gru, lstm  one-hot (the gather path, stateful, dropout) and stacked layers
augment    ``fd.augment.RandomTranslate`` on an MNIST batch (``fit(augment=...)``), and the
           translation's multi-threaded variant for large batches
=========  =============================================================================

The compiled kernels are those of the BLAS path in use (``FASTDL_BLAS``); under
``FASTDL_PURE=1`` nothing is compiled.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["STEPS", "DTYPES", "WarmupResult", "Progress", "run", "main"]

DTYPES = ("float32", "float64")

_LABEL_DTYPES = (np.uint8, np.int32, np.int64)


def _train_and_infer(net, x: np.ndarray, y: np.ndarray) -> None:
    """One training pass (forward, loss, backward) and one inference pass of ``net``."""
    net.train_batch(x, y)
    net.forward(x, inference=True)


def _dense(dtype: np.dtype, rng: np.random.Generator) -> None:
    import fastdl as fd

    net = fd.NeuralNetwork(
        layers=[
            fd.Dense(128, activation=fd.ReLU(), dropout=0.8),
            fd.Dense(32, activation=fd.Sigmoid()),
            fd.Dense(32, activation=fd.Tanh(), dropout=0.9),
            fd.Dense(16, activation=fd.LeakyReLU()),
            fd.Dense(10, activation=fd.Linear()),
        ],
        loss=fd.SoftmaxCrossEntropy(),
        seed=0,
        dtype=dtype,
    )
    # batch 300: 2·300·784·128 multiply-adds is past the matmul kernel's serial threshold
    for n in (2, 300):
        x = rng.standard_normal((n, 784)).astype(dtype)
        labels = rng.integers(0, 10, n)
        for label_dtype in _LABEL_DTYPES:
            _train_and_infer(net, x, labels.astype(label_dtype))
        net.train_batch(x, np.eye(10, dtype=dtype)[labels])  # one-hot labels


def _mse(dtype: np.dtype, rng: np.random.Generator) -> None:
    import fastdl as fd

    net = fd.NeuralNetwork(
        layers=[fd.Dense(13, activation=fd.Sigmoid()), fd.Dense(1)],
        loss=fd.MeanSquaredError(),
        seed=0,
        dtype=dtype,
    )
    for n in (2, 32):
        x = rng.standard_normal((n, 13)).astype(dtype)
        _train_and_infer(net, x, rng.standard_normal((n, 1)).astype(dtype))


def _images(rng: np.random.Generator, n: int, shape: tuple, dtype: np.dtype) -> np.ndarray:
    return rng.standard_normal((n, *shape)).astype(dtype)


def _cnn(dtype: np.dtype, rng: np.random.Generator) -> None:
    import fastdl as fd
    from fastdl.recipes.mnist_cnn import build

    net = build(seed=0, dropout=True)  # its layers, in ``dtype``
    net = fd.NeuralNetwork(net.layers, net.loss, seed=0, dtype=dtype)
    for n in (2, 64):  # one image: serial kernels; 64: the parallel ones
        x = _images(rng, n, (1, 28, 28), dtype)
        labels = rng.integers(0, 10, n)
        for label_dtype in (np.uint8, np.int64):
            _train_and_infer(net, x, labels.astype(label_dtype))


def _conv(dtype: np.dtype, rng: np.random.Generator) -> None:
    import fastdl as fd

    book = fd.NeuralNetwork(
        layers=[
            fd.Conv2D(16, 5, padding="same", activation=fd.Tanh(), dropout=0.8, flatten=True),
            fd.Dense(10),
        ],
        loss=fd.SoftmaxCrossEntropy(),
        seed=0,
        dtype=dtype,
    )
    strided = fd.NeuralNetwork(
        layers=[
            fd.Conv2D(8, 3, stride=2, padding=1, activation=fd.Sigmoid()),
            fd.Conv2D(8, 4, padding="same", activation=fd.ReLU()),
            fd.Conv2D(8, 1, padding="valid"),
            fd.MaxPool2D(3, stride=2, dropout=0.9),
            fd.Flatten(),
            fd.Dense(10),
        ],
        loss=fd.SoftmaxCrossEntropy(),
        seed=0,
        dtype=dtype,
    )
    autoencoder = fd.NeuralNetwork(
        layers=[
            fd.Conv2D(8, 3, stride=2, padding=1, activation=fd.ReLU()),
            fd.Conv2DTranspose(4, 4, stride=2, padding=1, activation=fd.ReLU(), dropout=0.9),
            fd.Conv2DTranspose(3, 3, padding=1, activation=fd.Sigmoid()),
        ],
        loss=fd.MeanSquaredError(),
        seed=0,
        dtype=dtype,
    )
    # batch norm after a convolution (channels-last rows), after pooling (NCHW planes) and
    # first, on the data (NCHW planes); 64 examples take the first and the last past the
    # kernels' serial threshold (1M values)
    first = fd.NeuralNetwork(
        layers=[fd.BatchNorm2D(), fd.Flatten(), fd.Dense(10)],
        loss=fd.SoftmaxCrossEntropy(),
        seed=0,
        dtype=dtype,
    )
    normalised = fd.NeuralNetwork(
        layers=[
            fd.Conv2D(24, 3, padding=0),
            fd.BatchNorm2D(activation=fd.ReLU()),
            fd.MaxPool2D(2),
            fd.BatchNorm2D(),
            fd.Flatten(),
            fd.Dense(16),
            fd.BatchNorm1D(activation=fd.ReLU()),
            fd.Dense(10),
        ],
        loss=fd.SoftmaxCrossEntropy(),
        seed=0,
        dtype=dtype,
    )
    for n in (2, 64):
        labels = rng.integers(0, 10, n)
        _train_and_infer(normalised, _images(rng, n, (3, 28, 28), dtype), labels)
        _train_and_infer(first, _images(rng, n, (4, 64, 64), dtype), labels)
        _train_and_infer(book, _images(rng, n, (1, 28, 28), dtype), labels)
        _train_and_infer(strided, _images(rng, n, (3, 17, 15), dtype), labels)
        pictures = rng.random((n, 3, 16, 14)).astype(dtype)
        _train_and_infer(autoencoder, pictures, pictures)


def _recurrent(cell: str) -> Callable[[np.dtype, np.random.Generator], None]:
    def step(dtype: np.dtype, rng: np.random.Generator) -> None:
        import fastdl as fd

        layer = {"rnn": fd.RNNLayer, "gru": fd.GRULayer, "lstm": fd.LSTMLayer}[cell]
        vocab, t_len = 20, 7
        # first and one-hot: the row-gather path of the char model, stateful, with dropout
        onehot = fd.NeuralNetwork(
            layers=[layer(64, stateful=True, dropout=0.7), fd.Dense(vocab)],
            loss=fd.SoftmaxCrossEntropy(),
            seed=0,
            dtype=dtype,
        )
        # not first: the input gradient is needed; the last step only
        stacked = fd.NeuralNetwork(
            layers=[layer(32), layer(32, return_sequences=False), fd.Dense(5)],
            loss=fd.SoftmaxCrossEntropy(),
            seed=0,
            dtype=dtype,
        )
        nets = [onehot, stacked]
        if cell == "rnn":
            embedded = fd.NeuralNetwork(
                layers=[fd.Embedding(vocab, 16), layer(32, dropout=0.8), fd.Dense(vocab)],
                loss=fd.SoftmaxCrossEntropy(),
                seed=0,
                dtype=dtype,
            )
            nets.append(embedded)
        for n in (2, 32):
            onehot.reset_state()  # a stateful layer keeps its batch size until reset
            ids = rng.integers(0, vocab, (n, t_len + 1))
            targets = ids[:, 1:].copy()
            _train_and_infer(onehot, np.eye(vocab, dtype=dtype)[ids[:, :-1]], targets)
            x = rng.standard_normal((n, t_len, 8)).astype(dtype)
            _train_and_infer(stacked, x, rng.integers(0, 5, n))
            if cell == "rnn":
                for id_dtype in (np.int32, np.int64):
                    _train_and_infer(embedded, ids[:, :-1].astype(id_dtype), targets)

    return step


def _augment(dtype: np.dtype, rng: np.random.Generator) -> None:
    import fastdl as fd
    from fastdl.kernels import augment

    x = _images(rng, 64, (1, 28, 28), dtype)
    fd.augment.RandomTranslate(2)(x, rng)  # a training batch through fit's augment
    # the variant for batches past augment.SERIAL_MAX_SIZE, compiled on a small batch
    augment._translate(x, rng.integers(-2, 3, (64, 2)), x.min(axis=(2, 3)), np.empty_like(x))


#: The warm-up steps by name, each run once per dtype of :data:`DTYPES`.
STEPS: dict[str, Callable[[np.dtype, np.random.Generator], None]] = {
    "dense": _dense,
    "mse": _mse,
    "cnn": _cnn,
    "conv": _conv,
    "rnn": _recurrent("rnn"),
    "gru": _recurrent("gru"),
    "lstm": _recurrent("lstm"),
    "augment": _augment,
}


@dataclass(frozen=True)
class WarmupResult:
    """What a warm-up did.

    Attributes
    ----------
    seconds : float
        Wall time of all steps.
    compiled : int
        Kernel signatures compiled (cache misses), including kernels compiled because a
        kernel calling them was.
    loaded : int
        Kernel signatures loaded from numba's cache. A kernel called only from other
        kernels is not loaded on its own once its callers are cached, so a warm run loads
        fewer signatures than a cold one compiles.
    steps : list of (str, float, int, int)
        Per step: its label (``"cnn float32"``), seconds, compiled, loaded.
    """

    seconds: float
    compiled: int
    loaded: int
    steps: list


class Progress:
    """A progress display over ``total`` steps written to ``file``.

    On a terminal it is one redrawn line: a tqdm bar where tqdm is installed, else a bar
    of its own redrawn with carriage returns. Elsewhere (a pipe, a log file) it is one
    plain line per finished step, flushed at once.

    Parameters
    ----------
    total : int
        Number of steps.
    file : text stream, default sys.stdout
    terminal : bool, optional
        Draw a bar; default: whether ``file`` is a terminal.
    use_tqdm : bool, optional
        Draw the bar with tqdm; default: whether tqdm can be imported.
    """

    def __init__(self, total: int, file=None, terminal: bool | None = None, use_tqdm=None):
        self.total = total
        self.file = sys.stdout if file is None else file
        if terminal is None:
            isatty = getattr(self.file, "isatty", None)
            terminal = bool(isatty and isatty())
        self.terminal = terminal
        self.done = 0
        self._tqdm = None
        if terminal and use_tqdm is not False:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                # The size from COLUMNS/LINES or the terminal, 80 × 24 where the terminal
                # says 0 × 0 (a new pseudo-terminal does, and tqdm then draws nothing).
                size = shutil.get_terminal_size()
                self._tqdm = tqdm(
                    total=total,
                    file=self.file,
                    unit="step",
                    desc="warmup",
                    ncols=min(size.columns, 120),
                    nrows=size.lines,
                )

    def start(self, label: str) -> None:
        """Show that step ``label`` is running (on a terminal)."""
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(label)
        elif self.terminal:
            self._draw(label)

    def finish(self, label: str, seconds: float, compiled: int, loaded: int) -> None:
        """Record that step ``label`` finished."""
        self.done += 1
        if self._tqdm is not None:
            self._tqdm.update(1)
        elif self.terminal:
            self._draw(label)
        else:
            width = len(str(self.total))
            self.file.write(
                f"[{self.done:>{width}}/{self.total}] {label:<14} {seconds:6.1f} s  "
                f"compiled {compiled}, loaded {loaded}\n"
            )
            self.file.flush()

    def _draw(self, label: str) -> None:
        filled = 24 * self.done // max(self.total, 1)
        bar = "#" * filled + "-" * (24 - filled)
        self.file.write(f"\rwarmup [{bar}] {self.done}/{self.total} {label:<14}")
        self.file.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self._tqdm is not None:
            self._tqdm.close()
        elif self.terminal:
            self.file.write("\n")
            self.file.flush()


def run(
    steps: Sequence[str] | None = None,
    dtypes: Iterable[str] = DTYPES,
    progress: Progress | None = None,
) -> WarmupResult:
    """Run the warm-up passes, compiling (or loading) every kernel signature they reach.

    Parameters
    ----------
    steps : sequence of str, optional
        Names from :data:`STEPS` (default: all, in that order).
    dtypes : iterable of {"float32", "float64"}
    progress : Progress, optional
        Where to show progress (default: none).

    Returns
    -------
    WarmupResult

    Raises
    ------
    RuntimeError
        Under ``FASTDL_PURE=1`` (or without numba): there is nothing to compile.
    """
    from fastdl import config

    if config.PURE_AT_IMPORT:
        raise RuntimeError("warmup: the compiled kernels are off (FASTDL_PURE=1 or no numba)")
    from fastdl.kernels import _cache_stats

    names = list(STEPS) if steps is None else list(steps)
    for name in names:
        if name not in STEPS:
            raise ValueError(f"warmup: unknown step {name!r}; choose from {', '.join(STEPS)}")
    plan = [(name, np.dtype(d)) for name in names for d in dtypes]
    start = time.perf_counter()
    before = _cache_stats.compile_counts()
    records = []
    with config.use_pure(False):
        for name, dtype in plan:
            label = f"{name} {dtype.name}"
            if progress is not None:
                progress.start(label)
            t0 = time.perf_counter()
            STEPS[name](dtype, np.random.default_rng(0))
            after = _cache_stats.compile_counts()
            loaded, compiled = _difference(before, after)
            before = after
            records.append((label, time.perf_counter() - t0, compiled, loaded))
            if progress is not None:
                progress.finish(*records[-1])
    seconds = time.perf_counter() - start
    return WarmupResult(seconds, sum(r[2] for r in records), sum(r[3] for r in records), records)


def _difference(before: dict, after: dict) -> tuple[int, int]:
    """Signatures loaded and compiled between two :func:`_cache_stats.compile_counts`."""
    loaded = compiled = 0
    for key, (_, hits, misses) in after.items():
        _, hits0, misses0 = before.get(key, (None, 0, 0))
        loaded += hits - hits0
        compiled += misses - misses0
    return loaded, compiled


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def main(steps: Sequence[str] | None = None, dtypes: Iterable[str] = DTYPES) -> int:
    """What ``fastdl warmup`` does: print the plan, run it with progress, print the totals.

    Returns
    -------
    int
        The exit status: 0.
    """
    t0 = time.perf_counter()
    from fastdl import config

    out = sys.stdout
    if config.PURE_AT_IMPORT:
        out.write(
            "fastdl warmup: nothing to compile: the kernels run as NumPy twins "
            "(FASTDL_PURE=1, or numba is missing)\n"
        )
        out.flush()
        return 0
    from fastdl.kernels import _cache_stats

    usage = _cache_stats.cache_usage()
    names = list(STEPS) if steps is None else list(steps)
    dtypes = list(dtypes)
    out.write(
        f"fastdl warmup: {_plural(len(names) * len(dtypes), 'step')} ({', '.join(names)} × "
        f"{', '.join(dtypes)}), BLAS path {config.blas_path()}, "
        f"{config.get_num_threads()} threads\n"
        f"numba cache: {', '.join(usage.folders)} ({_megabytes(usage.n_bytes)} before)\n"
    )
    out.flush()
    progress = Progress(len(names) * len(dtypes), out)
    try:
        result = run(names, dtypes, progress)
    finally:
        progress.close()
    total = time.perf_counter() - t0
    after = _cache_stats.cache_usage(usage.folders)
    out.write(
        f"done in {total:.1f} s: {result.compiled} kernel signatures compiled, "
        f"{result.loaded} loaded from the cache; cache {_megabytes(after.n_bytes)} in "
        f"{after.n_files} files\n"
    )
    out.flush()
    return 0
