"""Optimizer updates over the reference CNN's 1,199,882 float32 parameters, in one array:
each rule's numba kernel (one pass) against its NumPy twin (several whole-array passes).

``time_update`` times one update of every parameter; ``track_gb_per_s`` reports the bytes
read and written per second (parameter, gradient and state arrays, 4 bytes each). Skipped
on commits before ``fastdl.kernels.optim``.
"""

import numpy as np

from .common import per_second

N_PARAMS = 1_199_882

# rule → (number of state arrays, scalar arguments)
RULES = {
    "sgd_momentum": (1, (0.01, 0.9, False)),
    "adagrad": (1, (0.01, 1e-7)),
    "rmsprop": (1, (0.001, 0.9, 1e-7)),
    "adam": (2, (0.001, 0.9, 0.999, 1.0, 1e-8)),
    "adadelta": (2, (1.0, 0.9, 1e-6)),
}


class OptimizerUpdate:
    params = (["numba", "numpy"], list(RULES))
    param_names = ["impl", "rule"]

    def setup(self, impl, rule):
        try:
            from fastdl.kernels import optim
        except ImportError:
            raise NotImplementedError("no fastdl.kernels.optim in this commit") from None
        n_states, scalars = RULES[rule]
        rng = np.random.default_rng(0)
        self.arrays = [rng.standard_normal(N_PARAMS).astype(np.float32) for _ in range(2)]
        self.arrays += [np.abs(rng.standard_normal(N_PARAMS)).astype(np.float32)
                        for _ in range(n_states)]  # fmt: skip
        fn = getattr(optim, f"{rule}_update_{'nb' if impl == 'numba' else 'np'}")
        self.call = lambda: fn(*self.arrays, *scalars)
        self.bytes = 4 * N_PARAMS * (2 * len(self.arrays) - 1)  # read all, write all but g
        self.call()

    def time_update(self, impl, rule):
        self.call()

    def track_gb_per_s(self, impl, rule):
        return per_second(self.call, self.bytes) / 1e9

    track_gb_per_s.unit = "GB/s"
