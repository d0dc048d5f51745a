"""Tabular regression data: the Boston and California housing files, as float arrays."""

import os
from pathlib import Path

import numpy as np

__all__ = [
    "BOSTON_FEATURES",
    "CALIFORNIA_FEATURES",
    "load_boston",
    "load_california_housing",
]

BOSTON_FEATURES = (
    "crim", "zn", "indus", "chas", "nox", "rm", "age", "dis", "rad", "tax", "ptratio", "b",
    "lstat",
)  # fmt: skip
CALIFORNIA_FEATURES = (
    "MedInc", "HouseAge", "AveRooms", "AveBedrms", "Population", "AveOccup", "Latitude",
    "Longitude",
)  # fmt: skip

_BOSTON_FILE = "BostonHousing.csv"
_CALIFORNIA_FILE = "cal_housing.data"


def _numbers(line: str) -> bool:
    """Whether every comma-separated field of ``line`` reads as a number."""
    try:
        [float(field.strip().strip('"')) for field in line.split(",")]
    except ValueError:
        return False
    return True


def load_boston(path=None, dtype=np.float32):
    """Load the Boston housing regression data (506 towns, 13 features, median home value).

    This is the data set of the book's chapters 2-4, formerly ``sklearn.datasets.load_boston``.
    **scikit-learn deprecated it in 1.0 and removed it in 1.2 for an ethical problem:** the
    ``b`` column, ``1000 (Bk - 0.63)^2`` with ``Bk`` the proportion of Black residents of
    the town, was engineered by the original authors (Harrison and Rubinfeld, 1978) on the
    assumption that racial self-segregation raised house prices; the variable cannot even
    be inverted to recover ``Bk``. The study's own aim, the effect of air quality on prices,
    was also not convincingly supported. It is kept here so that the book's examples can be
    reproduced; for new work prefer :func:`load_california_housing`.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The CSV file (``BostonHousing.csv``: a header line ``crim,zn,...,medv`` then 14
        comma-separated numbers per line; quoted numbers such as ``"0"`` are accepted), or
        the folder holding it. A file without the header line is also accepted. By default
        ``$FASTDL_DATA/boston/BostonHousing.csv``, as :func:`load_mnist` looks in
        ``$FASTDL_DATA/mnist/`` (there is nothing to download: the file is not published
        with a checksum anywhere this machine can reach).
    dtype : float32 or float64, default float32
        float64 keeps the file's numbers exactly as the book's float64 arithmetic read them.

    Returns
    -------
    x : ndarray of ``dtype``, shape (N, 13)
        Features in the order of ``BOSTON_FEATURES`` (N = 506 for the standard file).
    y : ndarray of ``dtype``, shape (N,)
        ``medv``, median value of owner-occupied homes in $1000s.

    Raises
    ------
    TypeError
        ``path`` is not a str or os.PathLike, or ``dtype`` is not float32 or float64.
    FileNotFoundError
        No such file, or no ``path`` and no ``FASTDL_DATA``.
    ValueError
        Not 14 numeric columns, an unexpected header, a missing or infinite value, a value too
        large for float32, or no rows; the message gives the file's line number (1-based,
        as an editor shows it).
    """
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise TypeError(f"load_boston: dtype must be float32 or float64, got {np.dtype(dtype)}")
    path = _default_path("load_boston", path, "boston", _BOSTON_FILE)
    table, line_of = _read_table("load_boston", path, _BOSTON_FILE, (*BOSTON_FEATURES, "medv"))
    with np.errstate(over="ignore"):
        out = table.astype(dtype)
    _check_finite("load_boston", path, out, line_of, f"a value too large for {np.dtype(dtype)}")
    return out[:, :13], out[:, 13]


def _default_path(func, path, folder, name):
    """``path``, or ``$FASTDL_DATA/<folder>/<name>`` when it is None."""
    if path is not None:
        return path
    home = os.environ.get("FASTDL_DATA", "") or None  # as inventory.data_home reads it
    if home is None:
        raise FileNotFoundError(
            f"{func}: no path given and FASTDL_DATA is not set; pass the file's path or set "
            f"FASTDL_DATA to the folder that holds {folder}/{name}"
        )
    return Path(home) / folder / name


def load_california_housing(path=None):
    """Load the California housing regression data (20,640 block groups of the 1990 census).

    Reads ``cal_housing.data``, the file inside the archive that scikit-learn's
    ``fetch_california_housing`` downloads, and derives the same 8 features and target as
    scikit-learn (computed in float64, then cast)::

        MedInc = medianIncome          AveRooms  = totalRooms / households
        HouseAge = housingMedianAge    AveBedrms = totalBedrooms / households
        Population = population        AveOccup  = population / households
        Latitude, Longitude            target    = medianHouseValue / 100000

    Parameters
    ----------
    path : str or os.PathLike, optional
        The file ``cal_housing.data`` (no header; 9 comma-separated numbers per line:
        longitude, latitude, housingMedianAge, totalRooms, totalBedrooms, population,
        households, medianIncome, medianHouseValue), or the folder holding it. By default
        ``$FASTDL_DATA/california_housing/cal_housing.data``.

    Returns
    -------
    x : ndarray of float32, shape (N, 8)
        Features in the order of ``CALIFORNIA_FEATURES`` (N = 20640 for the standard file).
    y : ndarray of float32, shape (N,)
        Median house value in units of $100,000.

    Raises
    ------
    TypeError
        ``path`` is not a str or os.PathLike.
    FileNotFoundError
        No such file.
    ValueError
        Not 9 numeric columns, a missing or infinite value, a value too large for float32, a
        block group with no households, or no rows; the message gives the file's line
        number (1-based).
    """
    func = "load_california_housing"
    path = _default_path(func, path, "california_housing", _CALIFORNIA_FILE)
    table, line_of = _read_table(func, path, _CALIFORNIA_FILE, None, ncols=9)
    (longitude, latitude, age, rooms, bedrooms, population, households, income, value) = table.T
    if np.any(households <= 0):
        row = line_of[int(np.argmax(households <= 0))]
        raise ValueError(f"{func}: {path}: line {row}: households must be positive")
    x = np.column_stack(
        [
            income,
            age,
            rooms / households,
            bedrooms / households,
            population,
            population / households,
            latitude,
            longitude,
        ]
    )
    with np.errstate(over="ignore"):
        x, y = x.astype(np.float32), (value / 100000).astype(np.float32)
    _check_finite(func, path, np.column_stack([x, y]), line_of, "a value too large for float32")
    return x, y


def _read_table(func, path, default_name, header, ncols=None):
    """Read a comma-separated numeric table as float64, shape (rows, columns), and the file
    line number of each row.

    ``header``: the expected column names if the file may start with a header line;
    ``ncols`` defaults to its length.
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{func}: path must be a str or os.PathLike, got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        path = path / default_name
    ncols = len(header) if ncols is None else ncols
    lines = path.read_text(encoding="utf-8-sig").splitlines()  # -sig: a BOM (Excel) is dropped
    skip = 0
    first = lines[0].strip() if lines else ""
    if first and not first.startswith("#") and not _numbers(first):  # 1e-3, nan, inf: numbers
        names = tuple(name.strip().strip('"').lower() for name in lines[0].split(","))
        if header is None or names != tuple(h.lower() for h in header):
            raise ValueError(
                f"{func}: {path}: unexpected header {lines[0].strip()!r}; expected "
                + ("no header" if header is None else repr(",".join(header)))
            )
        skip = 1
    rows, line_of = [], []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()  # blank and "#" comment lines hold no row
        if number <= skip or not text:
            continue
        fields = text.split(",")
        if len(fields) != ncols:
            raise ValueError(
                f"{func}: {path}: line {number}: expected {ncols} comma-separated numbers, "
                f"got {len(fields)}"
            )
        values = []
        for column, field in enumerate(fields, start=1):
            try:
                values.append(float(field.strip().strip('"')))
            except ValueError:
                raise ValueError(
                    f"{func}: {path}: line {number}, column {column}: {field.strip()!r} is not "
                    "a number"
                ) from None
        rows.append(values)
        line_of.append(number)
    if not rows:
        raise ValueError(f"{func}: {path}: no data rows, expected rows of {ncols} numbers")
    table = np.array(rows, dtype=np.float64)
    _check_finite(func, path, table, line_of, "missing (nan) or infinite value")
    return table, line_of


def _check_finite(func, path, table, line_of, what):
    """``ValueError`` naming the first file line whose row of ``table`` is not finite."""
    bad = ~np.all(np.isfinite(table.reshape(len(table), -1)), axis=1)
    if np.any(bad):
        raise ValueError(f"{func}: {path}: line {line_of[int(np.argmax(bad))]}: {what}")
