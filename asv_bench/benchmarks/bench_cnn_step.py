"""Benchmarks of whole CNN training steps and inference, numba kernels against NumPy twins.

- ``CNNStep``: one training step (forward, loss, backward, optimizer update) of
  the reference MNIST CNN of PyTorch's example without dropout (conv 32@3×3 → ReLU → conv
  64@3×3 → ReLU → max-pool 2 → Dense 128 ReLU → Dense 10; Adadelta; batch 64) and of the
  book's chapter-5 CNN (conv 16@5×5 "same" → tanh → Dense 10; SGDMomentum; batch 60;
  without the chapter's dropout since the peers' comparison, as every peer's, has none).
  ``track_images_per_s`` reports training images per second (targets on the reference
  machine, 2 threads: reference ≥ 1,100 numba / ≥ 250 NumPy; book ≥ 4,500).
- ``CNNInference``: the reference CNN's forward pass in inference mode on 1,000 images
  (target ≥ 3,000 images/s).
- ``FirstBatch``: a fresh process that builds the reference CNN and trains one batch, with
  an empty numba cache (``timeraw_first_batch_cold``: compile time; target ≤ 30 s) and with
  the cache filled (``..._warm``; target ≤ 2 s).

Data come from a fixed seed; each network is warmed in ``setup``, so compile time is never
counted in the ``time_`` and ``track_`` benchmarks. Threads: fastdl's default (all cores).
"""

import numpy as np

import fastdl as fd
from fastdl import config
from fastdl.layers.conv import Conv2D
from fastdl.layers.pool import MaxPool2D

from .common import BLAS_PATHS, example_flops, peak_step_mib, per_second


def reference_cnn(seed=0):
    return fd.NeuralNetwork(
        layers=[
            Conv2D(32, 3, padding=0, activation=fd.ReLU()),
            Conv2D(64, 3, padding=0, activation=fd.ReLU()),
            MaxPool2D(2),
            fd.Flatten(),
            fd.Dense(128, activation=fd.ReLU()),
            fd.Dense(10),
        ],
        loss=fd.SoftmaxCrossEntropy(),
        seed=seed,
    )


def book_cnn(seed=0):
    return fd.NeuralNetwork(
        layers=[
            Conv2D(16, 5, padding="same", activation=fd.Tanh(), flatten=True),
            fd.Dense(10),
        ],
        loss=fd.SoftmaxCrossEntropy(),
        seed=seed,
    )


MODELS = {
    "reference": (reference_cnn, lambda: fd.Adadelta(lr=1.0), 64),
    "book": (book_cnn, lambda: fd.SGDMomentum(lr=0.1, momentum=0.9), 60),
}


class CNNStep:
    params = (["numba", "numpy"], list(MODELS))
    param_names = ["impl", "model"]
    timeout = 300

    def setup(self, impl, model):
        if impl == "numba" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        build, optimizer, batch = MODELS[model]
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
        self.y = rng.integers(0, 10, batch)
        self.net = build()
        self.optim = optimizer()
        fd.Trainer(self.net, self.optim)
        self.pure = impl == "numpy"
        with config.use_pure(self.pure):
            for _ in range(2):
                self._step()

    def _step(self):
        self.net.train_batch(self.x, self.y)
        self.optim.step()

    def time_train_step(self, impl, model):
        with config.use_pure(self.pure):
            self._step()

    def track_images_per_s(self, impl, model):
        with config.use_pure(self.pure):
            return per_second(self._step, len(self.x))

    def track_gflops(self, impl, model):
        """The step's convolution and dense FLOPs (``fastdl.summary.count``: forward and
        backward of the matrix products) per second; read against
        ``bench_matmul.MatmulCeiling.track_sgemm_gflops``."""
        flops = example_flops(self.net, self.x)
        with config.use_pure(self.pure):
            steps = per_second(self._step, 1)
        return flops * steps / 1e9

    track_images_per_s.unit = "images/s"
    track_gflops.unit = "GFLOP/s"


def check_blas(path):
    """NotImplementedError (asv: skipped) where BLAS path ``path`` cannot run."""
    if config.PURE_AT_IMPORT:
        raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
    try:
        from fastdl.kernels._blas import available_paths
    except ImportError:
        raise NotImplementedError("no BLAS paths in this commit (issue 17)") from None
    if path not in available_paths():
        raise NotImplementedError(f"BLAS path {path!r} cannot run here")


class CNNStepBLAS(CNNStep):
    """The reference CNN's training step (as ``CNNStep``) on each BLAS path
    (``FASTDL_BLAS``, see :mod:`fastdl.kernels._blas`), compiled kernels throughout."""

    params = (list(BLAS_PATHS), list(MODELS))
    param_names = ["blas", "model"]

    def setup(self, blas, model):
        check_blas(blas)
        with config.use_blas(blas):
            super().setup("numba", model)

    def time_train_step(self, blas, model):
        with config.use_blas(blas):
            self._step()

    def track_images_per_s(self, blas, model):
        with config.use_blas(blas):
            return per_second(self._step, len(self.x))

    def track_gflops(self, blas, model):
        with config.use_blas(blas):
            return super().track_gflops("numba", model)

    track_images_per_s.unit = "images/s"


class CNNInference:
    params = ["numba", "numpy"]
    param_names = ["impl"]
    timeout = 300

    def setup(self, impl):
        if impl == "numba" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        self.x = np.random.default_rng(0).standard_normal((1000, 1, 28, 28)).astype(np.float32)
        self.net = reference_cnn()
        self.pure = impl == "numpy"
        with config.use_pure(self.pure):
            self.net.forward(self.x, inference=True)

    def time_inference_1000(self, impl):
        with config.use_pure(self.pure):
            self.net.forward(self.x, inference=True)

    def track_images_per_s(self, impl):
        with config.use_pure(self.pure):
            return per_second(lambda: self.net.forward(self.x, inference=True), len(self.x))

    def track_gflops(self, impl):
        """The forward pass's convolution and dense FLOPs (``fastdl.summary.count``) per
        second."""
        flops = example_flops(self.net, self.x, training=False)
        with config.use_pure(self.pure):
            passes = per_second(lambda: self.net.forward(self.x, inference=True), 1)
        return flops * passes / 1e9

    track_images_per_s.unit = "images/s"
    track_gflops.unit = "GFLOP/s"


STEP_MEMORY = """
import numpy as np
import fastdl as fd
from fastdl import config
from benchmarks.bench_cnn_step import MODELS
model, optimizer, batch = MODELS["reference"]
rng = np.random.default_rng(0)
X = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
Y = rng.integers(0, 10, batch)
def build():
    net, optim = model(), optimizer()
    fd.Trainer(net, optim)
    def step():
        with config.use_pure({pure}):
            net.train_batch(X, Y)
            optim.step()
    return step
"""


class CNNStepMemory:
    """Peak memory of the reference CNN's training step (batch 64), to read against
    ``bench_torch_compare.TorchStepMemory``."""

    params = ["numba", "numpy"]
    param_names = ["impl"]
    timeout = 300

    def setup(self, impl):
        if impl == "numba" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")

    def track_step_peak_mib(self, impl):
        """MiB that training the model takes at its peak: weights, optimizer state,
        activations, gradients and workspace (:func:`common.peak_step_mib`)."""
        return peak_step_mib(STEP_MEMORY.format(pure=impl == "numpy"))

    track_step_peak_mib.unit = "MiB"


FIRST_BATCH = """
import numpy as np
import fastdl as fd
from fastdl.layers.conv import Conv2D
from fastdl.layers.pool import MaxPool2D
net = fd.NeuralNetwork(
    layers=[Conv2D(32, 3, padding=0, activation=fd.ReLU()),
            Conv2D(64, 3, padding=0, activation=fd.ReLU()), MaxPool2D(2, dropout=0.75),
            fd.Flatten(), fd.Dense(128, activation=fd.ReLU(), dropout=0.5), fd.Dense(10)],
    loss=fd.SoftmaxCrossEntropy(), seed=0)
optim = fd.Adadelta(lr=1.0)
fd.Trainer(net, optim)
x = np.zeros((64, 1, 28, 28), dtype=np.float32)
net.train_batch(x, np.zeros(64, dtype=np.int64))
optim.step()
net.forward(x, inference=True)
"""


class FirstBatch:
    timeout = 300

    def timeraw_first_batch_cold(self):
        setup = "import os, tempfile; os.environ['NUMBA_CACHE_DIR'] = tempfile.mkdtemp()"
        return FIRST_BATCH, setup

    def timeraw_first_batch_warm(self):
        return FIRST_BATCH
