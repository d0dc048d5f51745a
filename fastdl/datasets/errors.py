"""Exceptions raised by the data set loaders."""


class DatasetNotFoundError(FileNotFoundError):
    """A data set is in none of the places searched and could not be downloaded.

    The message lists every place that was searched, every mirror that was tried with
    the reason it failed, and how to fix it (``FASTDL_DATA`` or ``path=``).
    """


class DatasetIntegrityError(ValueError):
    """A data file is truncated, corrupted or not the file it claims to be.

    Parameters
    ----------
    message : str
        What is wrong; it names the file and, for a checksum mismatch, the expected
        checksum.
    path : str or None
        The offending file, kept so a caller can act on it (the loaders delete a bad
        file from their own download cache, and nowhere else).
    """

    def __init__(self, message, path=None):
        super().__init__(message)
        self.path = None if path is None else str(path)


class IDXFormatError(DatasetIntegrityError):
    """A file does not follow the IDX format (bad magic number, dimensions or size)."""
