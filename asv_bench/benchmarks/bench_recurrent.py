"""Benchmarks of the recurrent kernels and layers, and the character-level LSTM training step.

- ``CharLSTMStep``: one training step (forward, loss, backward, Adam update) of the issue-5
  model, one-hot characters (V = 65) → LSTMLayer(256) → Dense(65) → softmax cross-entropy,
  float32, for (T 25, batch 32) and (T 64, batch 64); ``track_tokens_per_s`` reports N·T per
  second of that step (targets: ≥ 40,000 numba, ≥ 15,000 pure NumPy at T 25, batch 32).
- ``RecurrentLayer``: forward and forward + backward of each layer on dense input.
- ``TimeLoop``: each kernel's forward and backward time loop alone, with the implementation
  ("np" twin or "nb" twin) as a parameter, so the numba/NumPy ratio of each loop is one
  ``asv compare`` away; run inside ``config.compute()`` (numpy's BLAS as in a network pass).

Data come from a fixed seed; the JIT is warmed in ``setup`` so compile time is never counted.

Measurements behind the kernels' design choices (reference machine; moved here from their
docstrings): a (256, 1024) float32 weight transposed by numpy's copy or 32 × 32 blocks took
0.75 ms, by 8-row blocks 0.21 ms (``_recurrent.transposed``); with few rows per thread
OpenBLAS computed ``W_hhᵀ hᵀ`` about 1.7× faster than ``h W_hh`` (on the AVX2 machine of
PERFORMANCE.md the two took 168 and 172 µs for 16 rows, so the LSTM's forward loop now uses
``h W_hh`` and makes no transposed copy), and ``da W_hhᵀ`` from a
contiguous copy of ``W_hhᵀ`` about 2× faster than with a transposed operand; a numba
``prange`` region cost about 1 ms of wake-up per call once the main thread had done other
work in between, hence plain threads (``_threads.run_chunks``).
Threads: fastdl's default (all cores; 2 on the reference machine).
"""

import numpy as np

import fastdl as fd
from fastdl import config

from .common import BLAS_PATHS, example_flops, optional, per_second

kgru = optional("fastdl.kernels.gru")
klstm = optional("fastdl.kernels.lstm")
krnn = optional("fastdl.kernels.rnn")
recurrent = optional("fastdl.layers.recurrent")

VOCAB, HIDDEN = 65, 256
LAYERS = {"rnn": "RNNLayer", "gru": "GRULayer", "lstm": "LSTMLayer"}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def _impl(impl):
    """A context running the block on the numba kernels or on the NumPy twins."""
    return config.use_pure(impl == "numpy")


class CharLSTMStep:
    params = (["numba", "numpy"], ["T25-N32", "T64-N64"])
    param_names = ["impl", "shape"]
    timeout = 120

    def setup(self, impl, shape):
        if impl == "numba" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        t_len, n = (25, 32) if shape == "T25-N32" else (64, 64)
        rng = np.random.default_rng(0)
        ids = rng.integers(0, VOCAB, size=(n, t_len + 1))
        self.x = np.eye(VOCAB, dtype=np.float32)[ids[:, :-1]]
        self.y = np.ascontiguousarray(ids[:, 1:])
        self.net = fd.NeuralNetwork(
            layers=[recurrent.LSTMLayer(HIDDEN), fd.Dense(VOCAB)],
            loss=fd.SoftmaxCrossEntropy(),
            seed=0,
        )
        self.optim = fd.Adam(lr=1e-3, clip_norm=5.0)
        fd.Trainer(self.net, self.optim)
        self.tokens = n * t_len
        self.ctx = _impl(impl)
        with self.ctx:
            for _ in range(3):
                self._step()

    def _step(self):
        self.net.train_batch(self.x, self.y)
        self.optim.step()

    def time_step(self, impl, shape):
        with _impl(impl):
            self._step()

    def track_tokens_per_s(self, impl, shape):
        with _impl(impl):
            return per_second(self._step, self.tokens)

    track_tokens_per_s.unit = "tokens/s"

    def track_gflops(self, impl, shape):
        """Nominal rate against the machine's float32 matmul ceiling (``MatmulCeiling``): the
        step's matrix products as ``fastdl.summary.count`` gives them for one-hot input — the
        four gates' recurrent projection and the output layer, forward, and twice that
        backward; the one-hot input's projection is a row gather (see
        :mod:`fastdl.ops.recurrent`) and counts 0."""
        flops = example_flops(self.net, self.x, one_hot=True)
        with _impl(impl):
            return per_second(self._step, flops) / 1e9

    track_gflops.unit = "GFLOP/s"


class CharLSTMStepBLAS(CharLSTMStep):
    """``CharLSTMStep`` on each BLAS path (``FASTDL_BLAS``), compiled kernels throughout."""

    params = (list(BLAS_PATHS), ["T25-N32", "T64-N64"])
    param_names = ["blas", "shape"]

    def setup(self, blas, shape):
        from .bench_cnn_step import check_blas

        check_blas(blas)
        with config.use_blas(blas):
            super().setup("numba", shape)

    def time_step(self, blas, shape):
        with config.use_blas(blas):
            self._step()

    def track_tokens_per_s(self, blas, shape):
        with config.use_blas(blas):
            return per_second(self._step, self.tokens)

    def track_gflops(self, blas, shape):
        with config.use_blas(blas):
            return super().track_gflops("numba", shape)


class RecurrentLayer:
    params = (["rnn", "gru", "lstm"], ["numba", "numpy"])
    param_names = ["cell", "impl"]
    timeout = 120

    def setup(self, cell, impl):
        if impl == "numba" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((32, 25, 64)).astype(np.float32)
        self.grad = rng.standard_normal((32, 25, HIDDEN)).astype(np.float32)
        self.layer = getattr(recurrent, LAYERS[cell])(HIDDEN)
        self.layer.bind(np.random.default_rng(0), np.float32)
        with _impl(impl), config.compute():
            self.layer.forward(self.x)
            self.layer.backward(self.grad)

    def time_forward(self, cell, impl):
        with _impl(impl), config.compute():
            self.layer.forward(self.x)

    def time_forward_backward(self, cell, impl):
        with _impl(impl), config.compute():
            self.layer.forward(self.x)
            self.layer.backward(self.grad)


class TimeLoop:
    params = (["rnn", "gru", "lstm"], ["np", "nb"], ["dense", "ids"])
    param_names = ["cell", "impl", "input"]
    timeout = 120

    def setup(self, cell, impl, input):
        if impl == "nb" and config.PURE_AT_IMPORT:
            raise NotImplementedError("numba kernels unavailable (FASTDL_PURE=1)")
        n, t_len, d, h, g = 32, 25, VOCAB, HIDDEN, GATES[cell]
        rng = np.random.default_rng(0)
        f32 = np.float32
        ids = rng.integers(0, d, size=(n, t_len))
        self.x = ids if input == "ids" else np.eye(d, dtype=f32)[ids]
        w_ih = (rng.standard_normal((d, g * h)) * 0.1).astype(f32)
        w_hh = (rng.standard_normal((h, g * h)) / np.sqrt(h)).astype(f32)
        bias = np.zeros(g * h, f32)
        h0 = np.zeros((n, h), f32)
        self.dhs = rng.standard_normal((n, t_len, h)).astype(f32)
        if cell == "lstm":
            fwd, bwd = klstm.lstm_forward, klstm.lstm_backward
            self.fargs = (self.x, w_ih, w_hh, bias, h0, h0)
            self.bargs = (self.x, w_ih, w_hh, h0, h0)
        elif cell == "gru":
            fwd, bwd = kgru.gru_forward, kgru.gru_backward
            self.fargs = (self.x, w_ih, w_hh, bias, bias, h0)
            self.bargs = (self.x, w_ih, w_hh, h0)
        else:
            fwd, bwd = krnn.rnn_forward, krnn.rnn_backward
            self.fargs = (self.x, w_ih, w_hh, bias, h0)
            self.bargs = (self.x, w_ih, w_hh, h0)
        self.fwd, self.bwd = getattr(fwd, impl), getattr(bwd, impl)
        saved = self.fwd(*self.fargs)
        self.saved = saved if isinstance(saved, tuple) else (saved,)
        self.bwd(*self.bargs, *self.saved, self.dhs, False)

    def time_forward(self, cell, impl, input):
        with config.compute():
            self.fwd(*self.fargs)

    def time_backward(self, cell, impl, input):
        with config.compute():
            self.bwd(*self.bargs, *self.saved, self.dhs, False)
