"""Layer: a sequence of operations that owns parameters and sets itself up on first use.

As in the book, a layer builds its operations lazily in ``_setup_layer`` on the first forward
pass, when the input size is known. ``forward`` runs the operations in order; ``backward`` runs
them in reverse; ``params`` / ``param_grads`` list the learnable arrays and their gradients
(the optimizer updates ``params`` in place, so the operations see the new values).

A network binds each layer to its random generator and dtype (``bind``). A layer used on its own
takes the dtype of its first input and a generator seeded with 0.
"""

from __future__ import annotations

import abc

import numpy as np

from fastdl.ops.base import Operation, check_same_shape

__all__ = ["Layer"]


class Layer(abc.ABC):
    """Base class of all layers.

    Subclasses implement ``_setup_layer(x)``, which creates ``self.operations``, and may
    override ``_check_input(x)`` to validate the input (called on every forward pass, before
    any arithmetic) and ``forward`` / ``backward`` where a fused computation pays.
    """

    #: False for layers that take integer input (token ids); others require floats.
    float_input = True

    def __init__(self) -> None:
        self.first = True
        self.operations: list[Operation] = []
        self.rng: np.random.Generator | None = None
        self.dtype: np.dtype | None = None
        self.skip_input_grad = False
        self.input_: np.ndarray | None = None
        self.output: np.ndarray | None = None
        self.input_grad: np.ndarray | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    def bind(self, rng: np.random.Generator, dtype: np.dtype) -> None:
        """Use ``rng`` for initialisation and dropout, and ``dtype`` for parameters."""
        self.rng = rng
        self.dtype = np.dtype(dtype)

    def reset(self) -> None:
        """Forget the parameters: the next forward pass initialises them anew."""
        self.first = True
        self.operations = []

    def reset_state(self) -> None:  # noqa: B027 (optional hook)
        """Forget state carried between batches (stateful layers override this)."""

    @property
    def params(self) -> list[np.ndarray]:
        """The learnable arrays of this layer, in a fixed order."""
        return [p for op in self.operations for p in op.parameters()]

    @property
    def param_grads(self) -> list[np.ndarray]:
        """Gradients of :attr:`params` from the last backward pass, in the same order."""
        return [g for op in self.operations for g in op.parameter_grads()]

    def _check_input(self, x: np.ndarray) -> None:
        """Raise a clear error for input this layer cannot take (before any arithmetic)."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self.name}: expected a numpy array, got {type(x).__name__}")
        if x.size == 0:
            raise ValueError(f"{self.name}: got an empty array of shape {x.shape}")
        if self.float_input and not np.issubdtype(x.dtype, np.floating):
            raise TypeError(
                f"{self.name}: expected floating-point input, got dtype {x.dtype} "
                "(scale integer data to floats first, e.g. fastdl.datasets.scale_images)"
            )
        if self.float_input and self.dtype is not None and x.dtype != self.dtype:
            raise TypeError(f"{self.name}: expected dtype {self.dtype}, got {x.dtype}")

    @abc.abstractmethod
    def _setup_layer(self, x: np.ndarray) -> None:
        """Create parameters and ``self.operations`` for input like ``x``."""

    def _setup(self, x: np.ndarray) -> None:
        if self.dtype is None:
            self.dtype = x.dtype if self.float_input else np.dtype(np.float32)
        if self.rng is None:
            self.rng = np.random.default_rng(0)
        self._setup_layer(x)
        if self.operations:
            self.operations[0].skip_input_grad = self.skip_input_grad
        self.first = False

    def forward(self, x: np.ndarray, inference: bool = False) -> np.ndarray:
        """Run the operations in order; shapes are given by each subclass."""
        self._check_input(x)
        if self.first:
            self._setup(x)
        self.input_ = x
        for op in self.operations:
            x = op.forward(x, inference)
        self.output = x
        return x

    def backward(self, output_grad: np.ndarray) -> np.ndarray | None:
        """Run the operations in reverse; returns the input gradient (``None`` if skipped)."""
        if self.output is None:
            raise RuntimeError(f"{self.name}.backward called before forward")
        check_same_shape(self.name, "output_grad", self.output, output_grad)
        grad = output_grad
        for op in reversed(self.operations):
            grad = op.backward(grad)
        self.input_grad = grad
        return grad

    def set_skip_input_grad(self, skip: bool) -> None:
        """Skip (or compute) the gradient with respect to this layer's input."""
        self.skip_input_grad = skip
        if self.operations:
            self.operations[0].skip_input_grad = skip
