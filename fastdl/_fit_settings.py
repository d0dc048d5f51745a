"""The checks ``Trainer.fit`` makes of its arguments before any arithmetic, and the
settings it runs (and a checkpoint records) once they pass."""

from __future__ import annotations

import inspect
import json

import numpy as np

from fastdl._checks import positive_int

__all__ = ["check_xy", "fit_settings", "try_augment"]


def check_xy(x: np.ndarray, y: np.ndarray, what: str, where: str = "Trainer.fit") -> None:
    for name, arr in (("x_" + what, x), ("y_" + what, y)):
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{where}: {name} must be a numpy array, got {type(arr).__name__}")
        if arr.ndim == 0 or len(arr) == 0:
            raise ValueError(f"{where}: {name} is empty (shape {arr.shape})")
        if np.issubdtype(arr.dtype, np.inexact) and not np.isfinite(arr).all():
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(
                f"{where}: {name} holds {bad} NaN or infinite value(s); "
                "a network cannot learn from them (and the loss would report a divergence)"
            )
    if len(x) != len(y):
        raise ValueError(f"{where}: x_{what} has {len(x)} examples but y_{what} has {len(y)}")


def _split(x, y, fraction, batch_size, stateful):
    """The last ``fraction`` of ``x``, ``y`` (before any shuffling) as validation data, as
    Keras's ``validation_split``: ``(x_train, y_train, x_val, y_val)``."""
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not (0.0 < fraction < 1.0)
    ):
        raise ValueError(
            f"Trainer.fit: validation_split must be a fraction in (0, 1), got {fraction!r}"
        )
    n = len(x)
    split_at = int(n * (1.0 - fraction))
    if stateful:  # whole batches of streams on both sides
        split_at -= split_at % batch_size
    if split_at == 0 or split_at == n:
        raise ValueError(
            f"Trainer.fit: validation_split={fraction} of {n} examples leaves "
            f"{split_at} to train on and {n - split_at} to validate; both need some"
        )
    return x[:split_at], y[:split_at], x[split_at:], y[split_at:]


def _check_stateful(net, x, batch_size, shuffle, eval_batch_size) -> None:
    if not any(getattr(layer, "stateful", False) for layer in net.layers):
        raise ValueError(
            "Trainer.fit: stateful=True carries recurrent state between batches, but no "
            "layer of the network was built with stateful=True (e.g. "
            "fd.LSTMLayer(256, stateful=True))"
        )
    if shuffle:
        raise ValueError(
            "Trainer.fit: stateful=True trains streams in order; pass shuffle=False too"
        )
    if len(x) % batch_size:
        raise ValueError(
            f"Trainer.fit: stateful=True needs whole batches of {batch_size} streams, but "
            f"x_train has {len(x)} rows (not a multiple of {batch_size}); "
            "fastdl.datasets.stream_windows lays a sequence out so"
        )
    if eval_batch_size is not None and eval_batch_size != batch_size:
        raise ValueError(
            f"Trainer.fit: with stateful=True, evaluation runs the same {batch_size} "
            f"streams as training; eval_batch_size={eval_batch_size} would cut them "
            "differently (leave it out)"
        )


def _check_augment(augment, x) -> dict:
    """Check ``fit``'s ``augment`` against the training images ``x`` and return how a
    checkpoint records it: the class name and ``get_config()`` where it has one, else the
    callable's qualified name (:func:`try_augment` then checks what it returns)."""
    if not callable(augment):
        raise TypeError(
            "Trainer.fit: augment must be a callable augment(x, rng), such as "
            f"fd.augment.RandomTranslate(2), got {type(augment).__name__}"
        )
    try:
        inspect.signature(augment).bind(x[:1], None)
    except TypeError as error:
        raise TypeError(f"Trainer.fit: augment must take (x, rng): {error}") from None
    except ValueError:  # no signature to inspect (some builtins): the trial call tells
        pass
    if x.ndim != 4 or x.dtype.kind != "f":
        raise ValueError(
            "Trainer.fit: augment works on batches of images: x_train must be a float array "
            f"(N, C, H, W), got shape {x.shape} of {x.dtype}"
            + (" (scale it to floats first, e.g. x / 255)" if x.dtype.kind in "iub" else "")
        )
    kind = type(augment)
    if hasattr(augment, "get_config"):
        config = augment.get_config()
        try:  # as the checkpoint's JSON will give it back, so a resume compares like with like
            config = json.loads(json.dumps(config, default=_plain))
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Trainer.fit: augment.get_config() must give plain values (a checkpoint "
                f"records them): {error}"
            ) from None
        return {"name": kind.__name__, "config": config}
    name = getattr(augment, "__qualname__", kind.__qualname__)
    return {"name": f"{getattr(augment, '__module__', kind.__module__)}.{name}"}


def _plain(value):
    """numpy scalars and arrays as Python numbers and lists, for ``json.dumps``."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def try_augment(augment, x) -> None:
    """One trial call of ``augment`` on a copy of the first training image, with a generator
    of its own (fit's is not touched): it must return an array of the batch's shape, since
    the network is evaluated on images that are not augmented."""
    out = augment(x[:1].copy(), np.random.default_rng(0))
    if not isinstance(out, np.ndarray) or out.shape != x[:1].shape:
        got = f"shape {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(
            f"Trainer.fit: augment(x, rng) must return an array of x's shape, {x[:1].shape} "
            f"for one image (evaluation data is never augmented), got {got}"
        )


def check_rows(net, n_train: int, batch_size: int, processes: int) -> None:
    """Refuse, before training, a run in which a layer that needs two rows (BatchNorm1D)
    would train on one: a batch of one row, or — over several processes, each taking its
    shard of every batch (full ones and the last) — a shard of one row."""
    needy = [layer.name for layer in net.layers if layer.needs_two_rows]
    if not needy:
        return
    last = n_train % batch_size or batch_size
    if processes == 1:
        if 1 in (batch_size, last):
            raise ValueError(
                f"Trainer.fit: {needy[0]} cannot train on a batch of one row, and "
                f"{n_train} training rows in batches of {batch_size} "
                f"{'are all' if batch_size == 1 else 'leave a last batch of'} one row: choose "
                "another batch_size, or leave one row out"
            )
        return
    for rows in {batch_size, last}:
        base, extra = divmod(rows, processes)
        if (base == 1 and extra < processes) or (base == 0 and extra > 0):
            raise ValueError(
                f"Trainer.fit: a batch of {rows} rows over {processes} processes leaves some "
                f"process one row, on which {needy[0]} cannot train; choose a batch_size "
                "(and a training set size) whose batches give every process 0 or at least "
                "2 rows"
            )


def fit_settings(net, x_train, y_train, x_test, y_test, *, epochs, eval_every, batch_size, seed,
                 early_stopping, verbose, patience, eval_batch_size, checkpoint,
                 checkpoint_every, shuffle, stateful, validation_split,
                 augment=None):  # fmt: skip
    """Check ``fit``'s arguments (raising ``TypeError``/``ValueError`` that name the argument)
    and return ``(settings, (x_train, y_train, x_test, y_test), checkpoint_every)``: the
    settings a checkpoint records (and a resumed run must repeat), and the data after a
    ``validation_split``."""
    check_xy(x_train, y_train, "train")
    if (x_test is None) != (y_test is None):
        raise ValueError("Trainer.fit: give both x_test and y_test, or neither")
    if x_test is not None:
        check_xy(x_test, y_test, "test")
    epochs = positive_int("Trainer.fit", "epochs", epochs)
    eval_every = positive_int("Trainer.fit", "eval_every", eval_every)
    batch_size = positive_int("Trainer.fit", "batch_size", batch_size)
    patience = positive_int("Trainer.fit", "patience", patience)
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"Trainer.fit: verbose must be 0, 1 or 2, got {verbose!r}")
    stateful, shuffle = bool(stateful), bool(shuffle)
    if stateful:
        _check_stateful(net, x_train, batch_size, shuffle, eval_batch_size)
    if eval_batch_size is None:
        eval_batch_size = batch_size if stateful else 1000
    eval_batch_size = positive_int("Trainer.fit", "eval_batch_size", eval_batch_size)
    if validation_split is not None:
        if x_test is not None:
            raise ValueError("Trainer.fit: give x_test/y_test or validation_split, not both")
        x_train, y_train, x_test, y_test = _split(x_train, y_train, validation_split,
                                                  batch_size, stateful)  # fmt: skip
    if stateful and x_test is not None and len(x_test) % batch_size:
        raise ValueError(
            f"Trainer.fit: stateful=True evaluates {batch_size} streams at a time, but "
            f"x_test has {len(x_test)} rows, not a multiple of {batch_size}"
        )
    if checkpoint_every is not None:
        checkpoint_every = positive_int("Trainer.fit", "checkpoint_every", checkpoint_every)
        if checkpoint is None:
            raise ValueError("Trainer.fit: checkpoint_every needs checkpoint= (a path)")
    augment = None if augment is None else _check_augment(augment, x_train)
    settings = {
        "epochs": epochs, "eval_every": eval_every, "batch_size": batch_size,
        "seed": seed, "early_stopping": bool(early_stopping), "patience": patience,
        "eval_batch_size": eval_batch_size, "n_train": len(x_train),
        "n_test": None if x_test is None else len(x_test),
        "shuffle": shuffle, "stateful": stateful, "validation_split": validation_split,
        "augment": augment,
    }  # fmt: skip
    return settings, (x_train, y_train, x_test, y_test), checkpoint_every
