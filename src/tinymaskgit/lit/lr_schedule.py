"""Learning-rate schedule shared by the training modules: linear warm-up, then cosine decay.

The decay follows the run's progress: steps over the step horizon (max_epochs or max_steps) and the training
time spent over ``trainer.max_time``, whichever is further along. A time-bounded run (the recipes) reaches its
floor when the time is up, however many steps that was; a run bounded by both (the demo: epochs, with minutes
as a cap for slow machines) reaches it at whichever bound stops it. With neither, it stays constant after
warm-up.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import lightning as L
import torch


def step_horizon(trainer: L.Trainer, warn: bool = True) -> int | None:
    """Total optimizer steps of the run, or None when it is unbounded (max_epochs=-1 with only max_time)."""
    total = trainer.estimated_stepping_batches
    if not math.isfinite(total):
        if warn:
            warnings.warn(
                "no step horizon (max_epochs=-1): the learning rate stays constant after warm-up", stacklevel=2
            )
        return None
    return max(1, int(total))


def time_progress(trainer: L.Trainer) -> Callable[[], float] | None:
    """Fraction of ``trainer.max_time`` spent training so far (Lightning's Timer; continues on resume), or None."""
    from lightning.pytorch.callbacks import Timer

    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)  # type: ignore[attr-defined]
    duration = getattr(timer, "_duration", None)
    if timer is None or not duration:
        return None
    return lambda: min(1.0, timer.time_elapsed("train") / duration)


def run_schedule(
    trainer: L.Trainer, opt: torch.optim.Optimizer, warmup_steps: int, floor: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """warmup_cosine over the step horizon and the time budget, whichever the run reaches first."""
    total = step_horizon(trainer, warn=False)
    progress = time_progress(trainer)
    if total is None and progress is None:
        step_horizon(trainer)  # warns: constant after warm-up
    return warmup_cosine(opt, warmup_steps, total, floor, progress)


def warmup_cosine(
    opt: torch.optim.Optimizer,
    warmup_steps: int,
    total_steps: int | None,
    floor: float = 0.1,
    progress: Callable[[], float] | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps`` (at most a tenth of the run), then cosine decay to ``floor`` of the
    peak as the run goes from 0 to 1: the further along of ``(step - warm) / (total_steps - warm)`` and
    ``progress()`` (the fraction of the time budget spent), each where given; constant after warm-up when
    neither is."""
    warm = max(1, warmup_steps if total_steps is None else min(warmup_steps, max(1, total_steps // 10)))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if total_steps is None and progress is None:
            return 1.0
        done = 0.0
        if total_steps is not None:
            done = min(1.0, (step - warm) / max(1, total_steps - warm))
        if progress is not None:
            done = max(done, progress())
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * done))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
