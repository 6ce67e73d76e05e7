"""Mask schedules gamma: [0, 1] -> [0, 1], the fraction of tokens still masked (Chang et al. 2022, sec. 3.2).

gamma(0) = 1 (everything masked), gamma(1) = 0 (nothing masked), monotonically decreasing. Training masks
ceil(gamma(r) * N) tokens for r ~ U(0, 1); decoding step k of T leaves gamma((k + 1) / T) of the initially
unknown tokens masked.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Schedule = Callable[[torch.Tensor], torch.Tensor]


def cosine(r: torch.Tensor) -> torch.Tensor:
    """cos(pi/2 * r): the paper's default."""
    return torch.cos(r * math.pi / 2)


def arccos(r: torch.Tensor) -> torch.Tensor:
    """arccos(r) / (pi/2): masks fewer tokens early in decoding (valeoai's default)."""
    return torch.arccos(r.clamp(0.0, 1.0)) / (math.pi / 2)


def linear(r: torch.Tensor) -> torch.Tensor:
    """1 - r."""
    return 1 - r


def square(r: torch.Tensor) -> torch.Tensor:
    """1 - r^2."""
    return 1 - r**2


SCHEDULES: dict[str, Schedule] = {"cosine": cosine, "arccos": arccos, "linear": linear, "square": square}


def get_schedule(name: str) -> Schedule:
    """The schedule called ``name``; raises ValueError listing the valid names."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown mask schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    return SCHEDULES[name]


def decided_counts(schedule: Schedule, steps: int, unknown: torch.Tensor) -> torch.Tensor:
    """How many of the initially unknown tokens are decided after each step.

    Args:
        unknown: (B,) number M of initially unknown tokens per sample.
    Returns:
        (steps, B) int64: ceil((1 - gamma((k+1)/T)) * M), at least one more than the step before while any
        remain, and exactly M after the last step.
    """
    t = torch.arange(1, steps + 1, dtype=torch.float64) / steps  # (T,)
    frac = 1 - schedule(t).clamp(0, 1)  # (T,)
    m = unknown.double().cpu()  # (B,)
    counts = torch.ceil(frac[:, None] * m[None] - 1e-9).long()  # (T, B)
    counts[-1] = m.long()
    for k in range(steps):  # every step decides at least one token while any remain
        floor = counts[k - 1] + 1 if k > 0 else torch.ones_like(counts[0])
        counts[k] = torch.minimum(torch.maximum(counts[k], floor), m.long())
    return counts.to(unknown.device)
