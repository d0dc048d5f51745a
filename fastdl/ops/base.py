"""Operation and ParamOperation: the book's building block, with shape checks on both passes.

An :class:`Operation` turns an input into an output (``forward``) and sends the gradient of
the loss with respect to its output back to its input (``backward``). Subclasses implement the
book's template methods:

- ``_output(inference) -> ndarray``: compute the output from ``self.input_``;
- ``_input_grad(output_grad) -> ndarray``: the gradient with respect to ``self.input_``;
- ``_param_grad(output_grad) -> ndarray`` (ParamOperation only): the gradient with respect to
  ``self.param``.

``forward`` and ``backward`` check that every gradient has the shape of the array it is the
gradient of and raise a ``ValueError`` naming the operation and both shapes.
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


class Operation(abc.ABC):
    """An operation of a network: ``forward`` then ``backward``, as in the book.

    Attributes set by the passes: ``input_`` and ``output`` (forward), ``input_grad``
    (backward). They are kept until the next pass so ``backward`` can use them.

    ``skip_input_grad = True`` (set by the network on its first operation, whose input is the
    data) makes ``backward`` skip the input gradient and return ``None``; parameter gradients
    are still computed.
    """

    def __init__(self) -> None:
        self.input_: np.ndarray | None = None
        self.output: np.ndarray | None = None
        self.input_grad: np.ndarray | None = None
        self.skip_input_grad = False

    @property
    def name(self) -> str:
        return type(self).__name__

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        """Check and store ``input_``, and return ``self._output(inference)``."""
        self._check_input(input_)
        self.input_ = input_
        self.output = self._output(inference)
        return self.output

    def backward(self, output_grad: np.ndarray) -> np.ndarray | None:
        """Return the gradient with respect to the input, given the one for the output."""
        if self.output is None:
            raise RuntimeError(f"{self.name}.backward called before forward")
        check_same_shape(self.name, "output_grad", self.output, output_grad)
        if self.skip_input_grad:
            self.input_grad = None
        else:
            self.input_grad = self._input_grad(output_grad)
            check_same_shape(self.name, "input_grad", self.input_, self.input_grad)
        return self.input_grad

    def _check_input(self, input_: np.ndarray) -> None:  # noqa: B027 (optional hook)
        """Raise ``ValueError`` for an input this operation cannot take (none by default)."""

    def parameters(self) -> list[np.ndarray]:
        """The arrays this operation learns (none for a plain operation)."""
        return []

    def parameter_grads(self) -> list[np.ndarray]:
        """Gradients of :meth:`parameters`, in the same order, set by ``backward``."""
        return []

    @abc.abstractmethod
    def _output(self, inference: bool) -> np.ndarray:
        """The output computed from ``self.input_``."""

    @abc.abstractmethod
    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        """The gradient with respect to ``self.input_``."""


class ParamOperation(Operation):
    """An operation with one parameter array ``param``; ``backward`` also sets ``param_grad``."""

    def __init__(self, param: np.ndarray) -> None:
        super().__init__()
        self.param = param
        self.param_grad: np.ndarray | None = None

    def backward(self, output_grad: np.ndarray) -> np.ndarray | None:
        input_grad = super().backward(output_grad)
        self.param_grad = self._param_grad(output_grad)
        check_same_shape(self.name, "param_grad", self.param, self.param_grad)
        return input_grad

    def parameters(self) -> list[np.ndarray]:
        return [self.param]

    def parameter_grads(self) -> list[np.ndarray]:
        return [self.param_grad]

    @abc.abstractmethod
    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        """The gradient with respect to ``self.param``."""
