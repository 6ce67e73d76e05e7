"""Logger factories that need more than a `_target_`."""

from __future__ import annotations

import csv
import os
from typing import Any, cast

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


def wandb_logger(save_dir: str, project: str = "tinymaskgit", name: str | None = None, **kwargs: Any) -> WandbLogger:
    """A WandbLogger that never prompts: offline unless the user set WANDB_MODE or WANDB_API_KEY."""
    if "WANDB_MODE" not in os.environ and "WANDB_API_KEY" not in os.environ:
        kwargs.setdefault("offline", True)
    os.environ.setdefault("WANDB_SILENT", "true")
    os.makedirs(save_dir, exist_ok=True)
    return WandbLogger(save_dir=save_dir, project=project, name=name, **kwargs)


class _ContinuingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing metrics.csv is continued instead of deleted."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = sorted(next(csv.reader(f), []))


class ResumableCSVLogger(CSVLogger):
    """A CSVLogger whose run, resumed in the same folder (``ckpt_path=<that run>/checkpoints/last.ckpt``), appends
    to its metrics.csv: the rows of the interrupted run are kept (those logged after its last checkpoint appear
    twice, once per run)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        return cast(ExperimentWriter, self._experiment)
