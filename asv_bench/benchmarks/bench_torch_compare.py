"""The same CNN steps in PyTorch, when ``torch`` is installed (skipped otherwise).

Measured in the same run as ``bench_cnn_step`` so the ratio fastdl/PyTorch is read on one
machine under one load. PyTorch is never a dependency of fastdl: ``pip install
torch==2.13.0`` (a CPU build) to run these. Threads: as many as fastdl uses.

- ``TorchStep.track_images_per_s``: reference CNN without dropout (Adadelta, batch 64) and
  the book's CNN (SGD momentum, batch 60), training images per second.
- ``TorchInference.track_images_per_s``: the reference CNN's forward on 1,000 images.
"""

import numpy as np

from fastdl import config

from .common import per_second


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
                nn.Conv2d(1, 16, 5, padding=2), nn.Tanh(), nn.Dropout(0.2), nn.Flatten(),
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
