"""The book's NumPy helpers (``lincoln.utils.np_utils``), with chapter 2-3's ``mae``/``rmse``.

Shapes are given per function. ``permute_data`` draws from NumPy's global generator, as the
book's does (its ``Trainer.fit`` seeds that generator first).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "to_2d", "to_2d_np", "normalize", "unnormalize", "permute_data", "generate_batch",
    "assert_same_shape", "assert_dim", "softmax", "mae", "rmse",
]  # fmt: skip


def _array(func: str, name: str, a) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{func}: {name} must be a numpy array, got {type(a).__name__}")
    return a


def to_2d(a: np.ndarray, type: str = "col") -> np.ndarray:  # noqa: A002 (the book's name)
    """A 1-D array ``(n,)`` as a column ``(n, 1)`` (``type="col"``) or a row ``(1, n)``."""
    _array("to_2d", "a", a)
    if a.ndim != 1:
        raise ValueError(f"to_2d: expected a 1-D array, got shape {a.shape}")
    if type not in ("col", "row"):
        raise ValueError(f"to_2d: type must be 'col' or 'row', got {type!r}")
    return a.reshape(-1, 1) if type == "col" else a.reshape(1, -1)


#: Chapter 3's name for :func:`to_2d`.
to_2d_np = to_2d


def normalize(a: np.ndarray) -> np.ndarray:
    """``(N, 1)`` probabilities → ``(N, 2)``: ``[a, 1 − a]``."""
    return np.concatenate([a, 1 - _array("normalize", "a", a)], axis=1)


def unnormalize(a: np.ndarray) -> np.ndarray:
    """The first row of ``a`` with a leading axis, ``a[np.newaxis, 0]``, as the book has it."""
    return _array("unnormalize", "a", a)[np.newaxis, 0]


def permute_data(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``X`` ``(N, ...)`` and ``y`` ``(N, ...)`` in one random order (NumPy's global generator)."""
    _array("permute_data", "X", X), _array("permute_data", "y", y)
    if len(X) != len(y):
        raise ValueError(f"permute_data: X has {len(X)} rows but y has {len(y)}")
    perm = np.random.permutation(X.shape[0])
    return X[perm], y[perm]


def generate_batch(X: np.ndarray, y: np.ndarray, start: int = 0, batch_size: int = 10):
    """Rows ``start … start + batch_size − 1`` of ``X`` ``(N, D)`` and ``y`` ``(N, K)``
    (fewer at the end). The book's version calls ``X.dim()``, a PyTorch method; this one
    works on NumPy arrays."""
    _array("generate_batch", "X", X), _array("generate_batch", "y", y)
    if X.ndim != 2 or y.ndim != 2:
        raise ValueError(f"generate_batch: X and y must be 2-D, got {X.shape} and {y.shape}")
    return X[start : start + batch_size], y[start : start + batch_size]


def assert_same_shape(output: np.ndarray, output_grad: np.ndarray) -> None:
    """Raise ``AssertionError`` unless the two arrays have the same shape (the book's check)."""
    assert output.shape == output_grad.shape, (
        f"Two tensors should have the same shape; instead, first Tensor's shape is "
        f"{tuple(output.shape)} and second Tensor's shape is {tuple(output_grad.shape)}."
    )


def assert_dim(t: np.ndarray, dim: int) -> None:
    """Raise ``AssertionError`` unless ``t`` has ``dim`` axes."""
    assert t.ndim == dim, f"Tensor expected to have dimension {dim}, instead has dimension {t.ndim}"


def softmax(x: np.ndarray, axis=None) -> np.ndarray:
    """``exp(x − logsumexp(x, axis))``, computed stably (the book imports SciPy for it)."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    top = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - top)
    return e / np.sum(e, axis=axis, keepdims=True)


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error, ``mean(|y_true − y_pred|)`` (same shapes)."""
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error, ``sqrt(mean((y_true − y_pred)²))`` (same shapes)."""
    return float(np.sqrt(np.mean(np.power(y_true - y_pred, 2))))
