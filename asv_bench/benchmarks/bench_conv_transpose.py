"""Benchmarks of the transposed-convolution kernels, numba twin against NumPy twin.

Shapes are the decoder of a chapter-7-sized MNIST autoencoder at batch 64, float32,
channels-last as the kernels take them: ``up1`` doubles a 32-channel 7 × 7 code to 16
channels 14 × 14 (4 × 4 kernel, stride 2, padding 1), ``up2`` doubles that to one 28 × 28
channel (3 × 3 kernel, stride 2, padding 1, output padding 1). Both compute their input
gradient (``up1`` follows the encoder; ``up2``'s feeds ``up1``). ``track_*_gflops`` count
``2·N·H·W·C_in·C_out·KH·KW`` per product (forward; the backward twice that, dW and dx); read
them against ``bench_matmul.MatmulCeiling.track_sgemm_gflops`` and ``bench_conv``.

Data come from a fixed seed; the JIT is warmed in ``setup``.
"""

import numpy as np

from fastdl import config

from .common import optional, rate

conv_transpose = optional("fastdl.kernels.conv_transpose")

LAYERS = {
    # name: (N, H, W, C_in, C_out, K, stride, pad, output_padding)
    "up1": (64, 7, 7, 32, 16, 4, 2, (1, 1, 1, 1), (0, 0)),
    "up2": (64, 14, 14, 16, 1, 3, 2, (1, 1, 1, 1), (1, 1)),
}


class ConvTranspose:
    params = (["np", "nb"], list(LAYERS))
    param_names = ["impl", "layer"]
    timeout = 180

    def setup(self, impl, layer):
        if impl == "nb" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        n, h, w, c, co, k, stride, pad, opad = LAYERS[layer]
        rng = np.random.default_rng(0)
        self.x = np.maximum(rng.standard_normal((n, h, w, c)), 0).astype(np.float32)  # ReLU'd
        self.w = (rng.standard_normal((k, k, co, c)) * 0.1).astype(np.float32)
        self.b = np.zeros(co, dtype=np.float32)
        self.stride, self.pad, self.opad = stride, pad, opad
        self.fw = getattr(conv_transpose.conv_transpose2d_forward, impl)
        self.bw = getattr(conv_transpose.conv_transpose2d_backward, impl)
        y = self.fw(self.x, self.w, self.b, stride, pad, opad)
        self.dy = rng.standard_normal(y.shape).astype(np.float32)
        self.flops = 2 * n * h * w * c * co * k * k
        self._backward()

    def _forward(self):
        self.fw(self.x, self.w, self.b, self.stride, self.pad, self.opad)

    def _backward(self):
        self.bw(self.x, self.w, self.dy, self.stride, self.pad, True)

    def time_forward(self, impl, layer):
        self._forward()

    def time_backward(self, impl, layer):
        self._backward()

    def track_forward_gflops(self, impl, layer):
        return rate(self._forward, self.flops)

    def track_backward_gflops(self, impl, layer):
        """FLOPs of dW and dX per second."""
        return rate(self._backward, 2 * self.flops)

    track_forward_gflops.unit = track_backward_gflops.unit = "GFLOP/s"
