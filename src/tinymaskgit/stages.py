"""How each training stage builds its DataModule, LightningModule and extra callbacks from a config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from tinymaskgit.errors import CheckpointError, ConfigError

Built = tuple[L.LightningDataModule, L.LightningModule, list[L.Callback]]


def build_vqvae(cfg: DictConfig) -> Built:
    """Stage 1: images -> VQ-VAE."""
    return instantiate(cfg.data), instantiate(cfg.stage.module, _convert_="all"), []


def build_maskgit(cfg: DictConfig) -> Built:
    """Stage 2: images -> frozen tokenizer -> cached tokens -> transformer."""
    from tinymaskgit.callbacks.ema import WarmEMA
    from tinymaskgit.data.tokens import TokenDataModule
    from tinymaskgit.inference import load_tokenizer

    if not cfg.get("tokenizer_ckpt"):
        raise ConfigError(
            "stage=maskgit needs tokenizer_ckpt=/path/to/checkpoints/last.ckpt of a stage=vqvae run "
            "(or the MaskGIT lab's VQGAN.pt)"
        )
    path = str(Path(cfg.tokenizer_ckpt).expanduser())
    tokenizer = load_tokenizer(path, config=cfg.get("tokenizer_config"))
    images = instantiate(cfg.data)
    if tokenizer.image_size != images.image_size:
        raise CheckpointError(
            f"tokenizer {path} takes {tokenizer.image_size}px images but data.image_size={images.image_size}"
        )
    t = cfg.model.transformer
    for key, theirs in (("codebook_size", tokenizer.codebook_size), ("num_tokens", tokenizer.num_tokens)):
        mine = t.get(key)
        if mine is not None and mine != theirs:
            raise CheckpointError(
                f"model.transformer.{key}={mine} does not match the tokenizer {path}, which has {key}={theirs}; "
                f"set model.transformer.{key}=null to take the tokenizer's, or pick the matching model preset"
            )
    patch = t.get("patch") or 1
    if tokenizer.latent_size % patch:
        raise CheckpointError(
            f"model.transformer.patch={patch} does not divide the {tokenizer.latent_size}x{tokenizer.latent_size} "
            f"token grid of the tokenizer {path}; pick a patch that divides {tokenizer.latent_size} (1 always does)"
        )
    num_classes = t.get("num_classes")
    if num_classes is None:
        num_classes = images.num_classes
    net = instantiate(
        t, codebook_size=tokenizer.codebook_size, num_tokens=tokenizer.num_tokens, num_classes=num_classes
    )
    datamodule = TokenDataModule(
        images,
        tokenizer,
        cache_dir=cfg.stage.cache_dir,
        encode_batch_size=cfg.stage.encode_batch_size,
        crop_views=cfg.stage.get("crop_views", 0),
        crop_scale=cfg.stage.get("crop_scale", 0.8),
    )
    module = instantiate(
        cfg.stage.module,
        _convert_="all",  # plain lists and dicts in the hparams: a checkpoint must load with weights_only=True
        net=net,
        tokenizer=tokenizer,
        schedule=cfg.schedule.name,
        class_names=list(images.class_names) if num_classes else [],
    )
    callbacks: list[L.Callback] = []
    if cfg.stage.get("ema_decay"):
        callbacks.append(WarmEMA(decay=cfg.stage.ema_decay))
    return datamodule, module, callbacks


def build_classifier(cfg: DictConfig) -> Built:
    """The reference classifier: real training images -> class (for class accuracy and FD features)."""
    images = instantiate(cfg.data)
    if images.num_classes < 2:
        raise ConfigError(
            f"stage=classifier needs a dataset with classes, and data={images.name} has none; "
            "train it on tiny_imagenet10 or generated and pass its checkpoint to evaluate"
        )
    net = instantiate(cfg.stage.net, num_classes=images.num_classes)
    module = instantiate(
        cfg.stage.module, _convert_="all", net=net, class_names=list(images.class_names), dataset=images.name
    )
    return images, module, []


STAGES: dict[str, Callable[[DictConfig], Built]] = {
    "vqvae": build_vqvae,
    "maskgit": build_maskgit,
    "classifier": build_classifier,
}
