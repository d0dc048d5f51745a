"""Argument checks shared by the public helpers; each message names the function."""

import numbers

import numpy as np


def as_array(func, name, value):
    """``np.asarray(value)``, refusing objects that are not numeric arrays."""
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"{func}: {name} must be a numeric array, got dtype {array.dtype} "
            f"(from {type(value).__name__})"
        )
    return array


def require_integer_dtype(func, name, array):
    if array.dtype.kind not in "iu":
        raise TypeError(f"{func}: {name} must have an integer dtype, got {array.dtype}")


def require_real_dtype(func, name, array):
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{func}: {name} must have an integer or floating dtype, got {array.dtype}")


def require_ndim(func, name, array, ndim, layout):
    if array.ndim != ndim:
        raise ValueError(f"{func}: {name} must have shape {layout}, got shape {array.shape}")


def require_int(func, name, value, minimum):
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{func}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{func}: {name} must be >= {minimum}, got {value}")
    return int(value)
