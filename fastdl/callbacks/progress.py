"""Progress: what ``fit`` prints while it trains (``verbose=0``, ``1`` or ``2``).

- ``verbose=1``: a bar per epoch showing the batch, the running loss, images/s and the time
  left. On a terminal it is drawn by tqdm when tqdm is installed (``pip install
  'fastdl[progress]'``), else by a small bar of fastdl's own redrawn with ``\\r``; when the
  output is not a terminal (a log file, a notebook's captured output, CI), a plain line
  every tenth of the epoch instead, flushed at once. Then one line per epoch.
- ``verbose=2``: only the line per epoch.
- ``verbose=0``: nothing.

``FASTDL_PROGRESS=0`` turns the bars off everywhere (``verbose=1`` then prints as
``verbose=2``). Before the first batch on a cold numba cache it says that the kernels are
being compiled, which takes seconds once per installation.
"""

from __future__ import annotations

import os
import sys
import time

from fastdl.callbacks.base import Callback

__all__ = ["Progress", "bars_enabled"]


def bars_enabled() -> bool:
    """False when ``FASTDL_PROGRESS`` is ``0`` (or ``false``, ``no``, ``off``)."""
    return os.environ.get("FASTDL_PROGRESS", "1").strip().lower() not in ("0", "false", "no", "off")


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class _OwnBar:
    """A one-line bar redrawn in place with ``\\r``, for a terminal without tqdm."""

    width = 24

    def __init__(self, file, total: int, desc: str) -> None:
        self.file, self.total, self.desc = file, total, desc
        self.last = 0.0

    def update(self, done: int, text: str, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self.last < 0.1 and done < self.total:
            return
        self.last = now
        filled = self.width * done // max(self.total, 1)
        bar = "#" * filled + "-" * (self.width - filled)
        self.file.write(f"\r{self.desc} [{bar}] {done}/{self.total}  {text}\033[K")
        self.file.flush()

    def close(self) -> None:
        self.file.write("\n")
        self.file.flush()


class _TqdmBar:
    def __init__(self, tqdm, file, total: int, desc: str) -> None:
        self.bar = tqdm(total=total, desc=desc, file=file, leave=False, unit="batch",
                        dynamic_ncols=True, mininterval=0.1)  # fmt: skip
        self.done = 0

    def update(self, done: int, text: str, force: bool = False) -> None:
        self.bar.set_postfix_str(text, refresh=False)
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        self.bar.close()


class Progress(Callback):
    """Print training progress; ``fit(verbose=...)`` adds one (see the module docstring).

    Parameters
    ----------
    verbose : {1, 2}
        1: a bar (or plain lines) within each epoch and a line per epoch; 2: the line only.
    file : text stream, optional
        Where to print (default ``sys.stdout``, looked up when training starts).
    """

    def __init__(self, verbose: int = 1, file=None) -> None:
        if verbose not in (1, 2):
            raise ValueError(f"Progress: verbose must be 1 or 2, got {verbose!r}")
        self.verbose = verbose
        self.file = file
        self._bar = None

    # -- what fit and the other callbacks say ------------------------------------------------

    def note(self, text: str) -> None:
        """Print one line, above the bar if one is drawn."""
        out = self._out()
        if self._bar is not None and isinstance(self._bar, _TqdmBar):
            self._bar.bar.write(text, file=out)
            return
        if self._bar is not None:
            out.write("\r\033[K")
        out.write(text + "\n")
        out.flush()

    def notice_compiling(self) -> None:
        """Say so if the first pass will compile the kernels (a cold numba cache)."""
        from fastdl import config

        if not config.pure():
            from fastdl.kernels import _jit

            if _jit.cache_is_cold():
                self.note("compiling kernels (first run only; they are cached for the next)")

    def _out(self):
        return self.file if self.file is not None else sys.stdout

    def _mode(self) -> str:
        """``"tqdm"``, ``"bar"``, ``"lines"`` or ``"epochs"``."""
        if self.verbose == 2 or not bars_enabled():
            return "epochs"
        out = self._out()
        if not (hasattr(out, "isatty") and out.isatty()):
            return "lines"
        try:
            import tqdm  # noqa: F401
        except ImportError:
            return "bar"
        return "tqdm"

    # -- hooks --------------------------------------------------------------------------------

    def on_train_begin(self, trainer, logs: dict) -> None:
        self.mode = self._mode()
        self.epochs = logs["epochs"]
        self.unit = logs.get("unit", "ex")

    def on_epoch_begin(self, trainer, logs: dict) -> None:
        self.batches = logs["batches"]
        self.every = max(1, self.batches // 10)
        self.desc = f"epoch {logs['epoch']}/{self.epochs}"
        self.loss_sum, self.loss_n = 0.0, 0
        self.done = logs["done"]  # batches of a resumed epoch done before
        if self.mode == "tqdm":
            import tqdm

            self._bar = _TqdmBar(tqdm.tqdm, self._out(), self.batches, self.desc)
        elif self.mode == "bar":
            self._bar = _OwnBar(self._out(), self.batches, self.desc)

    def on_batch_end(self, trainer, logs: dict) -> None:
        if self.mode == "epochs":
            return
        self.loss_sum += logs["loss"]
        self.loss_n += 1
        batch, batches = logs["batch"], logs["batches"]
        rate = logs["images_per_s"]
        left = (batches - batch) * logs["seconds"] / max(batch - self.done, 1)
        text = f"loss {self.loss_sum / self.loss_n:.4f}  {rate:,.0f} {self.unit}/s"
        if self.mode != "tqdm":  # tqdm shows its own estimate
            text += f"  {_clock(left)} left"
        if self._bar is not None:
            self._bar.update(batch, text)
        elif batch % self.every == 0 or batch == batches:
            self.note(f"  {self.desc} [{batch:>{len(str(batches))}}/{batches}]  {text}")
        if batch % self.every == 0:
            self.loss_sum, self.loss_n = 0.0, 0

    def on_epoch_end(self, trainer, logs: dict) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        parts = [f"epoch {logs['epoch']}/{self.epochs}", f"train loss {logs['train_loss']:.4f}"]
        if logs.get("evaluated"):
            parts.append(f"val loss {logs['val_loss']:.4f}")
            if logs.get("val_accuracy") is not None:
                parts.append(f"val acc {100 * logs['val_accuracy']:.2f}%")
        parts.append(f"{logs['images_per_s']:,.0f} {self.unit}/s")
        parts.append(f"({logs['total_seconds']:.1f} s)")
        self.note("  ".join(parts))
