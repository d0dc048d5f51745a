"""Chapters 1 and 2's functions: derivatives, chains of functions and the chain rule.

The book's first two chapters build intuition with plain functions of NumPy arrays before
any class appears; its notebooks define these, and the later chapters' code leans on them.
Shapes: every function maps an array to an array of the same shape (element-wise), except
where said.

- ``square``, ``sigmoid``, ``leaky_relu`` (slope 0.2 below zero): element-wise functions;
- ``deriv(func, input_, diff=0.001)``: the central difference ``(f(x + Δ) − f(x − Δ)) / 2Δ``;
- ``chain_length_2([f1, f2], x) = f2(f1(x))``, ``chain_length_3([f1, f2, f3], x)``;
- ``chain_deriv_2([f1, f2], x) = f2'(f1(x)) · f1'(x)`` and ``chain_deriv_3`` — the chain
  rule, with each derivative taken by ``deriv`` — for a 1-D ``x``;
- ``mae``, ``rmse``, ``to_2d_np``, ``permute_data``: see :mod:`fastdl.book.utils.np_utils`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fastdl.book.utils.np_utils import mae, permute_data, rmse, to_2d_np

__all__ = [
    "square", "sigmoid", "leaky_relu", "deriv", "chain_length_2", "chain_length_3",
    "chain_deriv_2", "chain_deriv_3", "mae", "rmse", "to_2d_np", "permute_data",
]  # fmt: skip

ArrayFunction = Callable[[np.ndarray], np.ndarray]


def square(x: np.ndarray) -> np.ndarray:
    """``x²``, element-wise."""
    return np.power(x, 2)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + e^−x)``, element-wise."""
    return 1 / (1 + np.exp(-x))


def leaky_relu(x: np.ndarray) -> np.ndarray:
    """``max(0.2·x, x)``, element-wise."""
    return np.maximum(0.2 * x, x)


def deriv(func: ArrayFunction, input_: np.ndarray, diff: float = 0.001) -> np.ndarray:
    """The derivative of ``func`` at every element of ``input_``, by central differences."""
    if not diff > 0:
        raise ValueError(f"deriv: diff must be positive, got {diff!r}")
    return (func(input_ + diff) - func(input_ - diff)) / (2 * diff)


def _chain(where: str, chain: Sequence[ArrayFunction], length: int) -> Sequence[ArrayFunction]:
    if len(chain) != length or not all(callable(f) for f in chain):
        raise ValueError(f"{where}: expected a chain of {length} functions, got {chain!r}")
    return chain


def chain_length_2(chain: Sequence[ArrayFunction], x: np.ndarray) -> np.ndarray:
    """``f2(f1(x))`` for ``chain = [f1, f2]``."""
    f1, f2 = _chain("chain_length_2", chain, 2)
    return f2(f1(x))


def chain_length_3(chain: Sequence[ArrayFunction], x: np.ndarray) -> np.ndarray:
    """``f3(f2(f1(x)))`` for ``chain = [f1, f2, f3]``."""
    f1, f2, f3 = _chain("chain_length_3", chain, 3)
    return f3(f2(f1(x)))


def _one_d(where: str, x: np.ndarray) -> None:
    if not isinstance(x, np.ndarray) or x.ndim != 1:
        raise ValueError(
            f"{where}: expected a 1-D array input_range, got {getattr(x, 'shape', x)!r}"
        )


def chain_deriv_2(chain: Sequence[ArrayFunction], input_range: np.ndarray) -> np.ndarray:
    """``(f2 ∘ f1)'(x) = f2'(f1(x)) · f1'(x)`` on a 1-D ``input_range``."""
    f1, f2 = _chain("chain_deriv_2", chain, 2)
    _one_d("chain_deriv_2", input_range)
    f1_of_x = f1(input_range)
    return deriv(f2, f1_of_x) * deriv(f1, input_range)


def chain_deriv_3(chain: Sequence[ArrayFunction], input_range: np.ndarray) -> np.ndarray:
    """``(f3 ∘ f2 ∘ f1)'(x) = f3'(f2(f1(x))) · f2'(f1(x)) · f1'(x)`` on a 1-D ``input_range``."""
    f1, f2, f3 = _chain("chain_deriv_3", chain, 3)
    _one_d("chain_deriv_3", input_range)
    f1_of_x = f1(input_range)
    f2_of_x = f2(f1_of_x)
    return deriv(f3, f2_of_x) * deriv(f2, f1_of_x) * deriv(f1, input_range)
