"""Trained models, rebuilt from their checkpoint files alone: the one checkpoint reader and the model bundles.

Sampling, inpainting, evaluation, the notebook and the benchmarks load models through this module; it needs
``models/`` and nothing of Lightning or Hydra (a Lightning checkpoint is a dict that ``torch.load`` reads).
Training writes what is read here: each LightningModule stores ``checkpoint[KEY]`` with its stage and the
constructor arguments of its networks, so a file rebuilds its networks without any config.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tinymaskgit.cache import hash_file
from tinymaskgit.errors import CheckpointError
from tinymaskgit.metrics.features import ClassifierBackend
from tinymaskgit.models.classifier import ResNetClassifier
from tinymaskgit.models.transformer import MaskGITTransformer
from tinymaskgit.models.vqvae import VQVAE

KEY = "tinymaskgit"  # the checkpoint entry holding the stage and the networks' configs
STAGES = ("vqvae", "maskgit", "classifier")


def read_checkpoint(path: str | Path, expect_stage: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Load a checkpoint on the CPU, checking that it exists, is readable and is of an expected stage."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist; pass the path of a .ckpt file")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a truncated or foreign file
        raise CheckpointError(f"cannot read checkpoint {p}: {type(e).__name__}: {e}") from e
    meta = ckpt.get(KEY) if isinstance(ckpt, dict) else None
    if meta is None:
        raise CheckpointError(f"{p} is not a tinymaskgit checkpoint (no '{KEY}' entry)")
    wanted = (expect_stage,) if isinstance(expect_stage, str) else expect_stage
    if wanted is not None and meta.get("stage") not in wanted:
        raise CheckpointError(
            f"{p} is a stage={meta.get('stage')} checkpoint, but a stage={' or '.join(wanted)} one is needed here"
        )
    return ckpt


def sub_state_dict(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state_dict`` under ``prefix.`` with the prefix removed."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in state_dict.items() if k.startswith(prefix + ".")}


def _tokenizer_from(ckpt: dict[str, Any]) -> VQVAE:
    meta = ckpt[KEY]
    config, prefix = (
        (meta["net_config"], "net") if meta["stage"] == "vqvae" else (meta["tokenizer_config"], "tokenizer")
    )
    net = VQVAE(**config)
    net.load_state_dict(sub_state_dict(ckpt["state_dict"], prefix))
    return net.eval().requires_grad_(False)


def load_tokenizer(path: str | Path, device: str | torch.device = "cpu", stage: str | None = "vqvae") -> VQVAE:
    """The frozen VQVAE of a stage-1 checkpoint; with ``stage=None`` also the one inside a stage-2 checkpoint."""
    ckpt = read_checkpoint(path, expect_stage=stage or ("vqvae", "maskgit"))
    return _tokenizer_from(ckpt).to(device)


@dataclass
class MaskGIT:
    """A trained stage-2 model ready to sample: transformer, tokenizer and what the checkpoint says."""

    net: MaskGITTransformer
    tokenizer: VQVAE
    class_names: list[str]
    meta: dict[str, Any]


def load_maskgit(path: str | Path, device: str | torch.device = "cpu") -> MaskGIT:
    """Transformer and tokenizer of a stage-2 checkpoint (eval mode, on ``device``).

    With EMA on, the checkpoint's weights are the averaged ones (Lightning's WeightAveraging saves those).
    """
    ckpt = read_checkpoint(path, expect_stage="maskgit")
    meta = ckpt[KEY]
    net = MaskGITTransformer(**meta["net_config"])
    net.load_state_dict(sub_state_dict(ckpt["state_dict"], "net"))
    names = list(meta.get("class_names") or [])
    return MaskGIT(net.eval().to(device), _tokenizer_from(ckpt).to(device), names, meta)


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> tuple[ResNetClassifier, dict[str, Any]]:
    """A reference classifier and its metadata (class names, held-out accuracy) from its checkpoint."""
    ckpt = read_checkpoint(path, expect_stage="classifier")
    meta = ckpt[KEY]
    net = ResNetClassifier(**meta["net_config"])
    net.load_state_dict(sub_state_dict(ckpt["state_dict"], "net"))
    return net.eval().to(device), meta


def classifier_backend(path: str | Path, device: str | torch.device = "cpu") -> ClassifierBackend:
    """The feature backend (FD/KID features, class predictions) of a reference classifier checkpoint."""
    net, meta = load_classifier(path, device)
    return ClassifierBackend(net, meta, hash_file(path), device)
