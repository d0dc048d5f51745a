"""The book-compatible namespace costs nothing: ``fastdl.book`` networks against the same
networks built from fastdl's own layers, step for step.

- ``BookStep``: one training step (forward, loss, backward, optimizer update), float64 as the
  book computes, of chapter 4's best network (784 → 89 tanh → 10, softmax cross-entropy,
  SGD with momentum, batch 60) and of chapter 5's CNN (16@5×5 "same" tanh, keep 0.8,
  flatten → Dense 10, batch 60). ``track_images_per_s`` reports training images per second;
  ``impl="book"`` builds it from ``fastdl.book``, ``impl="fastdl"`` from ``fastdl``'s classes
  (fastdl's Conv2D has a bias the book's has not: one extra vector add).

Skipped on commits before ``fastdl.book``.
"""

import numpy as np

from .common import per_second


def _nets(model):
    import fastdl as fd

    try:
        from fastdl.book import layers as book_layers
        from fastdl.book.losses import SoftmaxCrossEntropy
        from fastdl.book.network import NeuralNetwork
        from fastdl.book.optimizers import SGDMomentum
    except ImportError:
        raise NotImplementedError("no fastdl.book in this commit") from None
    if model == "ch4-dense":
        book = NeuralNetwork([book_layers.Dense(89, fd.Tanh(), weight_init="glorot"),
                              book_layers.Dense(10, weight_init="glorot")],
                             SoftmaxCrossEntropy(), seed=0)  # fmt: skip
        plain = fd.NeuralNetwork([fd.Dense(89, fd.Tanh()), fd.Dense(10)], fd.SoftmaxCrossEntropy(),
                                 seed=0, dtype=np.float64)  # fmt: skip
        shape = (60, 784)
    else:
        book = NeuralNetwork([book_layers.Conv2D(16, 5, dropout=0.8, weight_init="glorot",
                                                 activation=fd.Tanh(), flatten=True),
                              book_layers.Dense(10)], SoftmaxCrossEntropy(), seed=0)  # fmt: skip
        plain = fd.NeuralNetwork([fd.Conv2D(16, 5, activation=fd.Tanh(), dropout=0.8, flatten=True),
                                  fd.Dense(10)], fd.SoftmaxCrossEntropy(), seed=0,
                                 dtype=np.float64)  # fmt: skip
        shape = (60, 1, 28, 28)
    return {"book": (book, SGDMomentum(0.1, momentum=0.9)),
            "fastdl": (plain, fd.SGDMomentum(0.1, momentum=0.9))}, shape  # fmt: skip


class BookStep:
    params = (["book", "fastdl"], ["ch4-dense", "ch5-cnn"])
    param_names = ["impl", "model"]
    timeout = 300

    def setup(self, impl, model):
        import fastdl as fd

        nets, shape = _nets(model)
        self.net, self.optim = nets[impl]
        fd.Trainer(self.net, self.optim)
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal(shape)
        self.y = np.eye(10)[rng.integers(0, 10, shape[0])]
        for _ in range(2):
            self._step()

    def _step(self):
        self.net.train_batch(self.x, self.y)
        self.optim.step()

    def time_step(self, impl, model):
        self._step()

    def track_images_per_s(self, impl, model):
        return per_second(self._step, len(self.x))

    track_images_per_s.unit = "images/s"
