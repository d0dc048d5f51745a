"""Preprocessing helpers used by the examples: scaling, standardising, one-hot, NCHW, splitting.

Notation: N samples; H, W image height and width (28 for MNIST); C classes; ``...`` any
further axes.
"""

import math
import numbers

import numpy as np

from ._checks import (
    as_array,
    require_int,
    require_integer_dtype,
    require_ndim,
    require_real_dtype,
)

__all__ = ["scale_images", "standardize", "one_hot", "to_nchw", "train_val_split"]

_STATS_CHUNK = 1 << 20


def scale_images(images):
    """Scale uint8 pixels to float32 in [0, 1], dividing by 255.

    Parameters
    ----------
    images : ndarray of uint8, shape (N, ...)
        For example MNIST's ``(N, 28, 28)`` or ``(N, 1, 28, 28)``.

    Returns
    -------
    ndarray of float32, same shape as ``images``
        ``images / 255``, a new array.

    Raises
    ------
    TypeError
        ``images`` is not uint8 (scaling by 255 would be meaningless).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise TypeError(f"scale_images: images must be uint8 (0-255), got dtype {images.dtype}")
    return np.divide(images, np.float32(255), dtype=np.float32)


def standardize(x_train, *others, axis=None):
    """Standardise with the training set's statistics: ``(x - mean(x_train)) / std(x_train)``.

    The book does this for MNIST with one **global** mean and standard deviation over all
    pixels of the training images (``axis=None``, the default); ``axis=0`` standardises each
    feature separately, as scikit-learn's ``StandardScaler`` does (the book uses it for the
    Boston housing data). The statistics come from ``x_train`` alone and are applied to
    every array, so no information leaks from test to training data. They are computed in
    float64 in chunks (no float64 copy of the data); the results are float32, computed in
    float32 for 8- and 16-bit inputs and in float64 otherwise.

    Parameters
    ----------
    x_train : ndarray, shape (N, ...)
        Training data, integer or floating.
    *others : ndarray, shape (M, ...)
        Further arrays (test, validation) scaled with ``x_train``'s statistics; with
        ``axis=0`` their trailing shape must equal ``x_train``'s.
    axis : None or 0, default None
        None: one mean and std over all values. 0: per feature (over the samples); a
        feature with zero std is only centred (divided by 1), as in scikit-learn.

    Returns
    -------
    tuple of ndarray of float32
        ``(x_train_scaled, *others_scaled)``, shapes unchanged; always a tuple, so write
        ``(x_train,) = standardize(x_train)`` for a single array.

    Raises
    ------
    TypeError
        A non-numeric or boolean array.
    ValueError
        ``axis`` not None or 0; empty ``x_train``; mismatched trailing shapes; a training
        set whose global std is zero; NaN or infinity in ``x_train``.
    """
    func = "standardize"
    if axis is not None and (isinstance(axis, bool) or axis != 0):
        raise ValueError(f"{func}: axis must be None (global) or 0 (per feature), got {axis!r}")
    x_train = as_array(func, "x_train", x_train)
    require_real_dtype(func, "x_train", x_train)
    others = [as_array(func, f"others[{i}]", o) for i, o in enumerate(others)]
    for i, other in enumerate(others):
        require_real_dtype(func, f"others[{i}]", other)
        if axis == 0 and other.shape[1:] != x_train.shape[1:]:
            raise ValueError(
                f"{func}: others[{i}] has shape {other.shape}, expected (M,) + "
                f"{x_train.shape[1:]} to match x_train {x_train.shape} feature for feature"
            )
    if x_train.size == 0 or x_train.ndim == 0:
        raise ValueError(f"{func}: x_train must be a non-empty array, got shape {x_train.shape}")

    mean, std = _mean_std(x_train, axis)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        raise ValueError(f"{func}: x_train contains NaN or infinity")
    if axis is None and std == 0:
        raise ValueError(f"{func}: x_train is constant (std 0); it cannot be standardised")
    std = np.where(std == 0, 1.0, std)
    results = []
    for x in (x_train, *others):
        # float32 arithmetic for 8- and 16-bit inputs such as uint8 images (exact enough, half
        # the memory); float64 for wider ones, float32 included, whose large offsets float32
        # would round away before the subtraction.
        work = np.float32 if x.dtype.itemsize <= 2 else np.float64
        out = np.subtract(x, mean.astype(work), dtype=work)
        out /= std.astype(work)
        results.append(out.astype(np.float32, copy=False))
    return tuple(results)


def _mean_std(x, axis):
    """float64 mean and population std over all values (axis None) or over axis 0.

    Two passes over chunks of about a million values, shifted by the first sample: accurate
    (no catastrophic cancellation, and exactly 0 std for constant data) without a float64
    copy of the whole array.
    """
    rows = x.reshape(-1, 1) if axis is None else x.reshape(len(x), -1)
    step = max(1, _STATS_CHUNK // rows.shape[1])
    n = rows.shape[0]
    pivot = rows[0].astype(np.float64)
    total = np.zeros(rows.shape[1])
    for start in range(0, n, step):
        total += (rows[start : start + step] - pivot).sum(axis=0)
    shift = total / n
    squares = np.zeros(rows.shape[1])
    for start in range(0, n, step):
        deviation = rows[start : start + step] - pivot - shift
        squares += np.einsum("ij,ij->j", deviation, deviation)
    mean, std = pivot + shift, np.sqrt(squares / n)
    shape = () if axis is None else x.shape[1:]
    return mean.reshape(shape), std.reshape(shape)


def one_hot(labels, num_classes, *, dtype=np.float32):
    """Encode integer labels as one-hot vectors.

    Parameters
    ----------
    labels : array_like of int, shape (...)
        Class indices in ``[0, num_classes)``; for example ``(N,)`` or ``(N, T)``.
    num_classes : int
        C, the number of classes (10 for MNIST), at least 1.
    dtype : dtype, default float32
        Output dtype (floating or integer).

    Returns
    -------
    ndarray, shape (..., C)
        ``out[..., k] == 1`` where ``labels == k``, 0 elsewhere.

    Raises
    ------
    TypeError
        Labels not of an integer dtype, ``num_classes`` not an int, or a non-numeric dtype.
    ValueError
        ``num_classes < 1`` or a label outside ``[0, num_classes)``.
    """
    func = "one_hot"
    labels = as_array(func, "labels", labels)
    require_integer_dtype(func, "labels", labels)
    num_classes = require_int(func, "num_classes", num_classes, 1)
    dtype = np.dtype(dtype)
    if dtype.kind not in "iuf":
        raise TypeError(f"{func}: dtype must be a floating or integer dtype, got {dtype}")
    if labels.size:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"{func}: labels must be in [0, {num_classes}), got values from {low} to {high}"
            )
    out = np.zeros((labels.size, num_classes), dtype=dtype)
    out[np.arange(labels.size), labels.reshape(-1)] = 1
    return out.reshape(labels.shape + (num_classes,))


def to_nchw(images):
    """Add the channel axis: ``(N, H, W)`` grey images become ``(N, 1, H, W)`` for Conv2D.

    Parameters
    ----------
    images : ndarray, shape (N, H, W)
        Any numeric dtype, for example MNIST's uint8 ``(N, 28, 28)``.

    Returns
    -------
    ndarray, shape (N, 1, H, W)
        A view of ``images`` (no copy), same dtype.

    Raises
    ------
    TypeError
        A non-numeric array.
    ValueError
        ``images`` is not 3-D.
    """
    images = as_array("to_nchw", "images", images)
    require_ndim("to_nchw", "images", images, 3, "(N, H, W)")
    return images[:, np.newaxis]


def train_val_split(x, y, val_fraction, seed):
    """Split data into training and validation parts at random, reproducibly.

    Like scikit-learn's ``train_test_split``: the samples are shuffled with
    ``np.random.default_rng(seed)`` (never NumPy's global state) and the first
    ``ceil(val_fraction * N)`` go to validation. Both parts come back in shuffled order.

    Parameters
    ----------
    x : ndarray, shape (N, ...)
        Inputs.
    y : ndarray, shape (N, ...)
        Targets, same N.
    val_fraction : float
        Fraction of samples for validation, strictly between 0 and 1.
    seed : int or numpy.random.Generator
        Seed (>= 0) or generator; the same seed gives the same split.

    Returns
    -------
    (x_train, y_train), (x_val, y_val) : tuple of tuples of ndarray
        ``x_train`` shape (N - V, ...), ``x_val`` shape (V, ...), V =
        ``ceil(val_fraction * N)``; new arrays with the dtypes of ``x`` and ``y``.

    Raises
    ------
    TypeError
        Non-numeric arrays, a non-real ``val_fraction``, or a seed that is neither an int
        nor a Generator.
    ValueError
        0-d arrays, different N, ``val_fraction`` outside (0, 1), or a split leaving either
        part empty.
    """
    func = "train_val_split"
    x = as_array(func, "x", x)
    y = as_array(func, "y", y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{func}: x and y must have shape (N, ...), got {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise ValueError(f"{func}: x and y must have the same N, got x {x.shape} and y {y.shape}")
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, numbers.Real):
        raise TypeError(f"{func}: val_fraction must be a float, got {val_fraction!r}")
    if not 0 < val_fraction < 1:
        raise ValueError(
            f"{func}: val_fraction must be strictly between 0 and 1, got {val_fraction}"
        )
    if not isinstance(seed, np.random.Generator):
        seed = require_int(func, "seed", seed, 0)
    n = len(x)
    n_val = math.ceil(val_fraction * n - 1e-9)
    if not 0 < n_val < n:
        raise ValueError(
            f"{func}: val_fraction={val_fraction} of N={n} samples leaves "
            f"{n_val} for validation and {n - n_val} for training; both need at least one"
        )
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])
