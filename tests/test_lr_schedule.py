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
