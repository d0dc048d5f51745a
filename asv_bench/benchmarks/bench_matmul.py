"""Benchmarks of the dense layer's matrix product, and the machine's float32 matmul ceiling.

- ``MatmulCeiling.track_sgemm_gflops``: numpy's float32 GEMM on 2,048 × 2,048 matrices with
  all of its threads: the ceiling the other FLOP rates are read against (about 200 GFLOP/s on
  the 2-core reference machine).
- ``DenseMatmul``: the reference CNN's dense products, NumPy twin against the compiled twins.

Data come from a fixed seed; the JIT is warmed in ``setup``.
"""

import numpy as np

from fastdl import config
from fastdl.kernels import matmul
from fastdl.kernels._blas import blas_threads, get_blas_threads, set_blas_threads

from .common import rate, require


def sgemm_ceiling():
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(np.float32)
    with blas_threads(config.get_num_threads()):
        return rate(lambda: a @ a, 2 * 2048**3)


class MatmulCeiling:
    timeout = 60

    def track_sgemm_gflops(self):
        return sgemm_ceiling()

    track_sgemm_gflops.unit = "GFLOP/s"


class DenseMatmul:
    """The reference CNN's dense layer (batch 64, 9,216 → 128) as a network pass runs it:
    NumPy's product on one BLAS thread ("np", as inside ``fastdl.config.compute()``) against
    ``matmul``'s blocks over fastdl's threads ("nb")."""

    # product: forward x @ W, input gradient dy @ Wᵀ, weight gradient xᵀ @ dy
    params = (["np", "nb"], ["forward", "input-grad", "weight-grad"])
    param_names = ["impl", "product"]

    def setup(self, impl, product):
        if impl == "nb" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        require(matmul, "matmul")  # batched_matmul before the dense kernels
        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, 9216)).astype(np.float32)
        w = rng.standard_normal((9216, 128)).astype(np.float32)
        dy = rng.standard_normal((64, 128)).astype(np.float32)
        self.args = {
            "forward": (x, w, False, False),
            "input-grad": (dy, w, False, True),
            "weight-grad": (x, dy, True, False),
        }[product]
        self.flops = 2 * 64 * 9216 * 128
        self.fn = getattr(matmul.matmul, impl)
        self.blas_threads = get_blas_threads()
        set_blas_threads(1)  # as inside a network pass
        self.time_product(impl, product)

    def teardown(self, impl, product):
        if hasattr(self, "blas_threads"):  # asv tears down a skipped setup too
            set_blas_threads(self.blas_threads)

    def time_product(self, impl, product):
        self.fn(*self.args)

    def track_gflops(self, impl, product):
        return rate(lambda: self.fn(*self.args), self.flops)

    track_gflops.unit = "GFLOP/s"
