"""MNIST and Fashion-MNIST loaders: find the four IDX files (or download them), verify, parse."""

import math
import os
import sys
from pathlib import Path

import numpy as np

from . import registry
from .download import fetch
from .errors import DatasetIntegrityError, DatasetNotFoundError
from .idx import read_idx
from .sources import search_places, user_cache_dir

__all__ = ["load_mnist", "load_fashion_mnist"]

_LOADER_DOC = """Load {title}: 60,000 training and 10,000 test images of 28 x 28 pixels, labels 0-9.

    The four IDX files are looked for, in order, in: ``path``; ``$FASTDL_DATA/{name}/``;
    the user cache ``$XDG_CACHE_HOME/fastdl/{name}/`` (default
    ``~/.cache/fastdl/{name}/``){system}. The first folder holding all four files
    (``train-images-idx3-ubyte.gz`` or its unpacked ``train-images-idx3-ubyte``, and so on)
    is used. If none does and ``download`` is true, the missing files are downloaded from
    the mirrors, tried in order, into ``path`` if given, else into the user cache; each is
    written to a temporary file and renamed into place only after its checksum matches.

    Every file read is checked: IDX magic numbers, dimensions and sizes always; with
    ``verify`` (the default) also the SHA-256 of the uncompressed content, so the upstream
    ``.gz`` files, unpacked copies and recompressed copies (such as Debian's) all pass while
    a truncated or altered file is rejected. A bad file in the user cache is deleted and
    downloaded again; a bad file anywhere else raises :class:`DatasetIntegrityError`.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Folder holding the four files; searched first, and the download target if given.
    download : bool, default True
        Download missing files. With False, nothing touches the network.
    verify : bool, default True
        Check every file's SHA-256. ``verify=False`` skips only this check (tens of ms),
        keeping the format checks; it also accepts MNIST-format files of any length.
        Downloads are always verified.
    mirrors : sequence of str, optional
        Base URLs to download from, tried in order; default ``{mirrors}``.
    progress : bool, default True
        Write download progress and repair notices to stderr.
    timeout : float, default 5.0
        Seconds allowed to connect to a mirror and for each read, so an offline machine
        fails in seconds rather than hanging. Each file also has an overall deadline (a
        minute plus its size at 20 kB/s), so a server that trickles bytes is given up on.

    Returns
    -------
    (x_train, y_train), (x_test, y_test) : tuple of tuples of ndarray
        ``x_train`` uint8, shape (60000, 28, 28); ``y_train`` uint8, shape (60000,);
        ``x_test`` uint8, shape (10000, 28, 28); ``y_test`` uint8, shape (10000,).
        Pixels are 0 (background) to 255 (ink); labels are 0 to 9. New, writable arrays.

    Raises
    ------
    DatasetNotFoundError
        No folder holds the files and they could not be downloaded; the message lists every
        place searched and every mirror tried, and how to fix it (``FASTDL_DATA`` or
        ``path=``).
    DatasetIntegrityError
        A file is truncated, corrupted or not the expected file; the message names it and
        the expected checksum.
    TypeError, ValueError
        Invalid arguments.

    Examples
    --------
    >>> (x_train, y_train), (x_test, y_test) = {func}()  # doctest: +SKIP
    >>> x_train.shape, y_train.shape  # doctest: +SKIP
    ((60000, 28, 28), (60000,))
    """


def load_mnist(path=None, download=True, *, verify=True, mirrors=None, progress=True, timeout=5.0):
    return _load(registry.MNIST, "load_mnist", path, download, verify, mirrors, progress, timeout)


def load_fashion_mnist(
    path=None, download=True, *, verify=True, mirrors=None, progress=True, timeout=5.0
):
    return _load(
        registry.FASHION_MNIST,
        "load_fashion_mnist",
        path,
        download,
        verify,
        mirrors,
        progress,
        timeout,
    )


load_mnist.__doc__ = _LOADER_DOC.format(
    title="MNIST", name="mnist", system="", mirrors=registry.MNIST.mirrors, func="load_mnist"
)
load_fashion_mnist.__doc__ = _LOADER_DOC.format(
    title="Fashion-MNIST (Zalando's clothing images, a drop-in replacement for MNIST)",
    name="fashion-mnist",
    system=(
        "; then ``/usr/share/datasets/fashion-mnist/``, where Debian's package "
        "``dataset-fashion-mnist`` installs them"
    ),
    mirrors=registry.FASHION_MNIST.mirrors,
    func="load_fashion_mnist",
)


def _load(spec, func, path, download, verify, mirrors, progress, timeout):
    path, mirrors = _check_arguments(func, path, download, verify, mirrors, progress, timeout)
    searched = []  # one line per place, for the error message
    for place in search_places(spec, path):
        loaded = _load_from(place, spec, verify, progress, searched)
        if loaded is not None:
            return loaded
    if not download:
        raise DatasetNotFoundError(_not_found_message(spec, func, searched, None, None))
    target = path if path is not None else user_cache_dir(spec.name)
    mirrors = spec.mirrors if mirrors is None else mirrors
    failures = _download_missing(spec, target, mirrors, progress, timeout)
    if failures:
        raise DatasetNotFoundError(_not_found_message(spec, func, searched, target, failures))
    return _read_files(spec, _find_files(target, spec), verify)


def _load_from(place, spec, verify, progress, searched):
    """The data set read from ``place``, or None (saying why in ``searched``).

    A bad file raises, except in the user cache, where it is deleted (and later downloaded
    again) so that it is never reused.
    """
    if place.folder is None:
        searched.append(f"{place.label}: {place.reason}")
        return None
    where = f"{place.label} {place.folder}"
    files = _find_files(place.folder, spec)
    missing = [f.gz_name for f, p in zip(spec.files, files, strict=True) if p is None]
    if place.owned and missing and place.folder.is_dir():
        # An interrupted download: the files that are there get checked before the rest come.
        _delete_corrupted(place.folder, spec, verify, progress, searched, where)
    if place.folder.is_file():
        searched.append(f"{where}: is a file; give the folder holding the four files")
    elif not place.folder.is_dir():
        searched.append(f"{where}: no such folder")
    elif missing:
        searched.append(f"{where}: missing {', '.join(missing)}")
    else:
        try:
            return _read_files(spec, files, verify)
        except DatasetIntegrityError as exc:
            if not place.owned or exc.path is None:
                raise
            _delete_corrupted(place.folder, spec, verify, progress, searched, where)
            if os.path.exists(exc.path):  # fine alone, wrong as a pair (e.g. counts differ)
                os.unlink(exc.path)
                searched.append(f"{where}: deleted {Path(exc.path).name} ({exc})")
    return None


def _delete_corrupted(folder, spec, verify, progress, searched, where):
    """In the user cache, delete every file that does not read back as it should — all of
    them, before anything is downloaded, so that one download repairs the cache."""
    for f, path in zip(spec.files, _find_files(folder, spec), strict=True):
        if path is None:
            continue
        try:
            read_idx(path, shape=f.shape if verify else None, sha256=f.sha256 if verify else None)
        except DatasetIntegrityError as exc:
            os.unlink(path)
            searched.append(f"{where}: deleted corrupted {Path(path).name} ({exc})")
            if progress:
                print(f"fastdl: deleted a corrupted cached file: {exc}", file=sys.stderr)


def _check_arguments(func, path, download, verify, mirrors, progress, timeout):
    if path is not None and not isinstance(path, str | os.PathLike):
        raise TypeError(f"{func}: path must be a str or os.PathLike, got {type(path).__name__}")
    if path is not None:
        path = Path(path)
    for name, value in (("download", download), ("verify", verify), ("progress", progress)):
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"{func}: {name} must be True or False, got {value!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"{func}: timeout must be a number of seconds, got {timeout!r}")
    if not 0 < timeout < float("inf"):
        raise ValueError(f"{func}: timeout must be a positive number of seconds, got {timeout!r}")
    if mirrors is not None:
        if isinstance(mirrors, str):
            raise TypeError(f"{func}: mirrors must be a sequence of URLs, got a single str")
        mirrors = tuple(mirrors)
        for url in mirrors:
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError(f"{func}: mirrors must be http:// or https:// URLs, got {url!r}")
    return path, mirrors


def _find_files(folder, spec):
    """Path of each of the four files in ``folder`` (``.gz`` preferred), None where absent."""
    found = []
    for f in spec.files:
        candidates = (folder / f.gz_name, folder / f.name)
        found.append(next((p for p in candidates if p.is_file()), None))
    return found


def _read_files(spec, paths, verify):
    arrays = [
        read_idx(p, shape=f.shape if verify else None, sha256=f.sha256 if verify else None)
        for f, p in zip(spec.files, paths, strict=True)
    ]
    x_train, y_train, x_test, y_test = arrays
    _check_pair(x_train, y_train, paths[0], paths[1])
    _check_pair(x_test, y_test, paths[2], paths[3])
    return (x_train, y_train), (x_test, y_test)


def _check_pair(images, labels, images_path, labels_path):
    """Format checks that hold for any MNIST-format pair, verified or not."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DatasetIntegrityError(
            f"{images_path}: expected uint8 images of shape (N, 28, 28), "
            f"got {images.dtype} {images.shape}",
            images_path,
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DatasetIntegrityError(
            f"{labels_path}: expected uint8 labels of shape (N,), got {labels.dtype} "
            f"{labels.shape}",
            labels_path,
        )
    if len(labels) != len(images):
        raise DatasetIntegrityError(
            f"{labels_path}: holds {len(labels):,} labels but {images_path} holds "
            f"{len(images):,} images",
            labels_path,
        )
    if len(labels) and labels.max() > 9:
        raise DatasetIntegrityError(
            f"{labels_path}: labels must be 0 to 9, found {int(labels.max())}", labels_path
        )


def _download_missing(spec, target, mirrors, progress, timeout):
    """Download each file missing from ``target``; return failure lines, empty on success."""
    for f, existing in zip(spec.files, _find_files(target, spec), strict=True):
        if existing is not None:
            continue
        failures = []
        for base in mirrors:
            url = base if base.endswith("/") else base + "/"
            url += f.gz_name
            try:
                fetch(
                    url,
                    target / f.gz_name,
                    check=lambda tmp, f=f: read_idx(tmp, shape=f.shape, sha256=f.sha256),
                    timeout=timeout,
                    max_bytes=_max_gzip_size(f),
                    progress=progress,
                )
                break
            except DatasetIntegrityError as exc:
                why = str(exc)
                if exc.path is not None:  # name the file, not the deleted temporary download
                    why = why.replace(str(exc.path), f.gz_name)
                failures.append(f"{url}: rejected, {why}")
            except OSError as exc:
                failures.append(f"{url}: {exc}")
        else:
            return failures or ["no mirrors given (mirrors=())"]
    return []


def _max_gzip_size(f):
    """Largest plausible gzip file for ``f``'s content: incompressible data grows by <0.1 %."""
    content = 4 + 4 * len(f.shape) + math.prod(f.shape)
    return content + content // 100 + (1 << 16)


def _not_found_message(spec, func, searched, target, failures):
    names = ", ".join(f.gz_name for f in spec.files)
    lines = [f"{spec.title} not found. Looked in:"]
    lines += [f"  - {line}" for line in searched]
    if failures is None:
        lines.append("  - download: not attempted (download=False)")
    else:
        lines.append(f"Download into {target} failed:")
        lines += [f"  - {line}" for line in failures]
    lines += [
        "To fix this, do one of:",
        f"  - put the four files ({names}) in a folder DIR/{spec.name}/ and set the "
        "environment variable FASTDL_DATA=DIR (one sub-folder per data set);",
        f'  - pass path="folder holding the four files" to {func}();',
    ]
    if spec.system_package:
        lines.append(f"  - install the system package ({spec.system_package});")
    lines.append("  - connect to the internet and call again with download=True.")
    return "\n".join(lines)
