"""The same CNN steps in PyTorch, when ``torch`` is installed (skipped otherwise).

Measured in the same run as ``bench_cnn_step`` so the ratio fastdl/PyTorch is read on one
machine under one load. PyTorch is never a dependency of fastdl: ``pip install
torch==2.13.0`` (a CPU build) to run these. Threads: as many as fastdl uses.

- ``TorchStep.track_images_per_s``: reference CNN without dropout (Adadelta, batch 64) and
  the book's CNN (SGD momentum, batch 60), training images per second.
- ``TorchInference.track_images_per_s``: the reference CNN's forward on 1,000 images.
- ``TorchCharLSTMStep.track_tokens_per_s``: one-hot characters (V = 65) → ``nn.LSTM(256)``
  → ``nn.Linear(65)``, Adam after ``clip_grad_norm_(5)``, as ``bench_recurrent.CharLSTMStep``.
- ``TorchStepMemory.track_step_peak_mib``: the reference CNN step's peak memory, as
  ``bench_cnn_step.CNNStepMemory`` measures fastdl's.

No dropout on either side (as the peers' table of issue 15): a step then measures the same
arithmetic in both libraries rather than their random-number generators.
"""

import numpy as np

from fastdl import config

from .common import peak_step_mib, per_second

VOCAB, HIDDEN = 65, 256


def _torch():
    try:
        import torch
    except ImportError:
        raise NotImplementedError("torch is not installed") from None
    torch.set_num_threads(config.get_num_threads())
    return torch


def _models(torch):
    nn = torch.nn
    return {
        "reference": (
            lambda: nn.Sequential(
                nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                nn.MaxPool2d(2), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(),
                nn.Linear(128, 10),
            ),
            lambda p: torch.optim.Adadelta(p, lr=1.0),
            64,
        ),
        "book": (
            lambda: nn.Sequential(
                nn.Conv2d(1, 16, 5, padding=2), nn.Tanh(), nn.Flatten(),
                nn.Linear(16 * 28 * 28, 10),
            ),
            lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
            60,
        ),
    }  # fmt: skip


class TorchStep:
    params = ["reference", "book"]
    param_names = ["model"]
    timeout = 300

    def setup(self, model):
        torch = _torch()
        torch.manual_seed(0)
        build, optimizer, batch = _models(torch)[model]
        self.net = build()
        self.optim = optimizer(self.net.parameters())
        rng = np.random.default_rng(0)
        self.x = torch.from_numpy(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
        self.y = torch.from_numpy(rng.integers(0, 10, batch))
        self.loss = torch.nn.CrossEntropyLoss()
        self._step()

    def _step(self):
        self.optim.zero_grad()
        self.loss(self.net(self.x), self.y).backward()
        self.optim.step()

    def time_train_step(self, model):
        self._step()

    def track_images_per_s(self, model):
        return per_second(self._step, len(self.x))

    track_images_per_s.unit = "images/s"


class TorchInference:
    timeout = 300

    def setup(self):
        torch = _torch()
        torch.manual_seed(0)
        self.torch = torch
        self.net = _models(torch)["reference"][0]().eval()
        x = np.random.default_rng(0).standard_normal((1000, 1, 28, 28)).astype(np.float32)
        self.x = torch.from_numpy(x)

    def _forward(self):
        with self.torch.no_grad():
            self.net(self.x)

    def track_images_per_s(self):
        return per_second(self._forward, len(self.x))

    track_images_per_s.unit = "images/s"


class TorchCharLSTMStep:
    params = ["T25-N32", "T64-N64"]
    param_names = ["shape"]
    timeout = 300

    def setup(self, shape):
        torch = _torch()
        torch.manual_seed(0)
        t_len, n = (25, 32) if shape == "T25-N32" else (64, 64)
        rng = np.random.default_rng(0)
        ids = rng.integers(0, VOCAB, size=(n, t_len + 1))
        self.x = torch.from_numpy(np.eye(VOCAB, dtype=np.float32)[ids[:, :-1]])
        self.y = torch.from_numpy(np.ascontiguousarray(ids[:, 1:]).reshape(-1))
        self.lstm = torch.nn.LSTM(VOCAB, HIDDEN, batch_first=True)
        self.out = torch.nn.Linear(HIDDEN, VOCAB)
        self.params = list(self.lstm.parameters()) + list(self.out.parameters())
        self.optim = torch.optim.Adam(self.params, lr=1e-3)
        self.loss = torch.nn.CrossEntropyLoss()
        self.torch = torch
        self.tokens = n * t_len
        self._step()

    def _step(self):
        self.optim.zero_grad()
        h, _ = self.lstm(self.x)
        self.loss(self.out(h).reshape(-1, VOCAB), self.y).backward()
        self.torch.nn.utils.clip_grad_norm_(self.params, 5.0)
        self.optim.step()

    def time_step(self, shape):
        self._step()

    def track_tokens_per_s(self, shape):
        return per_second(self._step, self.tokens)

    track_tokens_per_s.unit = "tokens/s"


TORCH_MEMORY = """
import numpy as np
from benchmarks.bench_torch_compare import _models, _torch
torch = _torch()
torch.manual_seed(0)
model, optimizer, batch = _models(torch)["reference"]
rng = np.random.default_rng(0)
X = torch.from_numpy(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
Y = torch.from_numpy(rng.integers(0, 10, batch))
def build():
    net = model()
    optim = optimizer(net.parameters())
    loss = torch.nn.CrossEntropyLoss()
    def step():
        optim.zero_grad()
        loss(net(X), Y).backward()
        optim.step()
    return step
"""


class TorchStepMemory:
    timeout = 300

    def setup(self):
        _torch()

    def track_step_peak_mib(self):
        """MiB that training the reference CNN (batch 64) takes at its peak: weights,
        optimizer state, activations, gradients and workspace (:func:`common.peak_step_mib`)."""
        return peak_step_mib(TORCH_MEMORY)

    track_step_peak_mib.unit = "MiB"
