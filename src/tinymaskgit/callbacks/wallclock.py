"""Wall-clock minutes of training, logged with every validation so that quality can be plotted against time."""

from __future__ import annotations

import time
from typing import Any

import lightning as L


class WallClock(L.Callback):
    """Logs ``time/minutes``: minutes spent in ``fit`` so far, validation included; a resumed run continues
    the count from its checkpoint, so a killed and resumed stage reports the time it really took."""

    def __init__(self) -> None:
        self.before = 0.0  # minutes of earlier runs, restored from the checkpoint
        self._start: float | None = None

    def minutes(self) -> float:
        return self.before + (time.monotonic() - self._start) / 60 if self._start is not None else self.before

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            pl_module.log("time/minutes", self.minutes(), on_step=False, on_epoch=True)

    def state_dict(self) -> dict[str, Any]:
        return {"minutes": self.minutes()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.before = float(state_dict.get("minutes", 0.0))
