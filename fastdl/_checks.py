"""Argument checks shared by layers, operations and the trainer; each message names the
caller (``where``) and the argument, and says what was expected and what was given."""

from __future__ import annotations

import copy

import numpy as np

__all__ = ["positive_int", "check_pair", "check_keep_prob", "check_activation", "native"]


def native(a: np.ndarray) -> np.ndarray:
    """``a`` in the machine's byte order (a copy only when it is not: some files hold
    big-endian data, which the compiled kernels cannot take)."""
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def positive_int(where: str, what: str, value) -> int:
    """``value`` as an int >= 1, or ``ValueError`` (bools are refused: ``True`` is not 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{where}: {what} must be a positive int, got {value!r}")
    return int(value)


def check_pair(where: str, what: str, value, minimum: int) -> tuple[int, int]:
    """``value`` as ``(a, b)`` from an int or a pair of ints >= ``minimum``; else ValueError."""
    pair = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    if len(pair) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in pair
    ):
        raise ValueError(
            f"{where}: {what} must be an int >= {minimum} or a pair of them, got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def check_keep_prob(where: str, name: str, value) -> float:
    """``value`` as a keep probability in (0, 1], or an error naming ``where`` and ``name``.

    ``True``/``False`` are refused: ``dropout=True`` reads as "use dropout", not "keep all".
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(
            f"{where}: {name} is the keep probability, a number in (0, 1], got {value!r}"
        )
    if not 0.0 < float(value) <= 1.0:
        raise ValueError(f"{where}: {name} is the keep probability, in (0, 1], got {value}")
    return float(value)


def check_activation(where: str, activation):
    """A private copy of ``activation`` (``Identity()`` for ``None``); else ``TypeError``."""
    from fastdl.ops.activations import Identity
    from fastdl.ops.base import Operation

    if activation is None:
        return Identity()
    if isinstance(activation, type) and issubclass(activation, Operation):
        raise TypeError(
            f"{where}: pass an activation instance such as {activation.__name__}(), not the class"
        )
    if not isinstance(activation, Operation):
        raise TypeError(
            f"{where}: activation must be an Operation such as fd.ReLU(), got {activation!r}"
        )
    return copy.copy(activation)
