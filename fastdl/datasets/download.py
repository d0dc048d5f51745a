"""Downloading one file: short timeouts, an overall deadline, a progress line, a temporary file
renamed once checked."""

import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

__all__ = ["DownloadError", "fetch"]

_BLOCK = 1 << 16
_USER_AGENT = "fastdl-datasets/0.1 (Python urllib)"


class DownloadError(OSError):
    """One URL could not be fetched; the message says why (HTTP status, refused, timeout...)."""


#: Slowest transfer a default deadline allows for (bytes per second), beyond a fixed minute.
MIN_RATE = 20_000


def default_deadline(max_bytes):
    """Seconds allowed for a whole file of at most ``max_bytes``: a minute, plus the time the
    file takes at :data:`MIN_RATE`."""
    return 60.0 + (max_bytes or 0) / MIN_RATE


def fetch(url, dest, *, check, timeout=5.0, max_bytes=None, progress=True, deadline=None):
    """Download ``url`` to ``dest``, atomically and only if ``check`` accepts the payload.

    The payload is written to a temporary file in ``dest``'s folder, passed to
    ``check(temporary_path)``, and renamed to ``dest`` only if ``check`` returns without
    raising. On any failure, including KeyboardInterrupt, the temporary file is removed,
    ``dest`` is left as it was, and folders created for it are removed again if empty.

    Parameters
    ----------
    url : str
        An ``http://`` or ``https://`` URL.
    dest : str or os.PathLike
        Final path; its folder is created if needed.
    check : callable
        Called with the temporary file's path; raises to reject the payload.
    timeout : float
        Seconds allowed for connecting and for each read; a dead host fails in seconds.
    deadline : float, optional
        Seconds allowed for the whole download (default :func:`default_deadline`), so a
        server that trickles a byte now and then cannot keep the caller waiting forever.
    max_bytes : int, optional
        Largest payload accepted; a larger one is abandoned as soon as it is seen.
    progress : bool
        Write a progress line to ``sys.stderr``.

    Raises
    ------
    DownloadError
        The URL could not be fetched (HTTP error, connection refused, timeout, payload too
        large or cut short).
    Exception
        Whatever ``check`` raises.
    """
    dest = Path(dest)
    created = [p for p in (dest.parent, *dest.parent.parents) if not p.exists()]
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    except BaseException:
        _remove_empty(created)
        raise
    try:
        with os.fdopen(fd, "wb") as out:
            bar = _Progress(dest.name, url, progress)
            try:
                limit = default_deadline(max_bytes) if deadline is None else float(deadline)
                _copy_url(url, out, timeout, max_bytes, bar, time.monotonic() + limit, limit)
            finally:
                bar.close()
        check(tmp)
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        _remove_empty(created)
        raise
    return dest


def _remove_empty(folders):
    """Remove the folders this call created (deepest first), if they are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _copy_url(url, out, timeout, max_bytes, progress, stop_at, limit):
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            total = _content_length(response)
            if total is not None and max_bytes is not None and total > max_bytes:
                raise DownloadError(f"server announces {total:,} bytes, more than {max_bytes:,}")
            done = 0
            # read1: whatever has arrived (up to a block), so a slow server still shows
            # progress and the deadline is checked between the bytes it sends
            while block := response.read1(_BLOCK):
                done += len(block)
                if time.monotonic() > stop_at:
                    raise DownloadError(
                        f"took longer than {limit:.0f} s ({done:,} of "
                        f"{f'{total:,}' if total is not None else 'unknown'} bytes received)"
                    )
                if max_bytes is not None and done > max_bytes:
                    raise DownloadError(f"payload exceeds {max_bytes:,} bytes")
                out.write(block)
                progress.update(done, total)
            progress.draw(done, total)
            if total is not None and done != total:
                raise DownloadError(f"connection closed after {done:,} of {total:,} bytes")
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DownloadError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise DownloadError(f"cannot connect ({exc.reason})") from None
    except TimeoutError:
        raise DownloadError(f"no answer within {timeout} s") from None
    except http.client.HTTPException as exc:
        raise DownloadError(f"broken HTTP response ({type(exc).__name__}: {exc})") from None
    except DownloadError:
        raise
    except OSError as exc:
        raise DownloadError(f"network error ({exc})") from None


def _content_length(response):
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _Progress:
    """A one-line progress indicator on stderr, redrawn at most four times a second."""

    def __init__(self, name, url, enabled):
        self._enabled = enabled and sys.stderr is not None
        self._prefix = f"Downloading {name} from {urllib.parse.urlsplit(url).netloc}"
        self._last = 0.0
        self._open_line = False

    def update(self, done, total):
        now = time.monotonic()
        if now - self._last >= 0.25:
            self._last = now
            self.draw(done, total)

    def draw(self, done, total):
        if not self._enabled:
            return
        if total:
            amount = f"{100 * done // total:3d}% ({done / 1e6:.1f} of {total / 1e6:.1f} MB)"
        else:
            amount = f"{done / 1e6:.1f} MB"
        sys.stderr.write(f"\r{self._prefix}: {amount}")
        sys.stderr.flush()
        self._open_line = True

    def close(self):
        """End the progress line, if one was drawn."""
        if self._open_line:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._open_line = False
