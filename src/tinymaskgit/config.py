"""Checks of config values made before anything runs, each failing with one line that names the key; the
sampler settings of an entry point's config."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from omegaconf import DictConfig, OmegaConf

from tinymaskgit.errors import ConfigError
from tinymaskgit.models.blocks import NORMS
from tinymaskgit.models.transformer import check_patch
from tinymaskgit.models.vqvae import check_quantizer, num_downsamples
from tinymaskgit.sampling.decode import DecodeSettings, settings_from


def _get(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None)


def require_positive_int(cfg: DictConfig, key: str) -> None:
    """The value at ``key``, if present, is an integer > 0."""
    value = _get(cfg, key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ConfigError(f"{key} must be a positive integer, got {value!r}")


def validate_vqvae(cfg: DictConfig, prefix: str = "model.vqvae") -> None:
    """Codebook size, code dim and the image/latent geometry of a VQ-VAE config."""
    codebook = _get(cfg, f"{prefix}.codebook_size")
    if codebook is not None and (not isinstance(codebook, int) or codebook < 2):
        raise ConfigError(f"{prefix}.codebook_size must be an integer >= 2, got {codebook!r}")
    require_positive_int(cfg, f"{prefix}.code_dim")
    norm = _get(cfg, f"{prefix}.norm")
    if norm is not None and norm not in NORMS:
        raise ConfigError(f"{prefix}.norm must be one of {', '.join(NORMS)}, got {norm!r}")
    quantizer = _get(cfg, f"{prefix}.quantizer")
    if quantizer is not None and codebook is not None:
        levels = _get(cfg, f"{prefix}.fsq_levels")
        try:
            check_quantizer(quantizer, None if levels is None else list(levels), codebook, prefix=f"{prefix}.")
        except ValueError as e:
            raise ConfigError(str(e)) from None
    image, latent = _get(cfg, f"{prefix}.image_size"), _get(cfg, f"{prefix}.latent_size")
    if image is not None and latent is not None:
        try:
            num_downsamples(image, latent)
        except ValueError as e:
            raise ConfigError(
                f"{prefix}.latent_size={latent} does not fit image_size={image}: {e}; "
                "the downsampling factor image_size/latent_size must be a power of 2"
            ) from None


def validate_patch(cfg: DictConfig) -> None:
    """model.transformer.patch is a positive integer (whether it divides the token grid is checked against the
    tokenizer stage 2 loads: stages.build_maskgit)."""
    patch = _get(cfg, "model.transformer.patch")
    if patch is not None:
        try:
            check_patch(patch)
        except ValueError as e:
            raise ConfigError(f"model.transformer.{e}") from None


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError for the first invalid value of a composed training config."""
    for key in ("data.batch_size", "data.image_size", "trainer.log_every_n_steps"):
        require_positive_int(cfg, key)
    workers = _get(cfg, "data.num_workers")
    if workers is not None and (not isinstance(workers, int) or workers < 0):
        raise ConfigError(f"data.num_workers must be an integer >= 0, got {workers!r}")
    epochs = _get(cfg, "trainer.max_epochs")
    if epochs is not None and (not isinstance(epochs, int) or (epochs < 1 and epochs != -1)):
        raise ConfigError(f"trainer.max_epochs must be a positive integer (or -1 for no limit), got {epochs!r}")
    if _get(cfg, "model.vqvae") is not None:
        validate_vqvae(cfg)
    validate_patch(cfg)
    lr = _get(cfg, "stage.module.optimizer.lr")
    if lr is not None and (not isinstance(lr, (int, float)) or lr <= 0):
        raise ConfigError(f"stage.module.optimizer.lr must be > 0, got {lr!r}")
    floor = _get(cfg, "stage.module.min_lr_ratio")
    if floor is not None and (not isinstance(floor, (int, float)) or not 0 < floor <= 1):
        raise ConfigError(f"stage.module.min_lr_ratio must be in (0, 1] (1: no decay), got {floor!r}")
    warmup = _get(cfg, "stage.module.warmup_steps")
    if warmup is not None and (isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0):
        raise ConfigError(f"stage.module.warmup_steps must be an integer >= 0, got {warmup!r}")
    mask_floor = _get(cfg, "stage.module.min_mask_ratio")
    if mask_floor is not None and (
        isinstance(mask_floor, bool) or not isinstance(mask_floor, (int, float)) or not 0 <= mask_floor < 1
    ):
        raise ConfigError(
            f"stage.module.min_mask_ratio must be in [0, 1) (0: as the schedule draws), got {mask_floor!r}"
        )
    ema = _get(cfg, "stage.ema_decay")
    if ema is not None and (isinstance(ema, bool) or not isinstance(ema, (int, float)) or not 0 < ema < 1):
        raise ConfigError(f"stage.ema_decay must lie strictly between 0 and 1 (e.g. 0.999), got {ema!r}")
    for key in ("stage.module.disc_weight", "stage.module.fm_weight"):
        weight = _get(cfg, key)
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0):
            raise ConfigError(f"{key} must be a number >= 0 (0: off), got {weight!r}")
    image = _get(cfg, "data.image_size")
    shift = _get(cfg, "stage.module.max_shift")
    if shift is not None and (
        isinstance(shift, bool) or not isinstance(shift, int) or shift < 0 or (image is not None and shift >= image)
    ):
        raise ConfigError(f"stage.module.max_shift must be an integer in [0, data.image_size={image}), got {shift!r}")
    model_image = _get(cfg, "model.vqvae.image_size")
    if image is not None and model_image is not None and image != model_image:
        raise ConfigError(f"model.vqvae.image_size={model_image} differs from data.image_size={image}")


def decode_settings(cfg: DictConfig) -> DecodeSettings:
    """The sampler keys of an entry point's config (conf/sampler/*.yaml, schedule group), type-checked."""
    values = {f.name: cfg[f.name] for f in fields(DecodeSettings) if f.name != "schedule" and f.name in cfg}
    try:
        return settings_from({**values, "schedule": cfg.schedule.name})
    except ValueError as e:
        raise ConfigError(str(e)) from None
