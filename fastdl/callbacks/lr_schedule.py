"""LRScheduler: set the optimizer's learning rate (and momentum) from a schedule during ``fit``."""

from __future__ import annotations

from fastdl.callbacks.base import Callback
from fastdl.schedules import Schedule

__all__ = ["LRScheduler"]


class LRScheduler(Callback):
    """Set ``optimizer.lr`` from ``schedule`` before every batch (or every epoch).

    Step ``t`` of the schedule is the ``t``-th batch of the run counted from 0 across epochs
    (``per="batch"``: ``t = (epoch − 1)·batches + batch − 1``), or the ``t``-th epoch
    (``per="epoch"``: ``t = epoch − 1``), so the rate of a batch is that of
    ``scheduler.get_last_lr()`` when PyTorch's scheduler is stepped after every batch (or
    epoch). The rate is set in ``on_batch_begin`` (``on_epoch_begin``), and the optimizer's
    step uses it; ``logs["lr"]`` of ``on_batch_end`` reports it. ``base_lr`` of the
    schedule is the optimizer's constructor ``lr``. A schedule that cycles momentum
    (``OneCycle``) also sets ``SGDMomentum.momentum`` or Adam's ``beta1``.

    Lengths left None in the schedule (``OneCycle(total_steps=None)``, ``Cosine(T_max=None)``)
    are the steps that ``fit`` plans: ``epochs × batches per epoch`` (or ``epochs``), from
    ``on_train_begin``'s logs; early stopping may end the run before the schedule does.
    Each ``fit`` runs the schedule from its step 0 (also ``fit(restart=False)``), except a
    resumed one (``fit(resume=...)``), which continues where the checkpoint was written:
    the position comes from the loop, and the checkpoint keeps this callback's state
    (``state_dict``), so a resume with another schedule is refused.

    The schedule replaces the optimizer's own per-epoch decay: an optimizer made with
    ``final_lr``/``decay_type`` is refused (``ValueError`` when ``fit`` starts), since two
    rules for one rate would leave it to the order of the calls.

    Parameters
    ----------
    schedule : Schedule
        From :mod:`fastdl.schedules`.
    per : {"batch", "epoch"}, default "batch"
        What one step of the schedule is. With ``"batch"``, ``Step(step_size)`` and
        ``Cosine(T_max)`` count batches.

    Attributes
    ----------
    step : int
        The step of the schedule last applied (-1 before the first).
    last_lr : float or None
        The rate last set.

    Examples
    --------
    >>> import fastdl as fd
    >>> cb = fd.callbacks.LRScheduler(fd.schedules.OneCycle(max_lr=0.05))
    >>> cb
    LRScheduler(OneCycle(max_lr=0.05, total_steps=None, pct_start=0.3, anneal='cos', div_factor=25.0, final_div_factor=10000.0, three_phase=False, cycle_momentum=True, base_momentum=0.85, max_momentum=0.95), per='batch')
    >>> # trainer.fit(x, y, epochs=3, callbacks=[cb])
    """

    def __init__(self, schedule: Schedule, per: str = "batch") -> None:
        if not isinstance(schedule, Schedule):
            raise TypeError(
                f"LRScheduler: schedule must be one of fastdl.schedules, got {schedule!r}"
            )
        if per not in ("batch", "epoch"):
            raise ValueError(f"LRScheduler: per must be 'batch' or 'epoch', got {per!r}")
        self.schedule, self.per = schedule, per
        self.step, self.last_lr = -1, None
        self._planned: Schedule | None = None  # the schedule with fit's lengths filled in
        self._batches = 0

    def check(self, trainer, plan: dict) -> Schedule:
        """Refuse a run this schedule cannot drive, before ``fit`` changes anything (it calls
        this before a restart re-initialises the weights or a resume restores a checkpoint).
        ``plan``: ``{"epochs", "batches"}`` (batches per epoch). Returns the schedule with
        the lengths it left to fit filled in."""
        optim = trainer.optim
        name = type(optim).__name__
        if optim.decay_type is not None:
            raise ValueError(
                f"LRScheduler: {name} was made with decay_type={optim.decay_type!r} "
                f"(final_lr={optim.final_lr}); a schedule replaces that decay, so use one "
                "or the other"
            )
        if self.schedule.cycles_momentum and optim.momentum_name is None:
            raise ValueError(
                f"LRScheduler: {self.schedule!r} cycles momentum, and {name} has none; "
                "pass cycle_momentum=False (or use SGDMomentum, Adam or AdamW)"
            )
        steps = plan["epochs"] * plan["batches"] if self.per == "batch" else plan["epochs"]
        return self.schedule.with_total(steps)

    def on_train_begin(self, trainer, logs: dict) -> None:
        self._planned = self.check(trainer, logs)
        self._batches = logs["batches"]
        if not logs["resumed"]:
            self.step, self.last_lr = -1, None

    def on_epoch_begin(self, trainer, logs: dict) -> None:
        if self.per == "epoch":
            self._apply(trainer.optim, logs["epoch"] - 1)

    def on_batch_begin(self, trainer, logs: dict) -> None:
        if self.per == "batch":
            self._apply(trainer.optim, (logs["epoch"] - 1) * self._batches + logs["batch"] - 1)

    def _apply(self, optim, step: int) -> None:
        self.step = step
        self.last_lr = optim.lr = self._planned.lr(step, optim.initial_lr)
        momentum = self._planned.momentum(step)
        if momentum is not None:
            setattr(optim, optim.momentum_name, momentum)

    def _describe(self) -> dict:
        return {"schedule": type(self.schedule).__name__, "config": self.schedule.get_config(),
                "per": self.per}  # fmt: skip

    def state_dict(self) -> dict:
        """What a checkpoint keeps: the schedule, ``per``, and the step last applied."""
        return {**self._describe(), "step": self.step, "last_lr": self.last_lr}

    def load_state_dict(self, state: dict) -> None:
        """Put back a :meth:`state_dict`; ``ValueError`` if it is of another schedule."""
        theirs = {k: state.get(k) for k in ("schedule", "config", "per")}
        if theirs != self._describe():
            raise ValueError(
                f"LRScheduler: the checkpoint's schedule is {theirs['schedule']}"
                f"({theirs['config']}, per={theirs['per']!r}), this fit's {self!r}"
            )
        self.step = int(state["step"])
        self.last_lr = None if state["last_lr"] is None else float(state["last_lr"])

    def __repr__(self) -> str:
        return f"LRScheduler({self.schedule!r}, per={self.per!r})"
