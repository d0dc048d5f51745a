"""Benchmarks of the element-wise kernels, numba twin against NumPy twin.

The book's CNN at batch 60: its convolution's output, 60 × 16 × 28 × 28 float32, is an NCHW
view of channels-last memory; the gradient arriving from the dense layer is C-ordered NCHW.
``tanh_backward`` meets both layouts at once; dropout draws and output are C-ordered, its
input channels-last. Data come from a fixed seed; the JIT is warmed in ``setup``.

``track_gflops`` counts 3 operations per element for ``tanh_backward`` (y·y, 1 − ·, ·dy) and
2 for dropout (compare, multiply): these kernels are bound by memory, not arithmetic, and
their rate is shown against the matmul ceiling (``MatmulCeiling``) only as the issue asks.

Why kernels at all (reference machine): NumPy's ``dy * (1 - y * y)`` on these mixed layouts
took 1.8 ms against 0.2 ms for the kernel's one pass.
"""

import numpy as np

from fastdl import config

from .common import optional, rate

ew = optional("fastdl.kernels.elementwise")

SHAPE = (60, 16, 28, 28)


class Elementwise:
    params = (["np", "nb"],)
    param_names = ["impl"]

    def setup(self, impl):
        if impl == "nb" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        rng = np.random.default_rng(0)
        n, c, h, w = SHAPE
        self.y = np.tanh(rng.standard_normal((n, h, w, c), dtype=np.float32)).transpose(0, 3, 1, 2)
        self.dy = rng.standard_normal(SHAPE, dtype=np.float32)
        self.r = rng.random(SHAPE, dtype=np.float32)
        self.tanh = getattr(ew.tanh_backward, impl)
        self.drop_fw = getattr(ew.dropout_forward, impl)
        self.drop_bw = getattr(ew.dropout_backward, impl)
        self.time_tanh_backward(impl)
        self.time_dropout_forward(impl)
        self.time_dropout_backward(impl)

    def time_tanh_backward(self, impl):
        self.tanh(self.y, self.dy)

    def time_dropout_forward(self, impl):
        self.drop_fw(self.y, self.r, 0.8)

    def time_dropout_backward(self, impl):
        self.drop_bw(self.dy, self.r, 0.8)

    def track_gflops(self, impl):
        size = self.dy.size

        def all_three():
            self.tanh(self.y, self.dy)
            self.drop_fw(self.y, self.r, 0.8)
            self.drop_bw(self.dy, self.r, 0.8)

        return rate(all_three, (3 + 2 + 2) * size)

    track_gflops.unit = "GFLOP/s"
