"""fastdl.book: the book's own library (``lincoln``), on fastdl's kernels.

*Deep Learning from Scratch* (Seth Weidman, 2019) builds a small library, ``lincoln``, and
its notebooks import it. ``fastdl.book`` has the same module names, class names, signatures
and defaults, so that a notebook runs after replacing ``lincoln`` by ``fastdl.book`` in its
import lines — and trains on fastdl's compiled kernels, with the book's bugs fixed::

    from fastdl.book.layers import Dense            # was: from lincoln.layers import Dense
    from fastdl.book.losses import SoftmaxCrossEntropy
    from fastdl.book.network import NeuralNetwork
    from fastdl.book.optimizers import SGDMomentum
    from fastdl.book.train import Trainer
    from fastdl.book.utils import mnist

The classes here are fastdl's classes with the book's defaults (float64, ``weight_init=
"standard"`` drawn from NumPy's global generator exactly as the book draws it, the book's
mean squared error), not a second implementation. Where the book's code is wrong (its
convolution gradients, its GRU's update gate, its cross-entropy's reported value, its ReLU's
backward mask), fastdl.book is right; the README's "fastdl.book" section lists every
deliberate difference and why.
"""

from fastdl.book import _registry  # noqa: E402, F401 (book networks can be saved and loaded)
