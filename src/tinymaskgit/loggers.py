"""Logger factories that need more than a `_target_`."""

from __future__ import annotations

import os
from typing import Any

from lightning.pytorch.loggers import WandbLogger


def wandb_logger(save_dir: str, project: str = "tinymaskgit", name: str | None = None, **kwargs: Any) -> WandbLogger:
    """A WandbLogger that never prompts: offline unless the user set WANDB_MODE or WANDB_API_KEY."""
    if "WANDB_MODE" not in os.environ and "WANDB_API_KEY" not in os.environ:
        kwargs.setdefault("offline", True)
    os.environ.setdefault("WANDB_SILENT", "true")
    os.makedirs(save_dir, exist_ok=True)
    return WandbLogger(save_dir=save_dir, project=project, name=name, **kwargs)
