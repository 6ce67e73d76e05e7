"""The page's model, loaded once: where the checkpoint comes from, its dataset's test images, the limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tinymaskgit.errors import CheckpointError, TinyMaskGITError
from tinymaskgit.inference import MaskGIT, load_maskgit, read_checkpoint
from tinymaskgit.sampling.decode import DecodeSettings

UNCONDITIONAL = "unconditional"  # the class choice of a class-free model


@dataclass
class Limits:
    """Per-request bounds that keep a 2-core machine responsive (conf/app.yaml: limits)."""

    max_samples: int = 64
    max_steps: int = 32
    gallery: int = 24  # test images offered on the Inpaint tab
    sweep_max_runs: int = 8  # settings combinations per in-page sweep
    sweep_max_per_class: int = 50  # samples per class per combination


def newest_checkpoint(log_dir: Path, stage: str) -> Path | None:
    """The newest ``*/checkpoints/*.ckpt`` under ``log_dir`` of ``stage`` (last.ckpt / best.ckpt preferred)."""
    if not log_dir.is_dir():
        return None
    found = sorted(log_dir.rglob("checkpoints/*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    preferred = "best.ckpt" if stage == "classifier" else "last.ckpt"
    # stable sorts: files under a folder named after the stage first (the demo's and recipes' layout), the
    # preferred name first among those; each candidate is still read to check its stage
    found.sort(key=lambda p: p.name != preferred)
    found.sort(key=lambda p: stage not in p.parts)
    for path in found:
        try:
            read_checkpoint(path, expect_stage=stage)
        except CheckpointError:
            continue
        return path
    return None


def run_config(ckpt: Path) -> Any | None:
    """The config.yaml that training wrote into the checkpoint's run folder, or None."""
    from omegaconf import OmegaConf

    path = ckpt.parent.parent / "config.yaml"
    return OmegaConf.load(path) if path.is_file() else None


def test_images(ckpt: Path, n: int) -> tuple[torch.Tensor, list[str], str]:
    """Up to ``n`` validation images of the checkpoint's dataset (spread over the split), captions, a note."""
    from hydra.utils import instantiate

    cfg = run_config(ckpt)
    if cfg is None or "data" not in cfg:
        return (
            torch.empty(0, 3, 0, 0, dtype=torch.uint8),
            [],
            "no training config beside the checkpoint: upload an image",
        )
    try:
        dm = instantiate(cfg.data)
        val = dm.dataset("val")
    except TinyMaskGITError as e:
        return (
            torch.empty(0, 3, 0, 0, dtype=torch.uint8),
            [],
            f"the checkpoint's dataset is not readable here ({e}); upload an image",
        )
    idx = torch.linspace(0, len(val) - 1, min(n, len(val))).round().long()
    names = list(dm.class_names)
    captions = [f"{names[int(val.labels[i])] if names else 'image'} #{int(i)}" for i in idx]
    return val.images[idx], captions, f"{len(idx)} validation images of {dm.name}"


@dataclass
class Session:
    """One loaded model and what the page offers with it; built once when the server starts."""

    ckpt: Path
    model: MaskGIT
    limits: Limits
    out_dir: Path
    gallery: torch.Tensor = field(default_factory=lambda: torch.empty(0, 3, 0, 0, dtype=torch.uint8))
    captions: list[str] = field(default_factory=list)
    gallery_note: str = ""
    defaults: DecodeSettings = field(default_factory=DecodeSettings)  # the widgets' first values (conf/sampler)
    seed: int = 0

    @classmethod
    def load(cls, ckpt: str | Path, device: str | torch.device, limits: Limits, out_dir: Path) -> Session:
        path = Path(ckpt).expanduser()
        model = load_maskgit(path, device)
        images, captions, note = test_images(path, limits.gallery)
        out_dir.mkdir(parents=True, exist_ok=True)
        return cls(path, model, limits, out_dir, images, captions, note)

    @property
    def size(self) -> int:
        return int(self.model.tokenizer.image_size)

    @property
    def class_choices(self) -> list[str]:
        return list(self.model.class_names) or [UNCONDITIONAL]
