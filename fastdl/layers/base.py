"""Layer: a sequence of operations that owns parameters and sets itself up on first use.

As in the book, a layer builds its operations lazily in ``_setup_layer`` on the first forward
pass, when the input size is known. ``forward`` runs the operations in order; ``backward`` runs
them in reverse; ``params()`` / ``param_grads()`` list the learnable arrays and their gradients
(the optimizer updates ``params`` in place, so the operations see the new values).

A network binds each layer to its random generator and dtype (``bind``). A layer used on its own
takes the dtype of its first input and a generator seeded with 0.
"""

from __future__ import annotations

import abc
import inspect

import numpy as np

from fastdl.ops.base import Operation, check_same_shape, release_attrs

__all__ = ["Layer", "carried_states", "restore_states"]


def _same(value, default) -> bool:
    """True when a configured value equals its default (an activation: by its class)."""
    if isinstance(value, Operation):  # activations: by class; None stands for Identity()
        expected = "Identity" if default is None else type(default).__name__
        return type(value).__name__ == expected
    return value == default


class Layer(abc.ABC):
    """Base class of all layers.

    Subclasses implement ``_setup_layer(x)``, which creates ``self.operations``, and may
    override ``_check_input(x)`` to validate the input (called on every forward pass, before
    any arithmetic) and ``forward`` / ``backward`` where a fused computation pays.
    """

    #: False for layers that take integer input (token ids); others require floats.
    float_input = True
    #: True for layers that cannot train on a batch of one example (BatchNorm1D's variance
    #: over one row is undefined); ``fit`` refuses data whose last batch would have one row.
    needs_two_rows = False

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

    def release(self, min_bytes: int = 0) -> None:
        """Drop what the last pass kept, here and in every operation (:meth:`Operation.release
        <fastdl.ops.base.Operation.release>`; ``min_bytes`` as there): the parameters and
        their gradients stay."""
        release_attrs(self, ("input_", "output", "input_grad"), min_bytes)
        for op in self.operations:
            op.release(min_bytes)

    def reset_state(self) -> None:  # noqa: B027 (optional hook)
        """Forget state carried between batches (stateful layers override this)."""

    def params(self) -> list[np.ndarray]:
        """The learnable arrays of this layer, in a fixed order (empty before setup)."""
        return [p for op in self.operations for p in op.params()]

    def param_grads(self) -> list[np.ndarray]:
        """Gradients of :meth:`params` from the last backward pass, in the same order."""
        return [g for op in self.operations for g in op.param_grads()]

    def buffers(self) -> list[np.ndarray]:
        """The arrays the operations update themselves, not learnt (running statistics), in
        a fixed order (empty before setup and for most layers); see
        :meth:`Operation.buffers <fastdl.ops.base.Operation.buffers>`."""
        return [b for op in self.operations for b in op.buffers()]

    def flops(self) -> tuple[int, int]:
        """``(forward, backward)`` FLOPs of a training pass on the last forward pass's input:
        the sums of :meth:`Operation.flops <fastdl.ops.base.Operation.flops>` over the
        operations (:mod:`fastdl.summary` states what is counted)."""
        counts = [op.flops() for op in self.operations]
        return sum(f for f, _ in counts), sum(b for _, b in counts)

    def get_config(self) -> dict:
        """The constructor's arguments that rebuild this layer, by name (as Keras's
        ``get_config``); subclasses with arguments extend it."""
        return {}

    def __repr__(self) -> str:
        """``Name(arg=value, ...)`` with the arguments that differ from their defaults, and
        the parameter shapes once the layer is set up, as PyTorch modules print."""
        defaults = {
            name: p.default
            for name, p in inspect.signature(type(self).__init__).parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        args = [
            f"{k}={v!r}"
            for k, v in self.get_config().items()
            if k not in defaults or not _same(v, defaults[k])
        ]
        shapes = ", ".join(str(tuple(p.shape)) for p in self.params())
        return f"{self.name}({', '.join(args)})" + (f"  # params {shapes}" if shapes else "")

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
        try:
            self._check_param_dtypes()
        except TypeError:
            self.operations = []  # refused: not set up
            raise
        if self.operations:
            self.operations[0].skip_input_grad = self.skip_input_grad
        self.first = False

    def _check_param_dtypes(self) -> None:
        """Raise ``TypeError`` here, naming this layer, for a parameter of another dtype than
        the layer's (a hand-written ``_setup_layer`` that draws float64 weights in a float32
        network); otherwise the next layer would be blamed for the float64 output."""
        for op in self.operations:
            for i, p in enumerate(op.params()):
                if not isinstance(p, np.ndarray) or p.dtype != self.dtype:
                    got = p.dtype if isinstance(p, np.ndarray) else type(p).__name__
                    raise TypeError(
                        f"{self.name}: parameter {i} of {op.name} has dtype {got}, but the "
                        f"layer computes in {self.dtype} (the network's dtype); create it with "
                        f"dtype=self.dtype, e.g. self.rng.standard_normal(shape).astype(self.dtype)"
                    )

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


def carried_states(layers) -> list:
    """What :func:`restore_states` puts back, for every stateful layer and every layer with
    buffers among ``layers``: ``(layer, state, buffers)`` with ``state`` the 1-tuple
    ``(layer.state,)`` for a stateful layer (None for the others) and ``buffers`` copies of
    its buffers. A gradient check's passes, or a rejected training batch, must not move the
    carried state or the running statistics on."""
    carried = []
    for layer in layers:
        stateful = getattr(layer, "stateful", False)
        buffers = [b.copy() for b in layer.buffers()]
        if stateful or buffers:
            carried.append((layer, (layer.state,) if stateful else None, buffers))
    return carried


def restore_states(carried: list) -> None:
    """Put back the states and buffers saved by :func:`carried_states`."""
    for layer, state, buffers in carried:
        if state is not None:
            if state[0] is None:
                layer.reset_state()
            else:
                layer.set_state(*state[0])
        for b, saved in zip(layer.buffers(), buffers, strict=False):
            b[...] = saved
