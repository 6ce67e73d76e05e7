"""The stage-1 LightningModule's losses, checked without a Trainer: the feature-matching term."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from tinymaskgit.lit.vqvae_module import VQVAEModule
from tinymaskgit.models.vqvae import VQVAE


def step(disc_weight: float, fm_weight: float) -> tuple[VQVAEModule, torch.Tensor, dict[str, Any]]:
    """One training step of a small module from a fixed seed, after disc_start; returns the module (gradients
    filled), the loss and what it logged."""
    torch.manual_seed(0)
    net = VQVAE(encoder_channels=[8, 8, 8, 8, 8], codebook_size=16, code_dim=8, latent_size=4)
    module = VQVAEModule(
        net, torch.optim.Adam, disc_weight=disc_weight, fm_weight=fm_weight, disc_start=0, disc_channels=8
    )
    logs: dict[str, Any] = {}
    module.log_dict = lambda values, *a, **k: logs.update(values)  # type: ignore[method-assign]  # no Trainer
    module.log = lambda name, value, *a, **k: logs.update({name: value})  # type: ignore[method-assign]
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    loss = module.training_step((x, torch.zeros(4, dtype=torch.long)), 0)
    loss.backward()
    return module, loss.detach(), logs


def grads(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in module.parameters() if p.grad is not None])


def test_feature_matching_adds_its_weighted_term_and_trains_only_the_tokenizer() -> None:
    off, loss_off, off_logs = step(disc_weight=0.1, fm_weight=0.0)
    on, loss_on, logs = step(disc_weight=0.1, fm_weight=2.0)
    fm = float(logs["train/fm_loss"].detach())
    assert fm > 0 and "train/fm_loss" not in off_logs
    assert loss_on.item() == pytest.approx(loss_off.item() + 2.0 * fm, rel=1e-5)
    assert not torch.allclose(grads(on.net.decoder), grads(off.net.decoder))  # the term reaches the decoder
    assert on.discriminator is not None and off.discriminator is not None
    assert torch.allclose(grads(on.discriminator), grads(off.discriminator))  # and not the discriminator


def test_feature_matching_alone_still_trains_the_discriminator() -> None:
    module, _, logs = step(disc_weight=0.0, fm_weight=1.0)
    assert module.discriminator is not None and float(logs["train/disc_weight"]) == 0.0
    assert grads(module.discriminator).abs().sum() > 0  # from its hinge loss
    assert step(disc_weight=0.0, fm_weight=0.0)[0].discriminator is None


@pytest.mark.parametrize("key", ["disc_weight", "fm_weight"])
def test_negative_weight_is_refused(key: str) -> None:
    net = VQVAE(encoder_channels=[8, 8, 8, 8, 8], codebook_size=16, code_dim=8, latent_size=4)
    with pytest.raises(ValueError, match=f"stage.module.{key} must be >= 0"):
        VQVAEModule(net, torch.optim.Adam, **{key: -1.0})
