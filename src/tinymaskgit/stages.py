"""How each training stage builds its DataModule and LightningModule from a composed config."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig


def build_vqvae(cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule]:
    """Stage 1: images -> VQ-VAE."""
    return instantiate(cfg.data), instantiate(cfg.stage.module)


STAGES: dict[str, Callable[[DictConfig], tuple[L.LightningDataModule, L.LightningModule]]] = {
    "vqvae": build_vqvae,
}
