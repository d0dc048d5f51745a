"""The book's ``Dropout(keep_prob=0.8)`` operation (``lincoln.dropout``), fastdl's.

A deliberate difference: fastdl's dropout is *inverted* — kept elements are divided by
``keep_prob`` while training and inference passes the input unchanged — where the book
multiplies by the 0/1 mask while training and by ``keep_prob`` at inference. The two are
equal in expectation (every unit's expected training output equals its inference output)
and differ by the constant factor ``keep_prob`` on the scale of the training pass. The masks
come from the network's ``numpy.random.Generator`` (a book layer binds its own dropouts),
not from NumPy's global generator.
"""

from fastdl.ops.dropout import Dropout

__all__ = ["Dropout"]
