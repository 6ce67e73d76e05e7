"""Mask schedules and the decoding counts they give."""

from __future__ import annotations

import math

import pytest
import torch

from tinymaskgit.sampling.schedules import SCHEDULES, decided_counts, get_schedule

NAMES = sorted(SCHEDULES)


@pytest.mark.parametrize("name", NAMES)
def test_endpoints_and_monotone(name: str) -> None:
    g = get_schedule(name)
    r = torch.linspace(0, 1, 1001, dtype=torch.float64)
    v = g(r)
    assert v[0].item() == pytest.approx(1.0) and v[-1].item() == pytest.approx(0.0, abs=1e-12)
    assert (v[1:] <= v[:-1] + 1e-12).all()
    assert ((v >= 0) & (v <= 1)).all()


def test_known_values() -> None:
    r = torch.tensor([0.5], dtype=torch.float64)
    assert get_schedule("cosine")(r).item() == pytest.approx(math.cos(math.pi / 4))
    assert get_schedule("linear")(r).item() == pytest.approx(0.5)
    assert get_schedule("square")(r).item() == pytest.approx(0.75)
    assert get_schedule("arccos")(r).item() == pytest.approx(2 / 3)


def test_unknown_schedule_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="arccos"):
        get_schedule("sigmoid")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("steps", [1, 4, 8, 12])
def test_decided_counts_follow_the_schedule(name: str, steps: int) -> None:
    m = torch.tensor([64, 37, 5, 1, 0])
    counts = decided_counts(get_schedule(name), steps, m)
    assert counts.shape == (steps, 5)
    assert torch.equal(counts[-1], m)  # everything decided at the end
    assert (counts[1:] >= counts[:-1]).all() and (counts <= m).all()
    prev = torch.zeros_like(m)
    for k in range(steps):  # at least one more per step while any remain
        assert ((counts[k] > prev) | (prev == m)).all()
        prev = counts[k]
    g = get_schedule(name)
    for k in range(steps - 1):  # ceil((1 - gamma((k+1)/T)) * M) unless the one-per-step floor lifts it
        want = torch.ceil((1 - g(torch.tensor((k + 1) / steps, dtype=torch.float64))) * 64 - 1e-9).long()
        assert counts[k, 0] >= want and (counts[k, 0] == want or counts[k, 0] == k + 1)
