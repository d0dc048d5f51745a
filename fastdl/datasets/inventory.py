"""Which data sets are on this machine: where the loaders look, and what each place holds.

What ``fastdl info`` reports. Nothing is read beyond file names, sizes and (for the two CSV
files) line counts, so it takes milliseconds; the loaders themselves verify checksums.

- MNIST and Fashion-MNIST are searched as :func:`~fastdl.datasets.load_mnist` searches them
  (:func:`~fastdl.datasets.sources.search_places`): ``$FASTDL_DATA/<name>/``, the user cache
  ``~/.cache/fastdl/<name>/``, system package folders. The first folder holding all four
  files wins.
- The text and housing loaders take a path; fastdl's recipes and examples give them
  ``$FASTDL_DATA/<folder>/<file>``, the one place looked at here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import registry
from .sources import search_places

__all__ = ["DataSet", "SINGLE_FILES", "data_home", "inventory"]


@dataclass(frozen=True)
class DataSet:
    """What was found of one data set.

    Attributes
    ----------
    title : str
        Its name, e.g. ``"MNIST"``.
    status : {"complete", "incomplete", "missing"}
        ``"complete"``: every file is there (and, for the CSV files, every row); the loader
        still verifies the content.
    where : str
        The folder or file used (``""`` when missing).
    detail : str
        The files present or missing, the size or the row count, or the places searched.
    """

    title: str
    status: str
    where: str
    detail: str


@dataclass(frozen=True)
class SingleFile:
    """A data set of one file under ``$FASTDL_DATA``.

    Attributes
    ----------
    title : str
    folder, name : str
        The file is ``$FASTDL_DATA/<folder>/<name>``.
    rows : int or None
        Data rows of the reference file (lines without a header), when it is a table.
    header : bool
        Whether the reference file's first line is a header.
    n_bytes : int or None
        Size of the reference file, when it is not a table.
    """

    title: str
    folder: str
    name: str
    rows: int | None = None
    header: bool = False
    n_bytes: int | None = None


#: The single-file data sets, with the sizes of the reference files (``/work/shared/data``'s
#: README and :mod:`fastdl.datasets.housing`).
SINGLE_FILES = (
    SingleFile("Tiny Shakespeare", "text", "tinyshakespeare.txt", n_bytes=1_115_394),
    SingleFile("Boston housing", "boston", "BostonHousing.csv", rows=506, header=True),
    SingleFile("California housing", "california_housing", "cal_housing.data", rows=20_640),
)


def data_home() -> str | None:
    """``$FASTDL_DATA``, or None when unset or empty (as the loaders read it)."""
    return os.environ.get("FASTDL_DATA", "") or None


def _idx_dataset(spec: registry.IDXDataset) -> DataSet:
    best = None  # (files present, place label, folder, missing names)
    looked = []
    for place in search_places(spec):
        if place.folder is None:
            continue
        looked.append(str(place.folder))
        if not place.folder.is_dir():
            continue
        missing = [
            f.gz_name
            for f in spec.files
            if not ((place.folder / f.gz_name).is_file() or (place.folder / f.name).is_file())
        ]
        if not missing:
            return DataSet(spec.title, "complete", str(place.folder), f"{place.label}, 4 files")
        present = len(spec.files) - len(missing)
        if present and (best is None or present > best[0]):
            best = (present, place.label, place.folder, missing)
    if best is not None:
        present, label, folder, missing = best
        return DataSet(
            spec.title, "incomplete", str(folder), f"{label}, missing {', '.join(missing)}"
        )
    return DataSet(spec.title, "missing", "", "looked in " + ", ".join(looked))


def _count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        data = f.read()
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _single_file(item: SingleFile, home: str | None) -> DataSet:
    if home is None:
        return DataSet(item.title, "missing", "", "FASTDL_DATA is not set")
    path = Path(home) / item.folder / item.name
    if not path.is_file():
        return DataSet(item.title, "missing", "", f"no {path}")
    if item.rows is not None:
        rows = _count_lines(path) - item.header
        if rows == item.rows:
            return DataSet(item.title, "complete", str(path), f"{rows:,} rows")
        return DataSet(
            item.title, "incomplete", str(path), f"{rows:,} rows, the reference has {item.rows:,}"
        )
    size = path.stat().st_size
    if size == item.n_bytes:
        return DataSet(item.title, "complete", str(path), f"{size / 1e6:.1f} MB")
    return DataSet(
        item.title,
        "complete",
        str(path),
        f"{size:,} bytes (not the reference file, {item.n_bytes:,} bytes; any text works)",
    )


def inventory() -> list[DataSet]:
    """Each data set fastdl's loaders read, and what of it is on this machine.

    Returns
    -------
    list of DataSet
        MNIST, Fashion-MNIST, then :data:`SINGLE_FILES`, in that order. ``FASTDL_DATA`` and
        the user cache folder are read at call time.
    """
    found = [_idx_dataset(registry.MNIST), _idx_dataset(registry.FASHION_MNIST)]
    home = data_home()
    found += [_single_file(item, home) for item in SINGLE_FILES]
    return found
