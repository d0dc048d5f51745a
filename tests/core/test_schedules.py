"""Learning-rate schedules: against their formulas, against torch.optim.lr_scheduler's
get_last_lr() (and OneCycleLR's momentum) in float64, and through fit with
fd.callbacks.LRScheduler: the rate each step used, refusals, and resuming bit for bit."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from interruptions import Stop, fail_at_batch

import fastdl as fd
from fastdl.callbacks import LRScheduler
from fastdl.schedules import Cosine, LinearWarmup, OneCycle, Schedule, Sequential, Step

# -- the formulas ----------------------------------------------------------------------------


def test_onecycle_formula_two_phases():
    s = OneCycle(max_lr=1.0, total_steps=101, pct_start=0.2, div_factor=10, final_div_factor=100)
    up_end = 0.2 * 101 - 1  # 19.2: torch's float phase boundary
    for t in range(101):
        if t <= up_end:
            lo, hi, pct = 0.1, 1.0, t / up_end
        else:
            lo, hi, pct = 1.0, 0.001, (t - up_end) / (100 - up_end)
        want = hi + (lo - hi) / 2 * (1 + math.cos(math.pi * pct))
        assert s.lr(t, base_lr=123.0) == pytest.approx(want, rel=1e-15, abs=1e-17)
    assert s.lr(0, 1.0) == pytest.approx(0.1) and s.lr(100, 1.0) == pytest.approx(0.001)


def test_onecycle_linear_three_phase_formula():
    s = OneCycle(2.0, total_steps=50, pct_start=0.25, anneal="linear", three_phase=True)
    b1, b2 = 0.25 * 50 - 1, 2 * 0.25 * 50 - 2  # 11.5, 23
    lo, hi, end = 2.0 / 25, 2.0, 2.0 / 25 / 1e4
    for t in range(50):
        if t <= b1:
            want = lo + (hi - lo) * t / b1
        elif t <= b2:
            want = hi + (lo - hi) * (t - b1) / (b2 - b1)
        else:
            want = lo + (end - lo) * (t - b2) / (49 - b2)
        assert s.lr(t, 1.0) == pytest.approx(want, rel=1e-14)


def test_onecycle_momentum_runs_opposite_to_the_rate():
    s = OneCycle(1.0, total_steps=20, pct_start=0.5)
    lrs = [s.lr(t, 1.0) for t in range(20)]
    moms = [s.momentum(t) for t in range(20)]
    assert moms[0] == pytest.approx(0.95) and moms[int(np.argmax(lrs))] == pytest.approx(0.85)
    assert moms[-1] == pytest.approx(0.95)
    assert OneCycle(1.0, 20, cycle_momentum=False).momentum(3) is None


def test_onecycle_zero_length_phase_ends_the_phase():
    """torch divides by zero for pct_start·total_steps = 1; fastdl takes the phase's end."""
    s = OneCycle(1.0, total_steps=10, pct_start=0.1)
    assert s.lr(0, 1.0) == 1.0
    assert s.lr(9, 1.0) == pytest.approx(1.0 / 25 / 1e4)


def test_cosine_step_and_warmup_formulas():
    c = Cosine(T_max=10, eta_min=0.01)
    for t in range(25):  # past T_max the cosine goes on, as torch's does
        assert c.lr(t, 0.5) == pytest.approx(0.01 + 0.49 * (1 + math.cos(math.pi * t / 10)) / 2)
    assert c.lr(10, 0.5) == 0.01
    s = Step(step_size=3, gamma=0.5)
    assert [s.lr(t, 8.0) for t in range(8)] == [8, 8, 8, 4, 4, 4, 2, 2]
    w = LinearWarmup(4, start_factor=0.2)
    assert [w.lr(t, 10.0) for t in range(7)] == pytest.approx([2, 4, 6, 8, 10, 10, 10])


def test_sequential_restarts_each_schedule_at_its_milestone():
    s = Sequential([LinearWarmup(5, 0.1), Step(2, 0.5), Cosine(4)], milestones=[3, 7])
    want = [0.1, 0.28, 0.46, 1, 1, 0.5, 0.5, 1, (1 + math.cos(math.pi / 4)) / 2]
    assert [s.lr(t, 1.0) for t in range(9)] == pytest.approx(want)


def test_lengths_left_none_are_filled_from_the_run():
    assert OneCycle(0.1).with_total(40).total_steps == 40
    assert OneCycle(0.1, 50).with_total(40).total_steps == 50
    assert Cosine().with_total(30) == Cosine(30)
    assert Step(3).with_total(30) == Step(3)
    seq = Sequential([LinearWarmup(5), Cosine(), OneCycle(1.0)], [5, 20]).with_total(100)
    assert seq.schedules[1] == Cosine(15) and seq.schedules[2].total_steps == 80
    with pytest.raises(ValueError, match="total_steps is not set"):
        OneCycle(0.1).lr(0, 1.0)
    with pytest.raises(ValueError, match="T_max is not set"):
        Cosine().lr(0, 1.0)
    with pytest.raises(ValueError, match="total_steps=30, but training runs 40 steps"):
        OneCycle(0.1, 30).with_total(40)
    with pytest.raises(ValueError, match=r"schedules\[1\] .* would get -5 steps"):
        Sequential([LinearWarmup(5), Cosine()], [15]).with_total(10)


def test_argument_checks():
    with pytest.raises(ValueError, match="OneCycle: max_lr must be > 0 and finite, got 0.0"):
        OneCycle(0)
    with pytest.raises(ValueError, match="OneCycle: pct_start must be in"):
        OneCycle(0.1, pct_start=1.5)
    with pytest.raises(ValueError, match="OneCycle: anneal must be 'cos' or 'linear'"):
        OneCycle(0.1, anneal="cosine")
    with pytest.raises(ValueError, match="OneCycle: total_steps must be a positive integer"):
        OneCycle(0.1, total_steps=0)
    with pytest.raises(ValueError, match="step 10 is past the cycle's 10 steps"):
        OneCycle(0.1, 10).lr(10, 1.0)
    with pytest.raises(ValueError, match="Step: step_size must be a positive integer"):
        Step(0)
    with pytest.raises(ValueError, match=r"LinearWarmup: start_factor must be in \(0.0, 1.0\]"):
        LinearWarmup(3, start_factor=0)
    with pytest.raises(ValueError, match="Sequential: 2 schedules need 1 milestones, got 0"):
        Sequential([Step(1), Step(2)], [])
    with pytest.raises(ValueError, match="milestones must increase"):
        Sequential([Step(1), Step(2), Step(3)], [5, 5])
    with pytest.raises(ValueError, match="Cosine: step must be an integer >= 0"):
        Cosine(3).lr(-1, 1.0)
    with pytest.raises(TypeError, match="LRScheduler: schedule must be one of fastdl.schedules"):
        LRScheduler(lambda t: 0.1)
    with pytest.raises(ValueError, match="LRScheduler: per must be 'batch' or 'epoch'"):
        LRScheduler(Step(3), per="step")


def test_reprs_and_configs():
    assert repr(Step(3, 0.5)) == "Step(step_size=3, gamma=0.5)"
    assert repr(Sequential([LinearWarmup(2), Cosine()], [2])) == (
        "Sequential([LinearWarmup(warmup_steps=2, start_factor=0.3333333333333333), "
        "Cosine(T_max=None, eta_min=0.0)], milestones=[2])"
    )
    assert repr(LRScheduler(Cosine(5), per="epoch")) == (
        "LRScheduler(Cosine(T_max=5, eta_min=0.0), per='epoch')"
    )
    one = OneCycle(0.1, 10, three_phase=True)
    assert OneCycle(**one.get_config()) == one


# -- against torch.optim.lr_scheduler ---------------------------------------------------------


def torch_sequence(make_scheduler, steps, optimizer="sgd", lr=0.1):
    """get_last_lr() after construction and after each of ``steps − 1`` scheduler steps
    (an optimizer step before each, as torch wants), and the momentum (SGD's momentum or
    Adam's betas[0]) in force at each."""
    torch = pytest.importorskip("torch", reason="torch.optim.lr_scheduler is the reference")
    from torch.optim import lr_scheduler

    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    if optimizer == "sgd":
        optim = torch.optim.SGD([p], lr=lr, momentum=0.9)
    else:
        optim = torch.optim.Adam([p], lr=lr)
    scheduler = make_scheduler(lr_scheduler, optim)
    lrs, moms = [], []
    for t in range(steps):
        group = optim.param_groups[0]
        lrs.append(scheduler.get_last_lr()[0])
        moms.append(group["momentum"] if optimizer == "sgd" else group["betas"][0])
        p.grad = torch.ones_like(p)
        optim.step()
        if t < steps - 1:
            scheduler.step()
    return np.array(lrs), np.array(moms)


TORCH_CASES = {
    "onecycle": (
        OneCycle(0.5, total_steps=100),
        lambda L, o: L.OneCycleLR(o, max_lr=0.5, total_steps=100),
    ),
    "onecycle-linear-three-phase": (
        OneCycle(0.5, 100, pct_start=0.25, anneal="linear", three_phase=True),
        lambda L, o: L.OneCycleLR(
            o,
            max_lr=0.5,
            total_steps=100,
            pct_start=0.25,
            anneal_strategy="linear",
            three_phase=True,
        ),
    ),  # fmt: skip
    "onecycle-odd": (
        OneCycle(
            0.3,
            37,
            pct_start=0.4,
            div_factor=10,
            final_div_factor=100,
            three_phase=True,
            base_momentum=0.8,
            max_momentum=0.99,
        ),
        lambda L, o: L.OneCycleLR(
            o,
            max_lr=0.3,
            total_steps=37,
            pct_start=0.4,
            div_factor=10,
            final_div_factor=100,
            three_phase=True,
            base_momentum=0.8,
            max_momentum=0.99,
        ),
    ),  # fmt: skip
    "cosine": (Cosine(100), lambda L, o: L.CosineAnnealingLR(o, T_max=100)),
    "cosine-past-T_max": (
        Cosine(30, eta_min=0.001),
        lambda L, o: L.CosineAnnealingLR(o, T_max=30, eta_min=0.001),
    ),
    "step": (Step(7, 0.5), lambda L, o: L.StepLR(o, step_size=7, gamma=0.5)),
    "step-default-gamma": (Step(30), lambda L, o: L.StepLR(o, step_size=30)),
    "warmup": (
        LinearWarmup(30, 0.05),
        lambda L, o: L.LinearLR(o, start_factor=0.05, end_factor=1.0, total_iters=30),
    ),
    "warmup-default-factor": (LinearWarmup(5), lambda L, o: L.LinearLR(o, total_iters=5)),
    "warmup-then-cosine": (
        Sequential([LinearWarmup(10, 0.1), Cosine(90)], milestones=[10]),
        lambda L, o: L.SequentialLR(
            o,
            [L.LinearLR(o, start_factor=0.1, total_iters=10), L.CosineAnnealingLR(o, T_max=90)],
            milestones=[10],
        ),
    ),  # fmt: skip
    "three-in-sequence": (
        Sequential([LinearWarmup(10, 0.1), Step(5, 0.7), Cosine(30, 0.01)], [8, 40]),
        lambda L, o: L.SequentialLR(
            o,
            [
                L.LinearLR(o, start_factor=0.1, total_iters=10),
                L.StepLR(o, 5, 0.7),
                L.CosineAnnealingLR(o, T_max=30, eta_min=0.01),
            ],
            milestones=[8, 40],
        ),
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", TORCH_CASES)
def test_rates_match_torch_get_last_lr(name):
    schedule, make = TORCH_CASES[name]
    steps = schedule.total_steps if isinstance(schedule, OneCycle) else 100
    want, _ = torch_sequence(make, steps)
    got = np.array([schedule.lr(t, 0.1) for t in range(steps)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("name", [n for n in TORCH_CASES if n.startswith("onecycle")])
def test_onecycle_momentum_matches_torch(name, optimizer):
    schedule, make = TORCH_CASES[name]
    _, want = torch_sequence(make, schedule.total_steps, optimizer)
    got = np.array([schedule.momentum(t) for t in range(schedule.total_steps)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


# -- through fit -------------------------------------------------------------------------------


def small_net(seed=0):
    return fd.NeuralNetwork([fd.Dense(5, fd.Tanh(), dropout=0.8), fd.Dense(3)],
                            fd.SoftmaxCrossEntropy(), seed=seed)  # fmt: skip


def small_data(n=50):
    rng = np.random.default_rng(3)
    return rng.standard_normal((n, 4)).astype(np.float32), rng.integers(0, 3, n)


FIT = dict(epochs=4, eval_every=1, batch_size=16, verbose=0, seed=1, early_stopping=False)
BATCHES = 4  # ceil(50 / 16)


class Used(fd.Callback):
    """Records the rate (and momentum) each optimizer step uses, from inside the step."""

    def __init__(self):
        self.lr, self.momentum = [], []

    def on_train_begin(self, trainer, logs):
        optim, used = trainer.optim, self
        real = type(optim).step

        def step():
            used.lr.append(optim.lr)
            if optim.momentum_name is not None:
                used.momentum.append(getattr(optim, optim.momentum_name))
            real(optim)

        optim.step = step


@pytest.mark.parametrize(
    ("schedule", "per"),
    [(OneCycle(0.2), "batch"), (Cosine(), "batch"), (Step(2, 0.5), "epoch"),
     (Sequential([LinearWarmup(3, 0.1), Cosine()], [3]), "batch")],
    ids=["onecycle-batch", "cosine-batch", "step-epoch", "warmup-cosine-batch"],
)  # fmt: skip
def test_fit_steps_with_the_rate_of_the_schedule(schedule, per):
    x, y = small_data()
    optim = fd.SGDMomentum(0.05, momentum=0.9)
    used = Used()
    fd.Trainer(small_net(), optim).fit(x, y, callbacks=[LRScheduler(schedule, per), used], **FIT)
    steps = FIT["epochs"] * BATCHES
    planned = schedule.with_total(steps if per == "batch" else FIT["epochs"])
    if per == "batch":
        want = [planned.lr(t, 0.05) for t in range(steps)]
    else:
        want = [planned.lr(t // BATCHES, 0.05) for t in range(steps)]
    assert used.lr == want
    if isinstance(schedule, OneCycle):
        assert used.momentum == [planned.momentum(t) for t in range(steps)]
        assert used.lr[0] == pytest.approx(0.2 / 25) and used.lr[-1] == pytest.approx(
            0.2 / 25 / 1e4
        )
    else:
        assert used.momentum == [0.9] * steps
    assert optim.get_config()["momentum"] == 0.9


def test_onecycle_cycles_adams_beta1_and_logs_the_rate():
    x, y = small_data()
    optim = fd.Adam(0.001)
    seen = []

    class Log(fd.Callback):
        def on_batch_end(self, trainer, logs):
            seen.append(logs["lr"])

    cb = LRScheduler(OneCycle(0.01, pct_start=0.5))
    fd.Trainer(small_net(), optim).fit(x, y, callbacks=[cb, Log()], **FIT)
    planned = OneCycle(0.01, 16, pct_start=0.5)
    assert seen == [planned.lr(t, 0.001) for t in range(16)]
    assert optim.beta1 == planned.momentum(15) and cb.step == 15 and cb.last_lr == seen[-1]
    assert optim.get_config()["beta1"] == 0.9
    optim.setup_decay(3)  # what the next fit does first: the constructor's values return
    assert (optim.lr, optim.beta1) == (0.001, 0.9)


def test_a_second_fit_runs_the_schedule_again():
    x, y = small_data()
    optim, used = fd.SGD(0.1), Used()
    trainer = fd.Trainer(small_net(), optim)
    cb = LRScheduler(Cosine(), per="epoch")
    trainer.fit(x, y, callbacks=[cb, used], **FIT)
    first = list(used.lr)
    used.lr.clear()
    trainer.fit(x, y, callbacks=[cb, used], restart=False, **FIT)
    assert used.lr == first


def test_an_optimizer_with_its_own_decay_is_refused():
    x, y = small_data()
    optim = fd.SGDMomentum(0.1, final_lr=0.01, decay_type="linear")
    with pytest.raises(ValueError, match="LRScheduler: SGDMomentum was made with decay_type="):
        fd.Trainer(small_net(), optim).fit(x, y, callbacks=[LRScheduler(Cosine())], **FIT)


@pytest.mark.parametrize("optim", [fd.SGD(0.1), fd.AdaGrad(), fd.RMSprop(), fd.Adadelta()],
                         ids=lambda o: type(o).__name__)  # fmt: skip
def test_cycling_momentum_needs_an_optimizer_with_one(optim):
    x, y = small_data()
    with pytest.raises(ValueError, match="cycles momentum, and .* has none; pass cycle_momentum"):
        fd.Trainer(small_net(), optim).fit(x, y, callbacks=[LRScheduler(OneCycle(0.1))], **FIT)
    used = Used()
    cb = LRScheduler(OneCycle(0.1, cycle_momentum=False))
    fd.Trainer(small_net(), optim).fit(x, y, callbacks=[cb, used], **FIT)
    assert used.lr == [OneCycle(0.1, 16).lr(t, 1.0) for t in range(16)]


def test_a_onecycle_shorter_than_the_run_is_refused():
    x, y = small_data()
    cb = LRScheduler(OneCycle(0.1, total_steps=10))
    with pytest.raises(ValueError, match="total_steps=10, but training runs 16 steps"):
        fd.Trainer(small_net(), fd.SGDMomentum(0.1)).fit(x, y, callbacks=[cb], **FIT)


def test_the_books_decay_still_works_in_fit():
    x, y = small_data()
    optim, used = fd.SGDMomentum(0.2, final_lr=0.05, decay_type="linear"), Used()
    fd.Trainer(small_net(), optim).fit(x, y, callbacks=[used], **FIT)
    per_epoch = [0.2, 0.15, 0.1, 0.05]
    assert used.lr == pytest.approx([lr for lr in per_epoch for _ in range(BATCHES)], rel=1e-12)


# -- checkpoints -------------------------------------------------------------------------------


def schedule_run(schedule, per, optim, path=None, resume=None, fail_at=None, **extra):
    x, y = small_data()
    net = small_net()
    used = Used()
    if fail_at is not None:
        fail_at_batch(net, fail_at)
    cbs = [LRScheduler(schedule, per), used]
    fd.Trainer(net, optim).fit(x, y, x[:20], y[:20], callbacks=cbs, checkpoint=path,
                               checkpoint_every=3 if path else None, resume=resume,
                               **{**FIT, **extra})  # fmt: skip
    return net.get_weights(), used.lr


RESUMABLE = {
    "onecycle-sgdmomentum": (lambda: OneCycle(0.2), "batch", lambda: fd.SGDMomentum(0.05)),
    "warmup-cosine-adamw": (
        lambda: Sequential([LinearWarmup(5, 0.1), Cosine(eta_min=1e-4)], [5]),
        "batch",
        lambda: fd.AdamW(0.01, weight_decay=0.1, use_ema=True),
    ),
    "step-per-epoch-adam": (lambda: Step(1, 0.5), "epoch", lambda: fd.Adam(0.01)),
}


@pytest.mark.parametrize("fail_at", [4, 6, 9, 14])
@pytest.mark.parametrize("name", RESUMABLE)
def test_a_resumed_run_continues_the_schedule_bit_for_bit(name, fail_at, tmp_path):
    schedule, per, optim = RESUMABLE[name]
    want, want_lrs = schedule_run(schedule(), per, optim())
    path = tmp_path / "run.ckpt"
    with pytest.raises(Stop):
        schedule_run(schedule(), per, optim(), path=path, fail_at=fail_at)
    assert path.exists()
    got, lrs = schedule_run(schedule(), per, optim(), path=path, resume=path)
    assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))
    done = len(want_lrs) - len(lrs)  # the steps before the checkpoint
    assert 0 < done < fail_at and lrs == want_lrs[done:]


def test_a_resume_with_another_schedule_or_without_it_is_refused(tmp_path):
    path = tmp_path / "run.ckpt"
    schedule_run(OneCycle(0.2), "batch", fd.SGDMomentum(0.05), path=path)
    with pytest.raises(ValueError, match=r"LRScheduler: the checkpoint's schedule is OneCycle"):
        schedule_run(OneCycle(0.3), "batch", fd.SGDMomentum(0.05), resume=path)
    with pytest.raises(ValueError, match=r"per='batch'.*per='epoch'"):
        schedule_run(OneCycle(0.2), "epoch", fd.SGDMomentum(0.05), resume=path)
    x, y = small_data()
    with pytest.raises(ValueError, match=r"kept the state of the callbacks \['LRScheduler'\]"):
        fd.Trainer(small_net(), fd.SGDMomentum(0.05)).fit(x, y, x[:20], y[:20], resume=path,
                                                          **FIT)  # fmt: skip


def test_the_state_dict_round_trips():
    cb = LRScheduler(Sequential([LinearWarmup(2), Cosine()], [2]), per="epoch")
    cb.step, cb.last_lr = 7, 0.01
    other = LRScheduler(Sequential([LinearWarmup(2), Cosine()], [2]), per="epoch")
    other.load_state_dict(json.loads(json.dumps(cb.state_dict())))
    assert (other.step, other.last_lr) == (7, 0.01)
    assert isinstance(cb.schedule, Schedule)


def test_a_refused_schedule_leaves_the_trained_weights(rng):
    """The scheduler's refusals come before fit's restart, so trained weights survive them."""
    net = fd.NeuralNetwork([fd.Dense(4, activation=fd.Tanh()), fd.Dense(2)],
                           fd.SoftmaxCrossEntropy(), seed=0)  # fmt: skip
    x = rng.standard_normal((32, 3)).astype(np.float32)
    y = rng.integers(0, 2, 32)
    fd.Trainer(net, fd.SGD(0.1)).fit(x, y, epochs=2, batch_size=8, verbose=0)
    trained = net.get_weights()
    too_short = fd.callbacks.LRScheduler(fd.schedules.OneCycle(0.1, total_steps=5))
    for optim, callback in [(fd.Adam(0.01), too_short),
                            (fd.SGD(0.1), fd.callbacks.LRScheduler(fd.schedules.OneCycle(0.1))),
                            (fd.SGD(0.1, final_lr=0.01, decay_type="linear"),
                             fd.callbacks.LRScheduler(fd.schedules.Cosine()))]:  # fmt: skip
        with pytest.raises(ValueError):
            fd.Trainer(net, optim).fit(x, y, epochs=2, batch_size=8, verbose=0,
                                       callbacks=[callback])  # fmt: skip
        for before, after in zip(trained, net.get_weights(), strict=True):
            np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("name", ["base_momentum", "max_momentum"])
def test_one_cycle_refuses_a_momentum_of_one(name):
    with pytest.raises(ValueError, match=f"OneCycle: {name} must be in \\[0, 1\\), got 1.0"):
        fd.schedules.OneCycle(0.1, **{name: 1.0})
