"""The mid-epoch and end-of-epoch last.ckpt: written every N training steps, so a killed run loses at most N
steps, and at every epoch's end, so last.ckpt always holds the newest weights when training stops."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class StepCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint for ``every_n_train_steps`` that also writes last.ckpt at every epoch's end, and
    nothing when training ends.

    It shares last.ckpt with the monitored checkpoint. That one (Lightning 2.6) rewrites last.ckpt at an
    epoch's end only when it saved a new best there, so a run whose last validation was not its best (a
    time-bounded stage stopped mid-epoch, as a rule) would keep the weights of the last every-N-steps save.
    Lightning's own end-of-training save would come after EMA weight averaging has copied the average into
    the model, and would overwrite last.ckpt with a file whose raw weights are lost; the epoch's end comes
    before that, with the raw weights in place.
    """

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        return None
