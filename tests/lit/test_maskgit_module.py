"""The stage-2 LightningModule's pieces that need no Trainer: the training mask follows the schedule."""

from __future__ import annotations

import pytest
import torch

from tinymaskgit.lit.maskgit_module import training_mask
from tinymaskgit.sampling.schedules import SCHEDULES, get_schedule

NAMES = sorted(SCHEDULES)


@pytest.mark.parametrize("name", NAMES)
def test_training_mask_has_the_count_gamma_asks_for(name: str) -> None:
    g = get_schedule(name)
    gen = torch.Generator().manual_seed(0)
    ref = torch.Generator().manual_seed(0)
    b, n = 256, 64
    mask = training_mask(g, b, n, torch.device("cpu"), gen)
    r = torch.rand(b, generator=ref)  # the same r the function drew
    want = torch.ceil(g(r) * n).clamp(1, n).long()
    assert torch.equal(mask.sum(1), want)  # masked (not kept) count equals ceil(gamma(r) N)
    # gamma near 1 for small r: mostly-masked samples must exist, fully-unmasked ones must not
    assert mask.sum(1).min() >= 1
