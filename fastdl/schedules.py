"""Learning-rate schedules: OneCycle, Cosine, Step, LinearWarmup, and Sequential to chain them.

A schedule is a closed-form function of the step: ``schedule.lr(step, base_lr)`` is the
learning rate of step ``step`` (0, 1, 2, ...: the batch, or the epoch, counted from the start
of training), where ``base_lr`` is the optimizer's own ``lr`` (its constructor argument).
Schedules hold no state and never touch an optimizer: the callback
:class:`fastdl.callbacks.LRScheduler` sets ``optimizer.lr`` from them before every batch (or
epoch), and keeps its place in checkpoints. Every optimizer works with every schedule.

Each schedule computes what the PyTorch scheduler of the same name does — the sequence
``schedule.lr(0, base), schedule.lr(1, base), ...`` is the sequence of ``get_last_lr()``
of the torch scheduler made on an optimizer with ``lr=base``, read after construction and
after each ``scheduler.step()``:

=================  =========================================================================
fastdl             torch.optim.lr_scheduler
=================  =========================================================================
``OneCycle``       ``OneCycleLR`` (same arguments; ``anneal`` is ``anneal_strategy``)
``Cosine``         ``CosineAnnealingLR``
``Step``           ``StepLR``
``LinearWarmup``   ``LinearLR`` with ``end_factor=1`` (``warmup_steps`` is ``total_iters``)
``Sequential``     ``SequentialLR``
=================  =========================================================================

torch computes most of these by recurrence (each rate from the one before); fastdl uses the
closed forms, which are the same numbers up to rounding (1e-16 relative per step).

``OneCycle.total_steps`` and ``Cosine.T_max`` may be left ``None``: ``fit`` then supplies
the number of steps it plans (epochs × batches per epoch when stepped per batch, epochs
when stepped per epoch); :meth:`Schedule.with_total` does it.

Examples
--------
>>> from fastdl.schedules import Cosine, LinearWarmup, OneCycle, Sequential
>>> s = OneCycle(max_lr=0.1, total_steps=100)
>>> round(s.lr(0, base_lr=0.01), 6), round(s.lr(29, base_lr=0.01), 6)
(0.004, 0.1)
>>> warm = Sequential([LinearWarmup(5, start_factor=0.1), Cosine(95)], milestones=[5])
>>> [round(warm.lr(t, 1.0), 3) for t in (0, 4, 5, 100)]
[0.1, 0.82, 1.0, 0.0]
"""

from __future__ import annotations

import bisect
import copy
import math

__all__ = ["Schedule", "OneCycle", "Cosine", "Step", "LinearWarmup", "Sequential"]


def _count(where: str, name: str, value, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _number(where: str, name: str, value, lo: float, hi: float, open_lo=False) -> float:
    """``value`` as a float in ``[lo, hi]`` (``(lo, hi]`` with ``open_lo``); finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where}: {name} must be a number, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and (lo < value if open_lo else lo <= value) and value <= hi):
        if hi == math.inf:
            bound = f"{'>' if open_lo else '>='} {lo:g} and finite"
        else:
            bound = f"in {'(' if open_lo else '['}{lo}, {hi}]"
        raise ValueError(f"{where}: {name} must be {bound}, got {value}")
    return value


def _step(where: str, step) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"{where}: step must be an integer >= 0, got {step!r}")
    return step


class Schedule:
    """Base class: ``lr(step, base_lr)``, and ``momentum(step)`` for schedules that cycle it.

    Subclasses set ``_config_keys`` (their constructor's arguments, for :meth:`get_config`
    and the ``repr``) and implement ``_lr``.
    """

    _config_keys: tuple[str, ...] = ()
    #: Whether :meth:`momentum` gives values (the optimizer then needs a momentum to set).
    cycles_momentum: bool = False

    def lr(self, step: int, base_lr: float) -> float:
        """The learning rate of step ``step`` (0-based) for an optimizer whose ``lr`` is
        ``base_lr``."""
        return self._lr(_step(type(self).__name__, step), float(base_lr))

    def momentum(self, step: int) -> float | None:
        """The momentum (``SGDMomentum.momentum`` or Adam's ``beta1``) of step ``step``, or
        None: this schedule leaves momentum alone."""
        return None

    def _lr(self, step: int, base_lr: float) -> float:
        raise NotImplementedError

    @property
    def total_steps(self) -> int | None:
        """The number of steps the schedule is planned for, or None (it has no end)."""
        return None

    def with_total(self, total_steps: int) -> Schedule:
        """This schedule with its missing length (``None``) set to ``total_steps``.

        Returns ``self`` when nothing is missing. Raises ``ValueError`` when the schedule has
        a fixed end (``OneCycle``) shorter than ``total_steps``: its rate is undefined beyond.
        """
        return self

    def get_config(self) -> dict:
        """The constructor's arguments, by name."""
        return {k: getattr(self, k) for k in self._config_keys}

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.get_config() == self.get_config()

    __hash__ = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class OneCycle(Schedule):
    """The 1cycle policy (Smith & Topin 2017): warm up to ``max_lr``, then anneal far below.

    The rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first ``pct_start``
    of the steps and then falls to ``max_lr / (div_factor · final_div_factor)`` at the last
    step, by half a cosine (``anneal="cos"``) or a straight line (``"linear"``). With
    ``three_phase=True`` it falls back to ``max_lr / div_factor`` over as many steps as it
    rose, and only then to the minimum (the paper's form). The formula is
    ``torch.optim.lr_scheduler.OneCycleLR``'s, phase boundaries included
    (phase 1 ends at step ``pct_start·total_steps − 1``, a float). Where torch divides by
    zero (a phase of length 0, e.g. ``total_steps=10, pct_start=0.1``) the phase's end
    value is used. The optimizer's own ``lr`` plays no part (as in torch).

    Momentum is cycled as torch's ``cycle_momentum=True`` (the default) does: opposite to
    the rate, from ``max_momentum`` down to ``base_momentum`` while the rate rises, and
    back; the callback sets ``SGDMomentum.momentum`` or ``Adam``'s / ``AdamW``'s ``beta1``
    (torch's ``momentum`` / ``betas[0]``). Optimizers without a momentum (``SGD``,
    ``AdaGrad``, ``RMSprop``, ``Adadelta``) need ``cycle_momentum=False`` (torch refuses
    ``Adagrad`` and ``Adadelta`` too; it cycles the ``momentum`` argument of its ``SGD``
    and ``RMSprop`` even when that is 0). Note that fastdl's ``SGDMomentum`` keeps the
    learning rate inside the velocity (the book's and Keras's form), so under a changing
    rate its steps differ from torch's ``SGD``'s, which multiplies the velocity by the
    current rate; the schedule's numbers are the same.

    Parameters
    ----------
    max_lr : float
        The peak rate, > 0.
    total_steps : int, optional
        Steps in the cycle (batches, with ``LRScheduler(per="batch")``). None: what ``fit``
        runs, epochs × batches per epoch. Steps past the end are refused (as in torch).
    pct_start : float, default 0.3
        Fraction of the steps spent rising, in [0, 1].
    anneal : {"cos", "linear"}, default "cos"
        torch's ``anneal_strategy``.
    div_factor : float, default 25
        The first rate is ``max_lr / div_factor``.
    final_div_factor : float, default 1e4
        The last rate is ``max_lr / div_factor / final_div_factor``.
    three_phase : bool, default False
    cycle_momentum : bool, default True
    base_momentum, max_momentum : float, defaults 0.85 and 0.95

    Examples
    --------
    >>> import fastdl as fd
    >>> schedule = fd.schedules.OneCycle(max_lr=0.05)          # length from fit
    >>> cb = fd.callbacks.LRScheduler(schedule, per="batch")
    >>> # trainer.fit(x, y, epochs=3, callbacks=[cb])
    """

    _config_keys = ("max_lr", "total_steps", "pct_start", "anneal", "div_factor",
                    "final_div_factor", "three_phase", "cycle_momentum", "base_momentum",
                    "max_momentum")  # fmt: skip

    def __init__(
        self,
        max_lr: float,
        total_steps: int | None = None,
        pct_start: float = 0.3,
        anneal: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
    ) -> None:
        where = "OneCycle"
        self.max_lr = _number(where, "max_lr", max_lr, 0.0, math.inf, open_lo=True)
        self._total = _count(where, "total_steps", total_steps, allow_none=True)
        self.pct_start = _number(where, "pct_start", pct_start, 0.0, 1.0)
        if anneal not in ("cos", "linear"):
            raise ValueError(f"{where}: anneal must be 'cos' or 'linear', got {anneal!r}")
        self.anneal = anneal
        self.div_factor = _number(where, "div_factor", div_factor, 0.0, math.inf, open_lo=True)
        self.final_div_factor = _number(where, "final_div_factor", final_div_factor, 0.0,
                                        math.inf, open_lo=True)  # fmt: skip
        for name, flag in (("three_phase", three_phase), ("cycle_momentum", cycle_momentum)):
            if not isinstance(flag, bool):
                raise TypeError(f"{where}: {name} must be True or False, got {flag!r}")
        self.three_phase = three_phase
        self.cycle_momentum = cycle_momentum
        self.cycles_momentum = cycle_momentum
        # [0, 1): the optimizers refuse a momentum (or Adam's β₁) of 1 — it never forgets
        for name, value in (("base_momentum", base_momentum), ("max_momentum", max_momentum)):
            if _number(where, name, value, 0.0, 1.0) == 1.0:
                raise ValueError(f"{where}: {name} must be in [0, 1), got {float(value)}")
        self.base_momentum, self.max_momentum = float(base_momentum), float(max_momentum)
        self.initial_lr = self.max_lr / self.div_factor
        self.min_lr = self.initial_lr / self.final_div_factor

    @property
    def total_steps(self) -> int | None:
        return self._total

    def with_total(self, total_steps: int) -> OneCycle:
        total_steps = _count("OneCycle.with_total", "total_steps", total_steps)
        if self._total is None:
            planned = copy.copy(self)
            planned._total = total_steps
            return planned
        if self._total < total_steps:
            raise ValueError(
                f"OneCycle: total_steps={self._total}, but training runs {total_steps} steps "
                "(leave total_steps=None to take fit's)"
            )
        return self

    def _phases(self) -> list[tuple[float, float, float, float, float]]:
        """``(end_step, start_lr, end_lr, start_momentum, end_momentum)`` of each phase."""
        t, p = self._total, self.pct_start
        lo, hi, end = self.initial_lr, self.max_lr, self.min_lr
        m_lo, m_hi = self.base_momentum, self.max_momentum
        if self.three_phase:
            return [
                (float(p * t) - 1, lo, hi, m_hi, m_lo),
                (float(2 * p * t) - 2, hi, lo, m_lo, m_hi),
                (t - 1, lo, end, m_hi, m_hi),
            ]
        return [(float(p * t) - 1, lo, hi, m_hi, m_lo), (t - 1, hi, end, m_lo, m_hi)]

    def _anneal(self, start: float, end: float, pct: float) -> float:
        # torch's _annealing_cos / _annealing_linear, operation for operation
        if self.anneal == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _where(self, step: int) -> tuple[float, tuple]:
        """The fraction ``pct`` of its phase that ``step`` has reached, and the phase."""
        if self._total is None:
            raise ValueError(
                "OneCycle: total_steps is not set (pass it, or use the schedule through "
                "fd.callbacks.LRScheduler in fit, which supplies it)"
            )
        if step >= self._total:
            raise ValueError(f"OneCycle: step {step} is past the cycle's {self._total} steps")
        phases = self._phases()
        start = 0.0
        for i, phase in enumerate(phases):
            end = phase[0]
            if step <= end or i == len(phases) - 1:
                pct = (step - start) / (end - start) if end != start else 1.0
                return pct, phase
            start = end
        raise AssertionError("unreachable")

    def _lr(self, step: int, base_lr: float) -> float:
        pct, (_, lr0, lr1, _, _) = self._where(step)
        return self._anneal(lr0, lr1, pct)

    def momentum(self, step: int) -> float | None:
        if not self.cycle_momentum:
            return None
        pct, (_, _, _, m0, m1) = self._where(_step("OneCycle", step))
        return self._anneal(m0, m1, pct)


class Cosine(Schedule):
    """Cosine annealing from the optimizer's ``lr`` to ``eta_min`` over ``T_max`` steps.

    ``lr_t = eta_min + (base_lr − eta_min)·(1 + cos(π·t / T_max)) / 2``: the closed form of
    ``torch.optim.lr_scheduler.CosineAnnealingLR`` (SGDR without restarts). As in torch,
    past ``T_max`` the cosine goes on, rising again (period ``2·T_max``); leave ``T_max``
    None to have it end with the training (``fit``'s steps).

    Parameters
    ----------
    T_max : int, optional
        Steps from ``lr`` down to ``eta_min``. None: what ``fit`` runs.
    eta_min : float, default 0.0
    """

    _config_keys = ("T_max", "eta_min")

    def __init__(self, T_max: int | None = None, eta_min: float = 0.0) -> None:
        self.T_max = _count("Cosine", "T_max", T_max, allow_none=True)
        self.eta_min = _number("Cosine", "eta_min", eta_min, 0.0, math.inf)

    @property
    def total_steps(self) -> int | None:
        return self.T_max

    def with_total(self, total_steps: int) -> Cosine:
        if self.T_max is not None:
            return self
        return Cosine(_count("Cosine.with_total", "total_steps", total_steps), self.eta_min)

    def _lr(self, step: int, base_lr: float) -> float:
        if self.T_max is None:
            raise ValueError(
                "Cosine: T_max is not set (pass it, or use the schedule through "
                "fd.callbacks.LRScheduler in fit, which supplies it)"
            )
        return (
            self.eta_min
            + (base_lr - self.eta_min) * (1 + math.cos(math.pi * step / self.T_max)) / 2
        )


class Step(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` steps: ``lr_t = base_lr·γ^⌊t/s⌋``.

    ``torch.optim.lr_scheduler.StepLR`` (same defaults).

    Parameters
    ----------
    step_size : int
    gamma : float, default 0.1
    """

    _config_keys = ("step_size", "gamma")

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _count("Step", "step_size", step_size)
        self.gamma = _number("Step", "gamma", gamma, 0.0, math.inf, open_lo=True)

    def _lr(self, step: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (step // self.step_size)


class LinearWarmup(Schedule):
    """Rise linearly from ``start_factor·lr`` to the optimizer's ``lr`` over ``warmup_steps``.

    ``lr_t = base_lr·(f + (1 − f)·min(t, warmup_steps) / warmup_steps)``, then ``base_lr``:
    ``torch.optim.lr_scheduler.LinearLR(start_factor=f, end_factor=1.0,
    total_iters=warmup_steps)``, whose default ``start_factor`` 1/3 this keeps. Chain it
    before another schedule with :class:`Sequential`.

    Parameters
    ----------
    warmup_steps : int
    start_factor : float, default 1/3
        In (0, 1] (as in torch).
    """

    _config_keys = ("warmup_steps", "start_factor")

    def __init__(self, warmup_steps: int, start_factor: float = 1.0 / 3) -> None:
        self.warmup_steps = _count("LinearWarmup", "warmup_steps", warmup_steps)
        self.start_factor = _number("LinearWarmup", "start_factor", start_factor, 0.0, 1.0,
                                    open_lo=True)  # fmt: skip

    @property
    def total_steps(self) -> int | None:
        return self.warmup_steps

    def _lr(self, step: int, base_lr: float) -> float:
        f = self.start_factor
        return base_lr * (f + (1.0 - f) * min(self.warmup_steps, step) / self.warmup_steps)


class Sequential(Schedule):
    """Run ``schedules[0]`` until ``milestones[0]``, then ``schedules[1]`` from its own step
    0, and so on (``torch.optim.lr_scheduler.SequentialLR``).

    Every schedule starts from the optimizer's ``lr`` (torch's ``base_lrs``). A schedule
    whose length is None (``Cosine()``, ``OneCycle(max_lr)``) gets the steps up to the
    next milestone; the last one, the steps after the last milestone that ``fit`` runs.
    Momentum comes from the schedule in force (None if that one leaves it alone).

    Parameters
    ----------
    schedules : list of Schedule
    milestones : list of int
        Increasing, one fewer than ``schedules``: the steps at which the next one begins.

    Examples
    --------
    >>> from fastdl.schedules import Cosine, LinearWarmup, Sequential
    >>> warm_then_cosine = Sequential([LinearWarmup(500, 0.01), Cosine()], milestones=[500])
    """

    _config_keys = ("schedules", "milestones")

    def __init__(self, schedules: list[Schedule], milestones: list[int]) -> None:
        schedules, milestones = list(schedules), list(milestones)
        if not schedules or not all(isinstance(s, Schedule) for s in schedules):
            raise TypeError(f"Sequential: schedules must be a non-empty list of Schedules, "
                            f"got {schedules!r}")  # fmt: skip
        if len(milestones) != len(schedules) - 1:
            raise ValueError(
                f"Sequential: {len(schedules)} schedules need {len(schedules) - 1} milestones, "
                f"got {len(milestones)}"
            )
        for m in milestones:
            _count("Sequential", "each milestone", m)
        if any(b <= a for a, b in zip(milestones, milestones[1:], strict=False)):
            raise ValueError(f"Sequential: milestones must increase, got {milestones}")
        self.schedules, self.milestones = schedules, milestones
        self.cycles_momentum = any(s.cycles_momentum for s in schedules)

    def with_total(self, total_steps: int) -> Sequential:
        total_steps = _count("Sequential.with_total", "total_steps", total_steps)
        starts, ends = [0, *self.milestones], [*self.milestones, total_steps]
        planned = []
        for i, (s, start, end) in enumerate(zip(self.schedules, starts, ends, strict=True)):
            if s.total_steps is None and end <= start:
                raise ValueError(
                    f"Sequential: schedules[{i}] ({s!r}) would get {end - start} steps "
                    f"(training runs {total_steps})"
                )
            planned.append(s.with_total(end - start) if end > start else s)
        return Sequential(planned, self.milestones)

    def _active(self, step: int) -> tuple[Schedule, int]:
        i = bisect.bisect_right(self.milestones, step)
        return self.schedules[i], step - (self.milestones[i - 1] if i else 0)

    def _lr(self, step: int, base_lr: float) -> float:
        schedule, local = self._active(step)
        return schedule.lr(local, base_lr)

    def momentum(self, step: int) -> float | None:
        schedule, local = self._active(_step("Sequential", step))
        return schedule.momentum(local)

    def get_config(self) -> dict:
        return {
            "schedules": [{"name": type(s).__name__, "config": s.get_config()}
                          for s in self.schedules],
            "milestones": list(self.milestones),
        }  # fmt: skip

    def __repr__(self) -> str:
        return f"Sequential({self.schedules!r}, milestones={self.milestones!r})"
