"""Training of the reference classifier (cross-entropy on real images; label smoothing and random
translation optional)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from tinymaskgit.data.augment import random_translate
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
        min_lr_ratio: float = 0.01,
        max_shift: int = 0,
        class_names: list[str] | None = None,
        dataset: str = "",
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer"])
        self.net = net
        self.optimizer_factory = optimizer
        # exact accuracy over the epoch (and over processes under DDP), not a mean of batch means
        k = net.config.num_classes
        self.train_acc = MulticlassAccuracy(num_classes=k, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes=k, average="micro")

    def _common_step(self, batch: Batch, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self.net(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.hparams.label_smoothing)
        acc = self.train_acc if stage == "train" else self.val_acc
        acc(logits, y)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss, on_step=on_step, on_epoch=True, prog_bar=True, sync_dist=not on_step)
        self.log(f"{stage}/acc", acc, on_step=on_step, on_epoch=True, prog_bar=True)
        return loss

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return self._common_step((random_translate(x, self.hparams.max_shift), y), "train")

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._common_step(batch, "val")

    def configure_optimizers(self) -> dict[str, Any]:
        opt = self.optimizer_factory(params=self.net.parameters())
        sched = run_schedule(self.trainer, opt, self.hparams.warmup_steps, self.hparams.min_lr_ratio)
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
