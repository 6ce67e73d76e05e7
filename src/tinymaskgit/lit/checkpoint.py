"""What tinymaskgit stores in a Lightning checkpoint beside the weights, and reading it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tinymaskgit.errors import CheckpointError

KEY = "tinymaskgit"


def read_checkpoint(path: str | Path, expect_stage: str | None = None) -> dict[str, Any]:
    """Load a checkpoint on the CPU, checking that it exists, is readable and is of the expected stage."""
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
    if expect_stage is not None and meta.get("stage") != expect_stage:
        raise CheckpointError(
            f"{p} is a stage={meta.get('stage')} checkpoint, but a stage={expect_stage} one is needed here"
        )
    return ckpt


def sub_state_dict(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``state_dict`` under ``prefix.`` with the prefix removed."""
    n = len(prefix) + 1
    return {k[n:]: v for k, v in state_dict.items() if k.startswith(prefix + ".")}
