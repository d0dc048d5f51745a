"""Benchmarks of the batch-normalisation kernels, numba twin against NumPy twin.

The shape is a ``BatchNorm2D`` after the first 3×3 convolution of an MNIST CNN at batch 64,
float32: ``(64, 32, 26, 26)``, 1.4 M values, 43,264 per channel. ``layout`` is how the
layer finds it in memory: ``"rows"`` a convolution's channels-last output (``(N·H·W, C)``
rows, the usual conv → BN case), ``"planes"`` a C-ordered NCHW array (``(N, C, H·W)``, as
after pooling). ``time_forward`` is a training pass (batch statistics, normalise, fused
ReLU), ``time_backward`` its gradients (input, γ, β), ``time_inference`` the running-
statistics pass. Memory-bound passes: ``track_*_gbytes`` report the bytes the kernels must
move (forward: read x twice, write y; backward: read x, y, dy twice, write dx) per second,
to read against the machine's copy bandwidth, not its FLOP/s.

Data come from a fixed seed; the JIT is warmed in ``setup``.
"""

import numpy as np

from fastdl import config

from .common import optional, per_second

batchnorm = optional("fastdl.kernels.batchnorm")

SHAPE = (64, 32, 26, 26)  # N, C, H, W


def _kernel_view(x, layout):
    n, c, h, w = x.shape
    if layout == "rows":
        return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(n * h * w, c, 1)
    return np.ascontiguousarray(x).reshape(n, c, h * w)


class BatchNorm2D:
    params = (["np", "nb"], ["rows", "planes"])
    param_names = ["impl", "layout"]
    timeout = 180

    def setup(self, impl, layout):
        if impl == "nb" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        rng = np.random.default_rng(0)
        c = SHAPE[1]
        self.x = _kernel_view(rng.standard_normal(SHAPE).astype(np.float32), layout)
        self.dy = _kernel_view(rng.standard_normal(SHAPE).astype(np.float32), layout)
        self.gamma = (1 + 0.1 * rng.standard_normal(c)).astype(np.float32)
        self.beta = (0.1 * rng.standard_normal(c)).astype(np.float32)
        self.fw = getattr(batchnorm.batchnorm_forward, impl)
        self.bw = getattr(batchnorm.batchnorm_backward, impl)
        self.inf = getattr(batchnorm.batchnorm_inference, impl)
        self.y, self.mean, self.var = self.fw(self.x, self.gamma, self.beta, 1e-5, True)
        self._backward()
        self._inference()

    def _forward(self):
        self.fw(self.x, self.gamma, self.beta, 1e-5, True)

    def _backward(self):
        self.bw(self.x, self.y, self.dy, self.gamma, self.mean, self.var, 1e-5, True, True, True)

    def _inference(self):
        self.inf(self.x, self.gamma, self.beta, True)

    def time_forward(self, impl, layout):
        self._forward()

    def time_backward(self, impl, layout):
        self._backward()

    def time_forward_backward(self, impl, layout):
        self._forward()
        self._backward()

    def time_inference(self, impl, layout):
        self._inference()

    def track_forward_gbytes(self, impl, layout):
        return per_second(self._forward, 3 * self.x.nbytes, 1.0) / 1e9

    def track_backward_gbytes(self, impl, layout):
        return per_second(self._backward, 7 * self.x.nbytes, 1.0) / 1e9

    track_forward_gbytes.unit = track_backward_gbytes.unit = "GB/s"
