"""Benchmarks of the batched matrix product, and the machine's float32 matmul ceiling.

- ``MatmulCeiling.track_sgemm_gflops``: numpy's float32 GEMM on 2,048 × 2,048 matrices with
  all of its threads: the ceiling the other FLOP rates are read against (about 200 GFLOP/s on
  the 2-core reference machine).
- ``BatchedMatmul``: ``(B, M, K) @ (B, K, N)`` with the implementation ("np" twin or "nb"
  twin) as a parameter; ``track_gflops`` reports its rate.

Data come from a fixed seed; the JIT is warmed in ``setup``.
"""

import numpy as np

from fastdl import config
from fastdl.kernels import matmul
from fastdl.kernels._blas import blas_threads

from .common import rate


def sgemm_ceiling():
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    with blas_threads(config.get_num_threads()):
        return rate(lambda: a @ a, 2 * 2048**3)


class MatmulCeiling:
    timeout = 60

    def track_sgemm_gflops(self):
        return sgemm_ceiling()

    track_sgemm_gflops.unit = "GFLOP/s"


class BatchedMatmul:
    # (B, M, K, N): attention-like small matrices, and per-image conv-sized ones
    params = (["np", "nb"], ["64x32x64x32", "16x128x256x128", "64x576x288x64"])
    param_names = ["impl", "shape"]
    timeout = 120

    def setup(self, impl, shape):
        if impl == "nb" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        b, m, k, n = map(int, shape.split("x"))
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((b, m, k)).astype(np.float32)
        self.b = rng.standard_normal((b, k, n)).astype(np.float32)
        self.flops = 2 * b * m * k * n
        self.fn = getattr(matmul.batched_matmul, impl)
        self.fn(self.a, self.b, False, False)

    def time_batched_matmul(self, impl, shape):
        self.fn(self.a, self.b, False, False)

    def track_gflops(self, impl, shape):
        return rate(lambda: self.fn(self.a, self.b, False, False), self.flops)

    track_gflops.unit = "GFLOP/s"
