"""Training of the reference classifier (cross-entropy on real images; label smoothing optional)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from tinymaskgit.inference import KEY
from tinymaskgit.lit.lr_schedule import run_schedule
from tinymaskgit.models.classifier import ResNetClassifier
from tinymaskgit.models.config import as_dict

Batch = tuple[torch.Tensor, torch.Tensor]


class ClassifierModule(L.LightningModule):
    """Trains a ResNetClassifier; each checkpoint records the held-out (val) accuracy of the weights it holds."""

    def __init__(
        self,
        net: ResNetClassifier,
        optimizer: Callable[..., torch.optim.Optimizer],
        label_smoothing: float = 0.0,
        warmup_steps: int = 100,
        class_names: list[str] | None = None,
        dataset: str = "",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer"])
        self.net = net
        self.optimizer_factory = optimizer

    def _common_step(self, batch: Batch, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        acc = (logits.argmax(-1) == y).float().mean()
        self.log_dict(
            {f"{stage}/loss": loss, f"{stage}/acc": acc},
            on_step=stage == "train",
            on_epoch=True,
            prog_bar=True,
            sync_dist=stage != "train",
            batch_size=len(x),
        )
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._common_step(batch, "val")

    def configure_optimizers(self) -> dict[str, Any]:
        opt = self.optimizer_factory(params=self.net.parameters())
        sched = run_schedule(self.trainer, opt, self.hparams.warmup_steps, floor=0.01)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        acc = self.trainer.callback_metrics.get("val/acc")
        checkpoint[KEY] = {
            "stage": "classifier",
            "net_config": as_dict(self.net.config),
            "class_names": list(self.hparams.class_names or []),
            "dataset": self.hparams.dataset,
            "val_acc": float(acc) if acc is not None else None,
        }
