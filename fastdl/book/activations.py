"""The book's activations (``lincoln.activations``): fastdl's, which the book's names import.

``Linear`` (the identity), ``Sigmoid``, ``Tanh`` and ``ReLU``, the same classes as
``fastdl.Linear`` etc. One deliberate difference: the book's ``ReLU`` passes the gradient
where ``output >= 0`` — everywhere, since a ReLU's output is never negative — so its "ReLU"
trains as a linear layer backward (that is why the book's chapter-4 ReLU run reads 71.84%);
fastdl's passes it where the output is positive.
"""

from fastdl.ops.activations import Linear, ReLU, Sigmoid, Tanh

__all__ = ["Linear", "Sigmoid", "Tanh", "ReLU"]
