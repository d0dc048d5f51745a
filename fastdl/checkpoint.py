"""Checkpoints of ``Trainer.fit``: everything the loop needs to continue bit for bit.

A checkpoint is a file of the format of :mod:`fastdl.saving` (``"format":
"fastdl-checkpoint"``): the network and its optimizer as ``net.save`` writes them (weights,
buffers such as running statistics, velocities and moments, the learning-rate schedule's
position, the moving average, the network's random generator, which draws dropout masks),
plus a ``fit`` section:

- the position: the epoch in progress and how many of its batches are done, the epoch's
  shuffled order (an int64 array) and its running loss sum;
- the shuffling generator's state (it draws fit's ``augment`` too);
- the History so far, the best evaluation's loss and weights (``net.get_weights()``: the
  parameters, then the buffers such as batch normalisation's running statistics), whether
  the run has ended;
- the ``state_dict()`` of every callback that has one (early stopping's count of
  evaluations without improvement, a user's own), in the order of ``fit``'s callbacks;
- the settings that must not change on resume (epochs, batch size, seed, the augmentation
  by class and ``get_config()``, ...), and the wall time spent so far.

Written atomically (:func:`fastdl.saving.atomic_write`): a kill, even during a write, leaves
the previous checkpoint or the new one.
"""

from __future__ import annotations

import os

import numpy as np

from fastdl import saving

__all__ = ["FORMAT", "write", "read", "restore"]

FORMAT = "fastdl-checkpoint"

#: fit's arguments that a resumed run must be given unchanged.
SETTINGS = ("epochs", "eval_every", "batch_size", "seed", "early_stopping", "patience",
            "eval_batch_size", "n_train", "n_test", "shuffle", "stateful",
            "validation_split", "augment")  # fmt: skip
#: What a checkpoint written before a setting existed means by its absence.
_DEFAULTS = {"shuffle": True, "stateful": False, "validation_split": None, "augment": None}


def _stateful(callbacks) -> list:
    return [cb for cb in callbacks if hasattr(cb, "state_dict") and hasattr(cb, "load_state_dict")]


def _filled(cls, config):
    """A saved constructor ``config`` with the arguments added since it was written at
    their defaults (what ``cls(**config)`` reports), or ``config`` itself if it does not
    build a ``cls``."""
    try:
        return saving._jsonable_config(cls(**config).get_config())
    except (TypeError, ValueError):
        return config


def write(path, trainer, run, settings: dict, callbacks=()) -> None:
    """Write the state of ``trainer.fit``'s loop (``run``) to ``path`` atomically."""
    net, optim = trainer.net, trainer.optim
    arrays: dict[str, np.ndarray] = {}
    header = saving._header(net, optim, arrays)
    header["format"] = FORMAT
    h = run.history
    best = []
    for i, w in enumerate(run.best_weights):
        arrays[f"fit.best.{i}"] = w
        best.append(f"fit.best.{i}")
    if run.order is not None:
        arrays["fit.order"] = run.order
    header["fit"] = {
        "settings": settings,
        "epoch": run.epoch,
        "batch": run.batch,
        "total": run.total,
        "order": None if run.order is None else "fit.order",
        "shuffle_state": run.shuffle.bit_generator.state,
        "best_loss": run.best_loss,
        "best_weights": best,
        # a callback may end the run in the on_epoch_end this checkpoint is written from
        "stopped": run.stopped or trainer.stop_training,
        "callbacks": [
            {"name": type(cb).__name__, "state": cb.state_dict()} for cb in _stateful(callbacks)
        ],
        "seconds": run.elapsed(),
        "history": {
            "epoch": list(h.epoch),
            "train_loss": list(h.train_loss),
            "val_loss": list(h.val_loss),
            "val_accuracy": list(h.val_accuracy),
            "best_epoch": h.best_epoch,
            "stopped_early": h.stopped_early,
            "stopped_by": h.stopped_by or (trainer._stopped_by if trainer.stop_training else None),
        },  # fmt: skip
    }
    with saving.atomic_write(path) as f:
        saving.write_archive(f, header, arrays)


def read(path) -> tuple[dict, dict]:
    """The header and arrays of a checkpoint (every check of :func:`saving.read_archive`)."""
    header, arrays = saving.read_archive(path, FORMAT)
    if not isinstance(header.get("fit"), dict):
        raise saving.ModelFileError(f"Trainer.fit: {os.fspath(path)}: holds no fit state")
    return header, arrays


def restore(trainer, header: dict, arrays: dict, run, settings: dict, path, callbacks=()) -> None:
    """Put a checkpoint's state into ``trainer`` (network, optimizer) and ``run``.

    Raises
    ------
    ValueError
        The checkpoint belongs to another network or to a fit with other settings.
    """
    where = f"Trainer.fit: resume={os.fspath(path)}"
    net, optim = trainer.net, trainer.optim
    saved_layers = [(e["name"], e["config"]) for e in header["layers"]]
    ours = [(e["name"], e["config"]) for e in saving._header(net, None, {})["layers"]]
    if saved_layers != ours or header.get("dtype") != net.dtype.name:
        raise ValueError(f"{where}: the checkpoint was written for another network")
    fit = header["fit"]
    theirs = {**_DEFAULTS, **fit["settings"]}
    changed = {k: (theirs.get(k), v) for k, v in settings.items() if theirs.get(k) != v}
    if changed:
        what = ", ".join(f"{k}={new!r} (checkpoint: {old!r})" for k, (old, new) in changed.items())
        raise ValueError(f"{where}: fit was called with other settings than the run it "
                         f"continues: {what}")  # fmt: skip
    saved_optim = header.get("optimizer") or {}
    if (saved_optim.get("name"), _filled(type(optim), saved_optim.get("config"))) != (
        saving.header_name(saving.OPTIMIZERS, type(optim)),
        saving._jsonable_config(optim.get_config()),
    ):
        raise ValueError(
            f"{where}: the checkpoint's optimizer is {saved_optim.get('name')}"
            f"({saved_optim.get('config')}), this fit's {type(optim).__name__}"
            f"({optim.get_config()})"
        )
    saved_loss = header.get("loss") or {}
    if (saved_loss.get("name"), _filled(type(net.loss), saved_loss.get("config"))) != (
        saving.header_name(saving.LOSSES, type(net.loss)),
        saving._jsonable_config(net.loss.get_config()),
    ):
        raise ValueError(
            f"{where}: the checkpoint's loss is {saved_loss.get('name')}"
            f"({saved_loss.get('config')}), this fit's {net.loss!r}"
        )
    ours_cbs = _stateful(callbacks)
    kept = fit.get("callbacks")
    if kept is None:  # written before callbacks were kept: only early stopping had state
        kept = [{"name": "EarlyStopping", "state": {"bad_evals": fit.get("bad_evals", 0)}}]
        kept = kept if any(type(cb).__name__ == "EarlyStopping" for cb in ours_cbs) else []
    if [e["name"] for e in kept] != [type(cb).__name__ for cb in ours_cbs]:
        raise ValueError(
            f"{where}: the checkpoint kept the state of the callbacks "
            f"{[e['name'] for e in kept]}, this fit has {[type(cb).__name__ for cb in ours_cbs]} "
            "(give fit the callbacks of the run it continues)"
        )
    loaded = saving._network_from(where, header, arrays)
    net.set_weights(loaded.get_weights())  # parameters and buffers (running statistics)
    net.rng.bit_generator.state = header["rng_state"]
    for mine, theirs in zip(net.layers, loaded.layers, strict=True):
        if getattr(mine, "stateful", False):
            state = theirs.state
            mine.reset_state() if state is None else mine.set_state(*state)
    optim.load_state_dict(saving._optimizer_from(where, header["optimizer"], arrays, loaded)
                          .state_dict())  # fmt: skip
    run.epoch, run.batch, run.total = int(fit["epoch"]), int(fit["batch"]), float(fit["total"])
    run.order = None if fit["order"] is None else arrays[fit["order"]].copy()
    run.shuffle.bit_generator.state = fit["shuffle_state"]
    run.best_loss = float(fit["best_loss"])
    run.best_weights = [arrays[k].copy() for k in fit["best_weights"]]
    run.stopped = bool(fit.get("stopped", fit["history"]["stopped_early"]))
    run.seen = min(run.batch * settings["batch_size"], settings["n_train"])
    for cb, entry in zip(ours_cbs, kept, strict=True):
        cb.load_state_dict(entry["state"])
    run.seconds_before = float(fit["seconds"])
    h, saved = run.history, fit["history"]
    h.epoch, h.train_loss = list(saved["epoch"]), list(saved["train_loss"])
    h.val_loss, h.val_accuracy = list(saved["val_loss"]), list(saved["val_accuracy"])
    h.best_epoch, h.stopped_early = saved["best_epoch"], bool(saved["stopped_early"])
    h.stopped_by = saved.get("stopped_by")
    trainer._stopped_by = h.stopped_by
