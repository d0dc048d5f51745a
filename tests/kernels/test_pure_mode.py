"""FASTDL_PURE=1: numba is never imported, and the CNN layers (and the transposed
convolution) still train, on batches translated by ``fd.augment.RandomTranslate``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import fastdl
    from fastdl.layers.conv import Conv2D
    from fastdl.layers.conv_transpose import Conv2DTranspose
    from fastdl.layers.pool import MaxPool2D
    from fastdl.ops.activations import ReLU

    assert fastdl.config.pure()
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    x = fastdl.augment.RandomTranslate(2)(x, np.random.default_rng(1))
    conv, pool = Conv2D(4, 3, activation=ReLU()), MaxPool2D(2)
    y = pool.forward(conv.forward(x))
    conv.backward(pool.backward(np.ones_like(y)))
    assert y.shape == (2, 4, 4, 4), y.shape
    up = Conv2DTranspose(2, 3, stride=2, padding=1, output_padding=1, activation=ReLU())
    u = up.forward(y)
    assert up.backward(np.ones_like(u)).shape == y.shape and u.shape == (2, 2, 8, 8), u.shape
    from fastdl.layers.batchnorm import BatchNorm1D, BatchNorm2D
    bn, bn1 = BatchNorm2D(activation=ReLU()), BatchNorm1D()
    z = bn.forward(conv.forward(x))
    assert bn.backward(np.ones_like(z)).shape == z.shape and bn.num_batches_tracked == 1
    assert bn.forward(z, inference=True).shape == z.shape
    assert bn1.backward(bn1.forward(x.reshape(2, -1))).shape == (2, 64)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("numba", "llvmlite"))
    print("LOADED", loaded)
    """
)


def test_pure_mode_never_imports_numba():
    env = dict(os.environ, FASTDL_PURE="1")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout, result.stdout
