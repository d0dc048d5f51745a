"""Reading IDX files (the MNIST file format), gzip-compressed or raw, checked byte for byte.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian
uint32 dimensions, then the values in row-major order. The MNIST and Fashion-MNIST files use
type ``0x08`` (uint8); images are ``(N, 28, 28)`` and labels ``(N,)``.
"""

import hashlib
import math
import os
import zlib

import numpy as np

from .errors import DatasetIntegrityError, IDXFormatError

__all__ = ["read_idx"]

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CHUNK = 1 << 22
# Deflate cannot expand data by more than 1032:1; a header declaring more content than that
# belongs to a truncated or forged file, and is rejected before anything is allocated.
_MAX_DEFLATE_RATIO = 1032


def read_idx(path, *, shape=None, sha256=None):
    """Read one IDX file, gzip-compressed or raw, and check its structure and size.

    Compression is detected from the first bytes, not from the file name. The header's
    dimensions must account for every byte of the (uncompressed) content: a file that is
    shorter or longer than its header declares is rejected, as is gzip data that fails its
    CRC or ends early. Nothing partial is ever returned.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    shape : tuple of int, optional
        The shape the header must declare, checked before any data is read; for example
        ``(60000, 28, 28)``.
    sha256 : str, optional
        Expected SHA-256 (hex) of the *uncompressed* content, header included. Checked over
        the whole content, so the same digest accepts a file and any recompression of it.

    Returns
    -------
    ndarray, shape as declared by the header
        A new, writable array; dtype as declared by the header (uint8 for MNIST), in
        native byte order.

    Raises
    ------
    IDXFormatError
        Bad magic number, unknown type code, shape differing from ``shape``, or content
        shorter or longer than the header declares.
    DatasetIntegrityError
        Corrupted or truncated gzip data, or a SHA-256 differing from ``sha256``.

    Every message names the file, and when ``sha256`` is given, the expected checksum.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(2)
        f.seek(0)
        if head == _GZIP_MAGIC:
            stream = _GzipContent(f.read(), path, hashed=sha256 is not None)
        else:
            stream = _RawContent(f, path, hashed=sha256 is not None)
        try:
            return _read_stream(stream, path, shape, sha256)
        except DatasetIntegrityError as exc:
            if sha256 is None or sha256 in str(exc):
                raise
            raise type(exc)(
                f"{exc}; expected SHA-256 of the uncompressed content: {sha256}", path
            ) from None


def _read_stream(stream, path, shape, sha256):
    magic = stream.read(4)
    if len(magic) < 4:
        raise IDXFormatError(f"{path}: too short for an IDX header ({len(magic)} bytes)", path)
    if magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES:
        raise IDXFormatError(
            f"{path}: bad IDX magic number 0x{magic.hex()}; expected 0x0000TTNN with type "
            f"code TT in {sorted(hex(t) for t in _IDX_TYPES)} (0x08 = uint8)",
            path,
        )
    dtype, ndim = _IDX_TYPES[magic[2]], magic[3]
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise IDXFormatError(f"{path}: IDX header ends inside its {ndim} dimensions", path)
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    if shape is not None and dims != tuple(shape):
        raise IDXFormatError(f"{path}: header declares shape {dims}, expected {tuple(shape)}", path)
    header_size = 4 + 4 * ndim
    nbytes = math.prod(dims) * dtype.itemsize
    stream.check_declared_size(header_size + nbytes)

    data = np.empty(nbytes, dtype=np.uint8)
    got = stream.readinto(memoryview(data))
    if got < nbytes:
        raise IDXFormatError(
            f"{path}: header declares shape {dims} of {dtype.name}, i.e. "
            f"{header_size + nbytes:,} bytes of content, but the content ends after "
            f"{header_size + got:,} bytes (truncated)",
            path,
        )
    if not stream.at_end():
        raise IDXFormatError(
            f"{path}: content continues past the {header_size + nbytes:,} bytes that the "
            f"header (shape {dims} of {dtype.name}) declares (not a single IDX file)",
            path,
        )
    if sha256 is not None:
        digest = stream.hexdigest()
        if digest != sha256:
            raise DatasetIntegrityError(
                f"{path}: checksum mismatch: SHA-256 of the uncompressed content is {digest}, "
                f"expected {sha256}; the file is corrupted or is not the expected file",
                path,
            )
    array = data.view(dtype).reshape(dims)
    return array if dtype.isnative else array.astype(dtype.newbyteorder("="))


class _RawContent:
    """Content of an uncompressed file, read in place and hashed as it is read."""

    def __init__(self, f, path, hashed):
        self._f = f
        self._path = path
        self._size = os.fstat(f.fileno()).st_size
        self._hash = hashlib.sha256() if hashed else _NoHash()

    def read(self, n):
        chunk = self._f.read(n)
        self._hash.update(chunk)
        return chunk

    def check_declared_size(self, size):
        if size != self._size:
            raise IDXFormatError(
                f"{self._path}: header declares {size:,} bytes of content but the file holds "
                f"{self._size:,} (truncated or not an IDX file)",
                self._path,
            )

    def readinto(self, view):
        filled = 0
        while filled < len(view):
            part = view[filled : filled + _CHUNK]
            got = self._f.readinto(part)
            if not got:
                break
            self._hash.update(part[:got])
            filled += got
        return filled

    def at_end(self):
        return self._f.read(1) == b""

    def hexdigest(self):
        return self._hash.hexdigest()


class _GzipContent:
    """Decompressed content of gzip data (one or more members), produced on demand."""

    def __init__(self, compressed, path, hashed):
        self._path = path
        self._compressed_size = len(compressed)
        self._tail = compressed
        self._inflate = zlib.decompressobj(31)
        self._hash = hashlib.sha256() if hashed else _NoHash()

    def _next(self, n):
        """Return up to ``n`` bytes of content; ``b""`` only at the true end of the data."""
        while True:
            if self._inflate.eof:
                if not self._inflate.unused_data:
                    return b""
                self._tail = self._inflate.unused_data
                self._inflate = zlib.decompressobj(31)
            try:
                chunk = self._inflate.decompress(self._tail, n)
            except zlib.error as exc:
                raise DatasetIntegrityError(
                    f"{self._path}: corrupted gzip data ({exc})", self._path
                ) from None
            self._tail = self._inflate.unconsumed_tail
            if chunk:
                self._hash.update(chunk)
                return chunk
            if not self._inflate.eof:
                raise DatasetIntegrityError(
                    f"{self._path}: gzip data ends early (the file is truncated)", self._path
                )

    def read(self, n):
        parts = []
        while n > 0:
            chunk = self._next(n)
            if not chunk:
                break
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    def check_declared_size(self, size):
        if size > _MAX_DEFLATE_RATIO * self._compressed_size + 1024:
            raise IDXFormatError(
                f"{self._path}: header declares {size:,} bytes of content, more than "
                f"{self._compressed_size:,} bytes of gzip data can hold (truncated or not an "
                "IDX file)",
                self._path,
            )

    def readinto(self, view):
        filled = 0
        while filled < len(view):
            chunk = self._next(min(_CHUNK, len(view) - filled))
            if not chunk:
                break
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        return filled

    def at_end(self):
        return self._next(1) == b""

    def hexdigest(self):
        return self._hash.hexdigest()


class _NoHash:
    """Stands in for a hashlib object when no checksum is asked for."""

    def update(self, data):
        pass
