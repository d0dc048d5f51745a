"""The book's utilities: :mod:`~fastdl.book.utils.np_utils` and :mod:`~fastdl.book.utils.mnist`."""

from fastdl.book.utils import mnist, np_utils

__all__ = ["mnist", "np_utils"]
