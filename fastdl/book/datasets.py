"""What chapter 3 took from scikit-learn: ``load_boston``, ``StandardScaler``, ``train_test_split``.

scikit-learn removed ``load_boston`` in version 1.2 (see :func:`fastdl.datasets.load_boston`
for why), so chapter 3's first cell no longer runs. These three stand in for the scikit-learn
names the notebook imports, computing the same numbers (the tests compare them with
scikit-learn's):

- ``load_boston()`` reads ``$FASTDL_DATA/boston/BostonHousing.csv`` through fastdl's loader,
  in float64, into an object with scikit-learn's attributes ``data`` ``(506, 13)``,
  ``target`` ``(506,)`` and ``feature_names``;
- ``StandardScaler().fit_transform(X)`` subtracts each column's mean and divides by its
  population standard deviation (``ddof=0``; a constant column is divided by 1);
- ``train_test_split(*arrays, test_size=0.25, random_state=None)`` permutes the rows with
  ``np.random.RandomState(random_state)`` and takes the first ``ceil(test_size·n)`` of the
  permutation for the test set and the rest for training, in permutation order — scikit-
  learn's ``ShuffleSplit``, so ``random_state=80718`` gives the book's split.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from fastdl.datasets import BOSTON_FEATURES
from fastdl.datasets import load_boston as _load_boston

__all__ = ["load_boston", "StandardScaler", "train_test_split"]


def load_boston(path=None) -> SimpleNamespace:
    """The Boston housing data as scikit-learn's ``load_boston()`` returned it.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The CSV file or its folder; by default ``$FASTDL_DATA/boston/BostonHousing.csv``.

    Returns
    -------
    An object with ``data`` (float64 ``(506, 13)``), ``target`` (float64 ``(506,)``) and
    ``feature_names`` (13 upper-case names, as scikit-learn spelled them).
    """
    data, target = _load_boston(path, dtype=np.float64)
    names = np.array([name.upper() for name in BOSTON_FEATURES])
    return SimpleNamespace(data=data, target=target, feature_names=names)


class StandardScaler:
    """Standardise columns: ``(X − mean) / std`` with the population std (``ddof=0``).

    ``fit(X)`` learns ``mean_`` and ``scale_`` ``(D,)`` from ``X`` ``(N, D)``;
    ``transform(X)`` applies them; ``fit_transform(X)`` does both.
    """

    def fit(self, X: np.ndarray) -> StandardScaler:
        X = _table("StandardScaler.fit", X)
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std == 0, 1.0, std)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = _table("StandardScaler.transform", X)
        if not hasattr(self, "mean_"):
            raise RuntimeError("StandardScaler.transform: call fit first")
        if X.shape[1] != len(self.mean_):
            raise ValueError(
                f"StandardScaler.transform: X has {X.shape[1]} columns, fitted on {len(self.mean_)}"
            )
        return (X - self.mean_) / self.scale_

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return self.fit(X).transform(X)


def _table(where: str, X) -> np.ndarray:
    if not isinstance(X, np.ndarray) or X.ndim != 2 or not np.issubdtype(X.dtype, np.number):
        what = (
            f"shape {X.shape}, dtype {X.dtype}" if isinstance(X, np.ndarray) else type(X).__name__
        )
        raise ValueError(f"{where}: expected a 2-D numeric array (N, D), got {what}")
    return X.astype(np.float64, copy=False)


def train_test_split(*arrays: np.ndarray, test_size: float = 0.25, random_state=None):
    """Split arrays of the same length into training and test rows, as scikit-learn does.

    Parameters
    ----------
    *arrays : ndarray, each ``(n, ...)``
    test_size : float in (0, 1), default 0.25
    random_state : int, optional
        Seeds ``np.random.RandomState``; None draws fresh entropy.

    Returns
    -------
    list: ``[a_train, a_test, b_train, b_test, ...]`` for arrays ``a, b, ...``.
    """
    if not arrays:
        raise ValueError("train_test_split: at least one array is required")
    n = len(arrays[0])
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"train_test_split: array {i} must be a numpy array")
        if len(a) != n:
            raise ValueError(f"train_test_split: array {i} has {len(a)} rows, array 0 has {n}")
    if isinstance(test_size, bool) or not isinstance(test_size, float) or not 0 < test_size < 1:
        raise ValueError(
            f"train_test_split: test_size must be a float in (0, 1), got {test_size!r}"
        )
    n_test = math.ceil(test_size * n)
    if not 0 < n_test < n:
        raise ValueError(
            f"train_test_split: test_size={test_size} leaves no rows for one side of {n}"
        )
    perm = np.random.RandomState(random_state).permutation(n)
    test, train = perm[:n_test], perm[n_test:]
    return [part for a in arrays for part in (a[train], a[test])]
