"""Learning-rate schedule shared by the training modules: linear warm-up, then cosine decay."""

from __future__ import annotations

import math
import warnings

import lightning as L
import torch


def step_horizon(trainer: L.Trainer) -> int | None:
    """Total optimizer steps of the run, or None when it is unbounded (max_epochs=-1 with only max_time)."""
    total = trainer.estimated_stepping_batches
    if not math.isfinite(total):
        warnings.warn("no step horizon (max_epochs=-1): the learning rate stays constant after warm-up", stacklevel=2)
        return None
    return max(1, int(total))


def warmup_cosine(
    opt: torch.optim.Optimizer, warmup_steps: int, total_steps: int | None, floor: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps`` (at most a tenth of the run), then cosine decay to ``floor`` of the
    peak at ``total_steps``; constant after warm-up when ``total_steps`` is None."""
    warm = max(1, warmup_steps if total_steps is None else min(warmup_steps, max(1, total_steps // 10)))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if total_steps is None:
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
