"""Warm-up + cosine learning-rate factors."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.callbacks import Timer

from tinymaskgit.lit.lr_schedule import run_schedule, warmup_cosine


def factors(warmup: int, total: int | None, n: int) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, warmup, total, floor=0.1)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_then_cosine_to_floor() -> None:
    f = factors(10, 100, 100)
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert f[-1] == pytest.approx(0.1, abs=1e-3)


def test_unbounded_stays_at_peak() -> None:
    assert factors(4, None, 20)[4:] == [1.0] * 16


def test_time_bounded_run_decays_with_the_time_spent() -> None:
    """No step horizon but a time budget: the cosine follows progress() (the fraction of max_time spent)."""
    clock = {"t": 0.0}
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, 2, None, floor=0.1, progress=lambda: clock["t"])
    lrs = []
    for t in (0.0, 0.0, 0.0, 0.5, 1.0):
        clock["t"] = t
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[1] == pytest.approx(1.0)  # warmed up, no time spent
    assert lrs[3] == pytest.approx(0.55)  # half the time: half-way down the cosine to the floor
    assert lrs[4] == pytest.approx(0.1)


def test_steps_and_time_together_follow_whichever_is_further_along() -> None:
    """Epochs and a time cap (the demo on a slow machine): the floor comes with the first bound reached."""
    clock = {"t": 0.0}
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = warmup_cosine(opt, 2, 102, floor=0.1, progress=lambda: clock["t"])
    lrs = {}
    for step in range(1, 103):
        clock["t"] = 1.0 if step >= 52 else 0.0  # the time is up half-way through the steps
        opt.step()
        sched.step()
        lrs[step] = opt.param_groups[0]["lr"]
    assert lrs[27] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.25)))  # steps lead: a quarter
    assert lrs[52] == pytest.approx(0.1)  # time leads: the floor, with half the steps done


def test_run_schedule_reads_both_bounds_off_the_trainer() -> None:
    """A trainer with max_epochs and max_time: the time spent counts too, not only the step horizon."""
    timer = Timer(duration="00:00:01:00")
    spent = {"s": 0.0}
    timer.time_elapsed = lambda stage="train": spent["s"]  # type: ignore[method-assign]
    trainer = SimpleNamespace(estimated_stepping_batches=1000, callbacks=[timer])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = run_schedule(trainer, opt, warmup_steps=2, floor=0.1)  # type: ignore[arg-type]
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] > 0.99  # 10 of 1,000 steps, no time spent: near the peak
    spent["s"] = 60.0  # the minute is up
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
