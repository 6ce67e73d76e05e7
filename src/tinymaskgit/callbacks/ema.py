"""An exponential moving average of the weights whose decay warms up, on Lightning's WeightAveraging.

Lightning's ``EMAWeightAveraging`` uses one decay from the first update on, so after n updates the average still
holds decay**n of the initial, random weights: at 0.999, 37% after 1,000 steps and 7% after 2,651. A short run
then validates, draws its image grids and saves a model that is partly its random start. Here the decay after n
earlier updates is ``min(decay, (1 + n) / (10 + n))`` (the warm-up of TensorFlow's ExponentialMovingAverage with
``num_updates``): the average follows the weights closely at first and averages over about 1 / (1 - decay) steps
once n is large. As with Lightning's callback, validation runs on the average, the checkpoint's ``state_dict``
holds the average (the raw weights ride along in ``current_model_state`` for resuming), and the module holds the
average when training ends.
"""

from __future__ import annotations

from functools import partial

import torch
from lightning.pytorch.callbacks import WeightAveraging


def warm_decay(decay: float, num_averaged: int) -> float:
    """The decay used for an update after ``num_averaged`` earlier ones."""
    return min(decay, (1 + num_averaged) / (10 + num_averaged))


def _ema_update(
    averages: list[torch.Tensor], currents: list[torch.Tensor], num_averaged: torch.Tensor, decay: float
) -> None:
    """One update of a group of tensors of one dtype and device, in place (AveragedModel's ``multi_avg_fn``)."""
    if not averages[0].is_floating_point():  # counters and flags are copied, not averaged
        torch._foreach_copy_(averages, currents)
        return
    torch._foreach_lerp_(averages, currents, 1 - warm_decay(decay, int(num_averaged)))


class WarmEMA(WeightAveraging):
    """EMA of the LightningModule's weights (and buffers), decay ``min(decay, (1 + n) / (10 + n))``, every step."""

    def __init__(self, decay: float = 0.999) -> None:  # the config's value is checked by config.validate
        super().__init__(use_buffers=True, multi_avg_fn=partial(_ema_update, decay=decay))
