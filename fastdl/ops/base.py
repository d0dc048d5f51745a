"""Operation and ParamOperation: the book's building block, with shape checks on both passes.

An :class:`Operation` turns an input into an output (``forward``) and sends the gradient of
the loss with respect to its output back to its input (``backward``). Subclasses implement the
book's template methods:

- ``_output(inference) -> ndarray``: compute the output from ``self.input_``;
- ``_input_grad(output_grad) -> ndarray``: the gradient with respect to ``self.input_``;
- ``_param_grad(output_grad) -> ndarray`` (ParamOperation only): the gradient with respect to
  ``self.param``;

or, for an operation that computes all its gradients in one pass, the one hook they both go
through: ``_gradients(output_grad, need_input_grad) -> (input_grad, [param grads])``.

``params()`` and ``param_grads()`` list the learnable arrays and their gradients, the same
two names on every level (operation, layer, network); ``buffers()`` lists the arrays an
operation updates itself without being learnt (batch normalisation's running statistics). ``forward`` and ``backward`` check that
every gradient has the shape of the array it is the gradient of and raise a ``ValueError``
naming the operation and both shapes.
"""

from __future__ import annotations

import abc

import numpy as np

__all__ = ["Operation", "ParamOperation", "check_same_shape"]


def check_same_shape(where: str, what: str, expected: np.ndarray, given: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``given`` has the shape of ``expected``.

    Parameters
    ----------
    where : str
        The operation or layer that checks, named in the message.
    what : str
        What ``given`` is (``"output_grad"``, ...), named in the message.
    expected, given : ndarray
    """
    if expected.shape != given.shape:
        raise ValueError(f"{where}: {what} has shape {given.shape}, expected {expected.shape}")


def nbytes(value) -> int:
    """Bytes of an array, or of the arrays of a tuple or list (0 for anything else)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value)
    return 0


def release_attrs(obj, names, min_bytes: int = 0) -> None:
    """Set ``obj``'s attributes ``names`` to None: all of them, or, with ``min_bytes``, none
    unless one holds at least that many bytes (so nothing is left half-kept)."""
    if min_bytes and max((nbytes(getattr(obj, n, None)) for n in names), default=0) < min_bytes:
        return
    for name in names:
        setattr(obj, name, None)


class Operation(abc.ABC):
    """An operation of a network: ``forward`` then ``backward``, as in the book.

    Attributes set by the passes: ``input_`` and ``output`` (forward), ``input_grad``
    (backward). They are kept until the next pass so ``backward`` can use them (and a reader
    can look at them); :meth:`release` drops them, with whatever else the pass kept (the
    names in ``pass_attrs``). A training step releases, before its forward pass, every
    operation that kept an array of at least ``fastdl.network.RELEASE_MIN_BYTES``, so the
    last step's large activations and gradients are not held while the next one's are made.

    ``skip_input_grad = True`` (set by the network on its first operation, whose input is the
    data) makes ``backward`` skip the input gradient and return ``None``; parameter gradients
    are still computed. An operation whose input has no gradient at all (integer token ids)
    says so with the class attribute ``integer_input = True``.

    Every operation's gradients go through one hook, :meth:`_gradients`, which by default
    calls the book's ``_input_grad`` (and, for a :class:`ParamOperation`, ``_param_grad``); an
    operation that computes all its gradients in one pass (a convolution, a recurrent time
    loop) overrides the hook instead. ``backward`` checks every shape around it.
    """

    #: True for operations that take integer input, which has no gradient.
    integer_input = False

    #: The attributes a pass sets and :meth:`release` drops; an operation that keeps more for
    #: its backward pass (channels-last copies, the max-pool's indices, dropout's draws) adds
    #: their names.
    pass_attrs: tuple[str, ...] = ("input_", "output", "input_grad")

    def __init__(self) -> None:
        self.input_: np.ndarray | None = None
        self.output: np.ndarray | None = None
        self.input_grad: np.ndarray | None = None
        self.skip_input_grad = False
        self._param_grads: list[np.ndarray | None] = []

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        shapes = ", ".join(str(tuple(p.shape)) for p in self.params())
        config = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{self.name}({shapes or config})"

    def get_config(self) -> dict:
        """The constructor's arguments (other than arrays) that rebuild this operation; {} for
        the activations without any."""
        return {}

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        """Check and store ``input_``, and return ``self._output(inference)``."""
        self._check_input(input_)
        self.input_ = input_
        self.output = self._output(inference)
        return self.output

    def backward(self, output_grad: np.ndarray) -> np.ndarray | None:
        """Return the gradient with respect to the input, given the one for the output; set
        :meth:`param_grads`."""
        if self.output is None:
            raise RuntimeError(f"{self.name}.backward called before forward")
        check_same_shape(self.name, "output_grad", self.output, output_grad)
        need_input_grad = self.needs_input_grad
        input_grad, param_grads = self._gradients(output_grad, need_input_grad)
        return self._set_gradients(input_grad, param_grads, need_input_grad)

    def _set_gradients(
        self, input_grad: np.ndarray | None, param_grads: list, need_input_grad: bool
    ) -> np.ndarray | None:
        """Check the gradients a backward pass computed against the input and the parameters,
        keep them, and return the input gradient (None if not needed)."""
        if need_input_grad:
            check_same_shape(self.name, "input_grad", self.input_, input_grad)
        params = self.params()
        if len(param_grads) != len(params):
            raise RuntimeError(
                f"{self.name}: {len(param_grads)} parameter gradients for {len(params)} parameters"
            )
        for i, (p, g) in enumerate(zip(params, param_grads, strict=True)):
            check_same_shape(self.name, f"param_grads()[{i}]", p, g)
        self.input_grad = input_grad if need_input_grad else None
        self._param_grads = list(param_grads)
        return self.input_grad

    def release(self, min_bytes: int = 0) -> None:
        """Drop what the last pass kept (``pass_attrs``): its input, output and gradients;
        with ``min_bytes``, only if one of those arrays (or tuples of arrays) has at least
        that many bytes (then all of them, so nothing is left half-kept). The parameters,
        their last gradients and any carried state stay; ``backward`` before the next
        ``forward`` raises, as before the first."""
        release_attrs(self, self.pass_attrs, min_bytes)

    def _gradients(
        self, output_grad: np.ndarray, need_input_grad: bool
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        """``(input gradient or None, [gradient of each of params()])`` for ``output_grad``."""
        input_grad = self._input_grad(output_grad) if need_input_grad else None
        return input_grad, []

    def set_skip_input_grad(self, skip: bool) -> None:
        """Skip (or compute) the gradient with respect to the input (as ``Layer``'s)."""
        self.skip_input_grad = bool(skip)

    @property
    def needs_input_grad(self) -> bool:
        """Whether ``backward`` computes the input gradient (not skipped, not integer input)."""
        return not (self.skip_input_grad or self.integer_input)

    def flops(self) -> tuple[int, int]:
        """``(forward, backward)``: the floating-point operations of a training pass, forward
        and backward, on the input of the last forward pass (its whole batch).

        Only matrix products are counted, 2 FLOPs per multiply-add (see :mod:`fastdl.summary`
        for the convention); elementwise work is not, so an operation without a matrix
        product keeps this default, ``(0, 0)``. An operation that multiplies matrices
        overrides it, counting from the shapes of the last pass's operands.
        """
        return 0, 0

    def _check_input(self, input_: np.ndarray) -> None:  # noqa: B027 (optional hook)
        """Raise ``ValueError`` for an input this operation cannot take (none by default)."""

    def params(self) -> list[np.ndarray]:
        """The arrays this operation learns (none for a plain operation)."""
        return []

    def buffers(self) -> list[np.ndarray]:
        """Arrays this operation keeps and updates itself, not learnt (the optimizer never
        sees them) but part of what the network computes: batch normalisation's running
        statistics (PyTorch's name: buffers). Saved, loaded and converted with the
        parameters; updated in place. None for most operations."""
        return []

    def param_grads(self) -> list[np.ndarray | None]:
        """Gradients of :meth:`params`, in the same order, set by ``backward`` (None before)."""
        return list(self._param_grads) or [None] * len(self.params())

    @abc.abstractmethod
    def _output(self, inference: bool) -> np.ndarray:
        """The output computed from ``self.input_``."""

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        """The gradient with respect to ``self.input_`` (the book's hook; an operation that
        overrides :meth:`_gradients` need not give it)."""
        raise NotImplementedError(f"{self.name} gives neither _input_grad nor _gradients")


class ParamOperation(Operation):
    """An operation with one parameter array ``param``; ``backward`` also sets ``param_grad``."""

    def __init__(self, param: np.ndarray) -> None:
        super().__init__()
        self.param = param

    @property
    def param_grad(self) -> np.ndarray | None:
        """The gradient with respect to ``param`` from the last ``backward`` (the book's name)."""
        return self.param_grads()[0]

    def _gradients(
        self, output_grad: np.ndarray, need_input_grad: bool
    ) -> tuple[np.ndarray | None, list[np.ndarray]]:
        input_grad = self._input_grad(output_grad) if need_input_grad else None
        return input_grad, [self._param_grad(output_grad)]

    def params(self) -> list[np.ndarray]:
        return [self.param]

    @abc.abstractmethod
    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        """The gradient with respect to ``self.param``."""
