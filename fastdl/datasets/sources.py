"""Where the loaders look for a data set's files, in order, before they download anything."""

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Place", "user_cache_dir", "search_places"]


@dataclass(frozen=True)
class Place:
    """One folder the loaders search.

    Attributes
    ----------
    label : str
        What the place is, for messages: ``"path= argument"``, ``"$FASTDL_DATA/mnist"``...
    folder : pathlib.Path or None
        The folder, or None when the place is not configured.
    reason : str
        Why ``folder`` is None (empty otherwise).
    owned : bool
        True for the user cache, which only fastdl writes: a bad file found there is
        deleted and downloaded again. Files anywhere else are never touched.
    """

    label: str
    folder: Path | None
    reason: str = ""
    owned: bool = False


def user_cache_dir(name):
    """Return the download cache folder of data set ``name``.

    ``$XDG_CACHE_HOME/fastdl/<name>`` when ``XDG_CACHE_HOME`` is set to an absolute path (the
    XDG specification says to ignore a relative one), else ``~/.cache/fastdl/<name>``.
    Read at call time, so changing the environment takes effect immediately.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "fastdl" / name


def search_places(spec, path=None):
    """Return the places to search for data set ``spec``, in order.

    The order is: the explicit ``path``; ``$FASTDL_DATA/<spec.name>``; the user cache
    (:func:`user_cache_dir`); the folders of operating-system packages
    (``spec.system_dirs``, e.g. Debian's ``/usr/share/datasets/fashion-mnist``).
    ``FASTDL_DATA`` is read at call time; a relative value is taken relative to the current
    working directory, and an empty value counts as unset.
    """
    places = []
    if path is None:
        places.append(Place("path= argument", None, "not given"))
    else:
        places.append(Place("path= argument", Path(path)))
    data_home = os.environ.get("FASTDL_DATA", "")
    label = f"$FASTDL_DATA/{spec.name}"
    if data_home:
        places.append(Place(label, Path(data_home) / spec.name))
    else:
        places.append(Place(label, None, "FASTDL_DATA is not set"))
    places.append(Place("user cache", user_cache_dir(spec.name), owned=True))
    for folder in spec.system_dirs:
        places.append(Place("system package folder", Path(folder)))
    return places
