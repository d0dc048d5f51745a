"""The book's ``Operation`` and ``ParamOperation`` (``lincoln.base``), for writing your own.

Chapter 3 teaches extending the library by subclassing: an operation implements
``_output`` and ``_input_grad`` (and ``_param_grad`` when it has a parameter). These are
fastdl's :class:`~fastdl.ops.base.Operation` and :class:`~fastdl.ops.base.ParamOperation`
(with their shape checks, which raise ``ValueError`` naming the operation where the book
asserts), made to accept both ways the book writes the forward hook:

- chapter 3's ``def _output(self)`` (no ``inference`` argument), and
- ``lincoln``'s ``def _output(self, inference)``.

A ``ParamOperation`` may also set ``self.param_grad`` itself, as a book-style ``backward``
does. Example (chapter 3's sigmoid, as written in the book)::

    class Sigmoid(Operation):
        def _output(self):
            return 1.0 / (1.0 + np.exp(-1.0 * self.input_))

        def _input_grad(self, output_grad):
            return self.output * (1.0 - self.output) * output_grad
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

from fastdl.ops import base as _fd

__all__ = ["Operation", "ParamOperation"]


@functools.cache
def _takes_inference(cls: type) -> bool:
    """Whether ``cls._output`` takes the ``inference`` argument (lincoln) or not (chapter 3)."""
    params = list(inspect.signature(cls._output).parameters.values())[1:]  # after self
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )


class Operation(_fd.Operation):
    """An operation written as the book writes one: ``_output`` (with or without
    ``inference``) and ``_input_grad(output_grad)``.

    Shapes are the subclass's; ``backward`` checks that every gradient has the shape of the
    array it is the gradient of.
    """

    def __init__(self) -> None:
        _fd.Operation.__init__(self)

    def forward(self, input_: np.ndarray, inference: bool = False) -> np.ndarray:
        """Store ``input_``, then ``self.output = self._output(...)`` as the book does."""
        self._check_input(input_)
        self.input_ = input_
        if _takes_inference(type(self)):
            self.output = self._output(inference)
        else:
            self.output = self._output()
        return self.output

    def _output(self, inference: bool = False) -> np.ndarray:
        raise NotImplementedError(f"{self.name} must implement _output")


class ParamOperation(Operation, _fd.ParamOperation):
    """An operation with one parameter ``param``: also ``_param_grad(output_grad)``.

    Parameters
    ----------
    param : ndarray
        Updated in place by the optimizer; ``param_grad`` has its shape.
    """

    def __init__(self, param: np.ndarray) -> None:
        _fd.ParamOperation.__init__(self, param)

    @property
    def param_grad(self) -> np.ndarray | None:
        """The gradient with respect to ``param`` from the last ``backward``."""
        return self.param_grads()[0]

    @param_grad.setter
    def param_grad(self, value: np.ndarray) -> None:
        self._param_grads = [value]

    def _param_grad(self, output_grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} must implement _param_grad")
