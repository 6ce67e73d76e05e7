"""The mid-epoch checkpoint: last.ckpt every N training steps, so a killed run loses at most N steps."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class StepCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint for ``every_n_train_steps`` that writes nothing when training ends.

    It shares last.ckpt with the epoch-end checkpoint, which covers the end of training at the last
    validation. Lightning's own end-of-training save would come after EMA weight averaging has copied the
    average into the model, and would overwrite last.ckpt with a file whose raw weights are lost.
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        return None
