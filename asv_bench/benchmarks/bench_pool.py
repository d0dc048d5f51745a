"""Benchmarks of the max-pool kernels, numba twin against NumPy twin.

The reference MNIST CNN's pool: batch 64, 64 channels, 24 × 24 → 12 × 12 (2 × 2, stride 2),
float32, channels-last in and NCHW out; and an overlapping 3 × 3 / stride 2 pool of the same input.
Data come from a fixed seed; the JIT is warmed in ``setup``.

``track_gflops`` counts F² comparisons per output forward and one addition per output
backward: pooling is bound by memory, and its rate is shown against the matmul ceiling
(``MatmulCeiling``) only as the issue asks.
"""

import numpy as np

from fastdl import config
from fastdl.kernels import pool

from .common import rate


class MaxPool:
    params = (["np", "nb"], ["2x2-s2", "3x3-s2"])
    param_names = ["impl", "window"]

    def setup(self, impl, window):
        if impl == "nb" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        self.size, self.stride = (2, 2) if window == "2x2-s2" else (3, 2)
        self.x = np.random.default_rng(0).standard_normal((64, 24, 24, 64)).astype(np.float32)
        self.fw = getattr(pool.maxpool_forward, impl)
        self.bw = getattr(pool.maxpool_backward, impl)
        self.y, self.idx = self.fw(self.x, self.size, self.stride)
        self.bw(self.y, self.idx, 24, 24, self.size, self.stride)

    def time_forward(self, impl, window):
        self.fw(self.x, self.size, self.stride)

    def time_backward(self, impl, window):
        self.bw(self.y, self.idx, 24, 24, self.size, self.stride)

    def track_gflops(self, impl, window):
        def both():
            self.fw(self.x, self.size, self.stride)
            self.bw(self.y, self.idx, 24, 24, self.size, self.stride)

        return rate(both, self.y.size * (self.size * self.size + 1))

    track_gflops.unit = "GFLOP/s"
