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


STEP_COUNTS = ("paper", "valeoai")


def decided_counts(schedule: Schedule, steps: int, unknown: torch.Tensor, rule: str = "paper") -> torch.Tensor:
    """How many of the initially unknown tokens are decided after each step.

    Two rules go by the same schedule names:
    - ``paper`` (Chang et al. 2022; the MaskGIT lab): after step k, ceil((1 - gamma((k+1)/T)) * M) are decided.
      With arccos and T = 8 on M = 256: 21 tokens at the first step, 82 at the last.
    - ``valeoai`` (valeoai/Maskgit-pytorch, and the Tiny MaskGIT report that follows it): step k decides a share
      of M proportional to gamma(r_k) at r_k = linspace(1, 0, T), rounded down (at least 1), the remainder at
      the last step. With arccos and T = 8 on M = 256: 1 token first, then 18, 25, ..., 54.

    Args:
        unknown: (B,) number M of initially unknown tokens per sample.
    Returns:
        (steps, B) int64 cumulative counts: at least one more than the step before while any remain, and
        exactly M after the last step.
    """
    if rule not in STEP_COUNTS:
        raise ValueError(f"unknown step_counts rule {rule!r}; choose one of {STEP_COUNTS}")
    m = unknown.double().cpu()  # (B,)
    if rule == "paper":
        t = torch.arange(1, steps + 1, dtype=torch.float64) / steps  # (T,)
        frac = 1 - schedule(t).clamp(0, 1)  # (T,)
        counts = torch.ceil(frac[:, None] * m[None] - 1e-9).long()  # (T, B)
    else:
        share = schedule(torch.linspace(1, 0, steps, dtype=torch.float64)).clamp(0, 1)  # (T,)
        share = share / share.sum() if share.sum() > 0 else torch.full_like(share, 1 / steps)
        per_step = torch.floor(share[:, None] * m[None] + 1e-9).long().clamp(min=1)  # (T, B)
        counts = per_step.cumsum(0)
    counts[-1] = m.long()
    for k in range(steps):  # every step decides at least one token while any remain
        floor = counts[k - 1] + 1 if k > 0 else torch.ones_like(counts[0])
        counts[k] = torch.minimum(torch.maximum(counts[k], floor), m.long())
    return counts.to(unknown.device)
