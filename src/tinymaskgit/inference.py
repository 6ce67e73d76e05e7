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
from tinymaskgit.models.lab_vqgan import ARCH as LAB_ARCH
from tinymaskgit.models.lab_vqgan import LabVQGAN, LabVQGANConfig
from tinymaskgit.models.tokenizer import Tokenizer
from tinymaskgit.models.transformer import MaskGITTransformer
from tinymaskgit.models.vqvae import VQVAE

KEY = "tinymaskgit"  # the checkpoint entry holding the stage and the networks' configs
STAGES = ("vqvae", "maskgit", "classifier")


def read_checkpoint(path: str | Path, expect_stage: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """Load a checkpoint on the CPU, checking that it exists, is readable and is of an expected stage."""
    p = Path(path).expanduser()
    return check_checkpoint(load_file(p), p, expect_stage)


def load_file(p: Path) -> Any:
    """What ``torch.load`` reads from ``p`` on the CPU; a missing or unreadable file is a CheckpointError."""
    if not p.is_file():
        raise CheckpointError(f"checkpoint {p} does not exist; pass the path of a .ckpt file")
    try:
        return torch.load(p, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a truncated or foreign file
        raise CheckpointError(f"cannot read checkpoint {p}: {type(e).__name__}: {e}") from e


def check_checkpoint(ckpt: Any, p: Path, expect_stage: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """``ckpt`` (read from ``p``) if it is a tinymaskgit checkpoint of an expected stage, else a CheckpointError."""
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


def _tokenizer_from(ckpt: dict[str, Any]) -> Tokenizer:
    meta = ckpt[KEY]
    config, prefix = (
        (meta["net_config"], "net") if meta["stage"] == "vqvae" else (meta["tokenizer_config"], "tokenizer")
    )
    net: Tokenizer = LabVQGAN(**config) if config.get("arch") == LAB_ARCH else VQVAE(**config)
    net.load_state_dict(sub_state_dict(ckpt["state_dict"], prefix))
    return net.eval().requires_grad_(False)


def load_tokenizer(
    path: str | Path,
    device: str | torch.device = "cpu",
    stage: str | None = "vqvae",
    config: str | Path | None = None,
) -> Tokenizer:
    """The frozen tokenizer of a stage-1 checkpoint (with ``stage=None`` also the one inside a stage-2
    checkpoint), or the MaskGIT lab's ``VQGAN.pt`` (a plain state_dict; sizes from ``config``, else the
    ``VQGAN.yml`` beside it, else the lab's defaults)."""
    p = Path(path).expanduser()
    obj = load_file(p)  # read once: either kind of file
    if is_plain_state_dict(obj):
        return load_lab_vqgan(p, obj, config).to(device)
    return _tokenizer_from(check_checkpoint(obj, p, stage or ("vqvae", "maskgit"))).to(device)


def is_plain_state_dict(obj: Any) -> bool:
    """Whether ``obj`` is a plain state_dict (names -> tensors, as the lab's VQGAN.pt), not a Lightning checkpoint."""
    if not isinstance(obj, dict) or not obj:
        return False
    return all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())


def lab_vqgan_config(path: Path, config: str | Path | None) -> LabVQGANConfig:
    """The sizes of a lab VQGAN: ``config`` (a VQGAN.yml), else the VQGAN.yml beside ``path``, else defaults."""
    import yaml

    yml = Path(config).expanduser() if config else path.with_name("VQGAN.yml")
    if config and not yml.is_file():
        raise CheckpointError(f"tokenizer_config={yml} does not exist; pass the lab's VQGAN.yml")
    if not yml.is_file():
        return LabVQGANConfig()
    try:
        data = yaml.safe_load(yml.read_text()) or {}
        params = data.get("model_param", data)
        known = set(LabVQGANConfig.__dataclass_fields__)
        return LabVQGANConfig(**{k: v for k, v in params.items() if k in known})
    except (yaml.YAMLError, AttributeError, TypeError, ValueError) as e:
        raise CheckpointError(f"cannot read the VQGAN sizes in {yml}: {e}") from None


def load_lab_vqgan(path: Path, state: dict[str, torch.Tensor], config: str | Path | None = None) -> LabVQGAN:
    """A frozen LabVQGAN holding ``state``; a one-line error naming the keys that do not fit."""
    cfg = lab_vqgan_config(path, config)
    net = LabVQGAN(cfg)
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    shaped = [
        f"{k} {tuple(state[k].shape)} (expected {want[k]})"
        for k in want
        if k in state and tuple(state[k].shape) != want[k]
    ]
    if missing or unexpected or shaped:
        parts = [
            f"{label} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''} ({len(keys)})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shaped))
            if keys
        ]
        yml = Path(config).expanduser() if config else path.with_name("VQGAN.yml")
        sizes = f"the sizes in {yml}" if yml.is_file() else "the lab's default sizes (no VQGAN.yml beside it)"
        raise CheckpointError(
            f"{path} does not fit a lab VQGAN of {sizes}: "
            + "; ".join(parts)
            + f"; expected {len(want)} keys such as encoder.model.0.weight and codebook.embedding.weight "
            f"({cfg.num_codebook_vectors} x {cfg.latent_dim}); pass tokenizer_config=<its VQGAN.yml> for other sizes"
        )
    net.load_state_dict(state)
    return net.eval().requires_grad_(False)


@dataclass
class MaskGIT:
    """A trained stage-2 model ready to sample: transformer, tokenizer and what the checkpoint says."""

    net: MaskGITTransformer
    tokenizer: Tokenizer
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
