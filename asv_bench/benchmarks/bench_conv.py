"""Benchmarks of the convolution kernels and im2col, numba twin against NumPy twin.

Shapes are the layers of the reference MNIST CNN (batch 64: conv1 1→32 and conv2 32→64,
3×3, no padding) and of the book's chapter-5 CNN (batch 60: 1→16, 5×5, "same"), float32,
channels-last as the kernels take them. ``track_*_gflops`` report each kernel's FLOP rate;
read it against ``bench_matmul.MatmulCeiling.track_sgemm_gflops`` (the machine's ceiling).
The backward of conv1 skips the input gradient (a network's first layer); conv2's takes the
gradient a 2×2 max-pool sends back (sparse: about 1 in 5 entries non-zero).

``timeraw_first_conv_cold`` times a fresh process that imports fastdl and runs one Conv2D
forward and backward with an empty numba cache (compile time); ``..._warm`` the same with the
cache filled.

Data come from a fixed seed; the JIT is warmed in ``setup``.

Measurements behind the kernels' design choices (reference machine, one thread, float32;
moved here from the kernels' docstrings):

- im2col per image: copying a kernel row as one run vs one pixel's channels at a time:
  0.87 vs 0.56 ms for 64 grey 28 × 28 images and 3 × 3 patches, 1.3 vs 5.5 ms with 32
  channels (so runs for fewer than 8 channels, pixels otherwise);
- the reference CNN's conv1 as direct loops: 1.9 ms against 1.4 ms for im2col + GEMM;
- conv2's backward, scatter-AXPYs over the non-zeros against GEMMs: equal speed at 21%
  non-zeros, 1.5× faster at 12% (``SPARSE_MAX_DENSITY = 0.18``).
"""

import numpy as np

from fastdl import config
from fastdl.kernels import conv, im2col, pool

from .common import rate, require

IM2COL = {"np": ("im2col_np", "col2im_np"), "nb": ("im2col_image", "col2im_image")}

LAYERS = {
    # name: (N, H, W, C_in, C_out, K, pad, relu, need_dx)
    "conv1": (64, 28, 28, 1, 32, 3, (0, 0, 0, 0), True, False),
    "conv2": (64, 26, 26, 32, 64, 3, (0, 0, 0, 0), True, True),
    "book": (60, 28, 28, 1, 16, 5, (2, 2, 2, 2), False, False),
}


class Conv:
    params = (["np", "nb"], list(LAYERS))
    param_names = ["impl", "layer"]
    timeout = 180

    def setup(self, impl, layer):
        if impl == "nb" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        n, h, w, c, co, k, pad, relu, need_dx = LAYERS[layer]
        rng = np.random.default_rng(0)
        self.x = np.abs(rng.standard_normal((n, h, w, c))).astype(np.float32)
        self.w = (rng.standard_normal((k, k, c, co)) * 0.1).astype(np.float32)
        self.b = np.zeros(co, dtype=np.float32)
        self.args = (1, pad, relu)
        self.need_dx = need_dx
        self.fw = getattr(conv.conv2d_forward, impl)
        self.bw = getattr(conv.conv2d_backward, impl)
        self.y = self.fw(self.x, self.w, self.b, *self.args)
        if layer == "conv2":  # the gradient a 2×2 max-pool sends back
            p, idx = pool.maxpool_forward.np(self.y, 2, 2)
            g = rng.standard_normal(p.shape).astype(np.float32)
            self.dy = pool.maxpool_backward.np(g, idx, *self.y.shape[1:3], 2, 2)
        else:
            self.dy = rng.standard_normal(self.y.shape).astype(np.float32)
        oh, ow = self.y.shape[1:3]
        self.flops = 2 * n * oh * ow * co * k * k * c
        self._backward()

    def _forward(self):
        self.fw(self.x, self.w, self.b, *self.args)

    def _backward(self):
        self.bw(self.x, self.w, self.y, self.dy, *self.args, self.need_dx)

    def time_forward(self, impl, layer):
        self._forward()

    def time_backward(self, impl, layer):
        self._backward()

    def track_forward_gflops(self, impl, layer):
        return rate(self._forward, self.flops)

    def track_backward_gflops(self, impl, layer):
        """Dense-equivalent FLOPs (dW, plus dX where computed) per second."""
        return rate(self._backward, self.flops * (2 if self.need_dx else 1))

    track_forward_gflops.unit = track_backward_gflops.unit = "GFLOP/s"


class Im2col:
    """The reference CNN's conv2 patches (64 images of 26 × 26 × 32, 3 × 3, stride 1):
    ``im2col_np``/``col2im_np`` on the whole batch ("np", the NumPy twin's path) against the
    compiled one-image ``im2col_image``/``col2im_image`` over the batch ("nb", what the
    convolution's numba twins run per image; here one thread, called image by image).
    Skipped on commits that have neither."""

    params = ["np", "nb"]
    param_names = ["impl"]

    def setup(self, impl):
        if impl == "nb" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        require(im2col, "output_size", *IM2COL[impl])
        self.x = np.random.default_rng(0).standard_normal((64, 26, 26, 32)).astype(np.float32)
        self.shape = (26, 26, 3, 3, 1, (0, 0, 0, 0))  # H, W, KH, KW, stride, pad
        self.out = im2col.output_size(*self.shape)  # OH, OW
        self.rows, self.cols = self.out[0] * self.out[1], 3 * 3 * 32
        self.to_col, self.to_image = (
            getattr(self, f"_im2col_{impl}"),
            getattr(self, f"_col2im_{impl}"),
        )
        self.col = self.to_col()
        self.to_image()

    def _im2col_np(self):
        return im2col.im2col_np(self.x, *self.shape[2:])

    def _col2im_np(self):
        return im2col.col2im_np(self.col, *self.shape)

    def _im2col_nb(self):
        _, _, kh, kw, stride, (pt, _, pl, _) = self.shape
        oh, ow = self.out
        col = np.empty((len(self.x), self.rows, self.cols), np.float32)
        for i in range(len(self.x)):
            im2col.im2col_image(self.x[i], kh, kw, stride, pt, pl, oh, ow, col[i])
        return col

    def _col2im_nb(self):
        _, _, kh, kw, stride, (pt, _, pl, _) = self.shape
        oh, ow = self.out
        x = np.zeros_like(self.x)
        for i in range(len(self.x)):
            im2col.col2im_image(self.col[i], kh, kw, stride, pt, pl, oh, ow, x[i])
        return x

    def time_im2col(self, impl):
        self.to_col()

    def time_col2im(self, impl):
        self.to_image()


FIRST_CONV = """
import numpy as np
from fastdl.layers.conv import Conv2D
from fastdl.ops.activations import ReLU
x = np.ones((4, 8, 12, 12), dtype=np.float32)
layer = Conv2D(16, 3, activation=ReLU())
y = layer.forward(x)
layer.backward(y)
"""


class CompileTime:
    timeout = 300

    def timeraw_first_conv_cold(self):
        setup = "import os, tempfile; os.environ['NUMBA_CACHE_DIR'] = tempfile.mkdtemp()"
        return FIRST_CONV, setup

    def timeraw_first_conv_warm(self):
        return FIRST_CONV


class Conv3x3Forward:
    """conv2's forward in the numba twin by each route: Winograd's F(2×2, 3×3) (the default
    for 3×3 stride-1 with ≥ ``WINOGRAD_MIN_C_IN`` input channels) against im2col + GEMM,
    at the training batch (64) and the inference batch (1,000). The FLOP rate counts the
    direct sum's FLOPs for both, so it reads as speed."""

    params = (["im2col", "winograd"], [64, 1000])
    param_names = ["route", "batch"]
    timeout = 180

    def setup(self, route, batch):
        if config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        require(conv, "WINOGRAD_MIN_C_IN")
        rng = np.random.default_rng(0)
        self.x = np.abs(rng.standard_normal((batch, 26, 26, 32))).astype(np.float32)
        self.w = (rng.standard_normal((3, 3, 32, 64)) * 0.1).astype(np.float32)
        self.b = np.zeros(64, dtype=np.float32)
        self.flops = 2 * batch * 24 * 24 * 64 * 9 * 32
        self.saved = conv.WINOGRAD_MIN_C_IN
        conv.WINOGRAD_MIN_C_IN = self.saved if route == "winograd" else 1 << 30
        self._forward()

    def teardown(self, route, batch):
        if hasattr(self, "saved"):
            conv.WINOGRAD_MIN_C_IN = self.saved

    def _forward(self):
        conv.conv2d_forward.nb(self.x, self.w, self.b, 1, (0, 0, 0, 0), True)

    def time_forward(self, route, batch):
        self._forward()

    def track_gflops(self, route, batch):
        return rate(self._forward, self.flops)

    track_gflops.unit = "GFLOP/s"
