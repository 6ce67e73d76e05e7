"""Warm-up + cosine learning-rate factors."""

from __future__ import annotations

import pytest
import torch

from tinymaskgit.lit.lr_schedule import warmup_cosine


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
