"""Benchmarks of the image translation kernel (``fit(augment=RandomTranslate(2))``), numba
twin against NumPy twin.

One MNIST training batch, 128 × 1 × 28 × 28 float32, each image moved by its own shift of
up to 2 pixels and filled with its minimum, as ``RandomTranslate`` does. Data come from a
fixed seed; the JIT is warmed in ``setup``. ``time_random_translate`` adds what the public
object does around the kernel (the draws, each image's minimum).

A translation only copies: ``track_gbytes`` reports the bytes read and written per second
(one pass over the input, one over the output), a rate to hold against the machine's memory
bandwidth rather than its matmul ceiling. Reference machine (2 cores, shared with other
jobs): the numba twin took 21-34 µs, the NumPy twin 0.75-1.2 ms (35x); the whole
``RandomTranslate`` call 70-90 µs with numba, the draws and each image's minimum costing
about as much as the copy.
"""

import numpy as np

from fastdl import config

from .common import optional, per_second

augment = optional("fastdl.kernels.augment")

SHAPE = (128, 1, 28, 28)


class Translate:
    params = (["np", "nb"],)
    param_names = ["impl"]

    def setup(self, impl):
        if impl == "nb" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        rng = np.random.default_rng(0)
        self.x = rng.random(SHAPE, dtype=np.float32)
        self.shifts = rng.integers(-2, 3, (SHAPE[0], 2))
        self.fill = self.x.min(axis=(2, 3))
        self.translate = getattr(augment.translate, impl)
        self.use_pure = impl == "np"
        from fastdl.augment import RandomTranslate

        self.random_translate = RandomTranslate(2)
        self.rng = np.random.default_rng(1)
        self.time_translate(impl)
        self.time_random_translate(impl)

    def time_translate(self, impl):
        self.translate(self.x, self.shifts, self.fill)

    def time_random_translate(self, impl):
        with config.use_pure(self.use_pure):
            self.random_translate(self.x, self.rng)

    def track_gbytes(self, impl):
        moved = 2 * self.x.nbytes
        return per_second(lambda: self.translate(self.x, self.shifts, self.fill), moved, 1.0) / 1e9

    track_gbytes.unit = "GB/s"
