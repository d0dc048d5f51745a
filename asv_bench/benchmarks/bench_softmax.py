"""Benchmarks of the softmax cross-entropy kernels, numba twin against NumPy twin.

Shapes: a training batch of the MNIST CNNs (64 × 10), an evaluation batch (1000 × 10) and the
character LSTM's logits (32 streams × 25 steps = 800 rows × 65 characters). Forward and
backward together, as a training step calls them. Data come from a fixed seed; the JIT is
warmed in ``setup``.

``track_gflops`` counts 7 operations per logit (max, subtract, exp, add, divide; backward
scale and subtract), an ``exp`` as one: the kernel is bound by ``exp`` and memory, and its
rate is shown against the matmul ceiling (``MatmulCeiling``) only as the issue asks.

The crossing behind ``kernels.softmax.LOOP_MAX_SIZE`` (reference machine, one thread,
float32 forward pass, numba loop against NumPy): 64 × 10 3.1 µs vs 15.1; 800 × 10 34 vs 79;
800 × 32 100 vs 111; 800 × 48 153 vs 132; 800 × 65 211 vs 146. numba's ``exp`` is a scalar
call (about 4 ns), NumPy's vectorised (about 1 ns), NumPy's fixed cost about 12 µs. Two
threads over blocks of rows did not pay at 800 × 65.
"""

import numpy as np

from fastdl import config

from .common import optional, rate

softmax = optional("fastdl.kernels.softmax")

SHAPES = {"64x10": (64, 10), "1000x10": (1000, 10), "800x65": (800, 65)}


class SoftmaxCrossEntropy:
    params = (["np", "nb"], list(SHAPES))
    param_names = ["impl", "shape"]

    def setup(self, impl, shape):
        if impl == "nb" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        m, k = SHAPES[shape]
        rng = np.random.default_rng(0)
        self.z = (3 * rng.standard_normal((m, k))).astype(np.float32)
        self.y = rng.integers(0, k, m)
        self.forward = getattr(softmax.softmax_ce_forward, impl)
        self.backward = getattr(softmax.softmax_ce_backward, impl)
        self.time_forward_backward(impl, shape)

    def time_forward_backward(self, impl, shape):
        _, p = self.forward(self.z, self.y)
        self.backward(p, self.y)

    def track_gflops(self, impl, shape):
        return rate(lambda: self.time_forward_backward(impl, shape), 7 * self.z.size)

    track_gflops.unit = "GFLOP/s"
