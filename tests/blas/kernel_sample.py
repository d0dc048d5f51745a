"""Every kernel that multiplies matrices, on small fixed inputs: what each BLAS path must agree on.

``sample()`` calls the public (dispatching) kernels, so it runs whatever path the process is
on; ``reference()`` calls their NumPy twins. Run as a script, it writes ``sample()`` and
``fastdl.kernels._blas.info()`` to the ``.npz`` file named on the command line (the tests
run it in a fresh process for each ``FASTDL_BLAS`` / ``FASTDL_BLAS_LIBRARY`` setting).
"""

from __future__ import annotations

import json
import sys

import numpy as np


def _inputs(dtype):
    rng = np.random.default_rng(11)
    f = lambda *shape: rng.standard_normal(shape).astype(dtype)  # noqa: E731
    return {
        "conv": (f(3, 9, 8, 4), f(3, 3, 4, 5), f(5)),
        "dense": (f(33, 17), f(17, 9), f(33, 9)),
        "seq": (f(5, 4, 6), rng.integers(0, 6, (5, 4)), f(5, 4, 7)),
        "rnn": (f(6, 7) * 0.5, f(7, 7) * 0.5, f(7), f(5, 7)),
        "gru": (f(6, 21) * 0.5, f(7, 21) * 0.5, f(21), f(21), f(5, 7)),
        "lstm": (f(6, 28) * 0.5, f(7, 28) * 0.5, f(28), f(5, 7), f(5, 7)),
    }


def _run(twin):
    from fastdl.kernels import conv, gru, lstm, matmul, rnn

    pick = (lambda fn: fn) if twin is None else (lambda fn: getattr(fn, twin))
    out = {}
    for dtype in (np.float32, np.float64):
        tag = np.dtype(dtype).name
        arrays = _inputs(dtype)
        x, w, b = arrays["conv"]
        for pad, stride in (((1, 1, 1, 1), 1), ((0, 1, 2, 0), 2)):
            y = pick(conv.conv2d_forward)(x, w, b, stride, pad, True)
            dy = np.ones_like(y)
            key = f"conv{stride}-{tag}"
            out[key + "-y"] = y
            for name, g in zip("dx dw db".split(), pick(conv.conv2d_backward)(
                    x, w, y, dy, stride, pad, True, True), strict=True):  # fmt: skip
                out[f"{key}-{name}"] = g
        a, bb, dy = arrays["dense"]
        out[f"matmul-nn-{tag}"] = pick(matmul.matmul)(a, bb, False, False)
        out[f"matmul-nt-{tag}"] = pick(matmul.matmul)(dy, bb, False, True)
        out[f"matmul-tn-{tag}"] = pick(matmul.matmul)(a, dy, True, False)
        xs, ids, dhs = arrays["seq"]
        for cell, fwd, bwd in (("rnn", rnn.rnn_forward, rnn.rnn_backward),
                               ("gru", gru.gru_forward, gru.gru_backward),
                               ("lstm", lstm.lstm_forward, lstm.lstm_backward)):  # fmt: skip
            params = arrays[cell]
            w_ih, w_hh = params[0], params[1]
            n_biases = {"rnn": 1, "gru": 2, "lstm": 1}[cell]
            state = params[2 + n_biases :]
            for kind, inp in (("dense", xs), ("ids", ids)):
                saved = pick(fwd)(inp, *params)
                saved = saved if isinstance(saved, tuple) else (saved,)
                grads = pick(bwd)(inp, w_ih, w_hh, *state, *saved, dhs, True)
                for i, s in enumerate(saved):
                    out[f"{cell}-{kind}-{tag}-saved{i}"] = s
                for i, g in enumerate(grads):
                    if g is not None:
                        out[f"{cell}-{kind}-{tag}-grad{i}"] = g
    return out


def sample() -> dict[str, np.ndarray]:
    """Every kernel through its public name (the process's BLAS path)."""
    return _run(None)


def reference() -> dict[str, np.ndarray]:
    """The same through the NumPy twins."""
    return _run("np")


def shim_calls(path: str) -> dict[str, int]:
    """How often a stand-in library's (``shim.c``) entry points ran; {} for a real library."""
    import ctypes

    lib = ctypes.CDLL(path)
    try:
        return {k: ctypes.c_int64.in_dll(lib, f"shim_calls_{k}").value for k in ("lp64", "ilp64")}
    except ValueError:
        return {}


if __name__ == "__main__":
    import os

    from fastdl.kernels import _blas

    result = sample()
    report = _blas.info()
    if os.environ.get("FASTDL_BLAS_LIBRARY"):
        report["shim_calls"] = shim_calls(os.environ["FASTDL_BLAS_LIBRARY"])
    result["info"] = np.array(json.dumps(report))
    np.savez(sys.argv[1], **result)
