"""Training entry point: ``python -m tinymaskgit.train stage=vqvae|maskgit|classifier [overrides]``.

``train(cfg)`` is a plain function (the tests call it); ``main()`` wraps it with ``@hydra.main``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.utilities import rank_zero_info
from omegaconf import DictConfig, OmegaConf

from tinymaskgit.cli import friendly_errors
from tinymaskgit.config import validate
from tinymaskgit.errors import CheckpointError, ConfigError
from tinymaskgit.inference import KEY, read_checkpoint
from tinymaskgit.models.config import as_dict
from tinymaskgit.precision import AUTO, device_type, slow_bf16_warning, trainer_precision
from tinymaskgit.stages import STAGES

log = logging.getLogger(__name__)


def instantiate_dict(cfg: DictConfig | None) -> list[Any]:
    """Build every entry of a group of named objects (callbacks, loggers)."""
    if not cfg:
        return []
    return [instantiate(v) for v in cfg.values() if isinstance(v, DictConfig) and "_target_" in v]


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """``last`` -> the newest ``last.ckpt`` of an earlier run of this task; a path is checked to exist."""
    value = cfg.get("ckpt_path")
    if value in (None, ""):
        return None
    if value == "last":
        runs = Path(cfg.paths.log_dir) / cfg.task_name / "runs"
        here = Path(cfg.paths.output_dir).resolve()
        found = [p for p in runs.glob("*/checkpoints/last.ckpt") if p.parent.parent.resolve() != here]
        if not found:
            raise CheckpointError(
                f"ckpt_path=last found no earlier run with checkpoints/last.ckpt under {runs}; "
                "pass ckpt_path=/path/to/file.ckpt"
            )
        return str(max(found, key=lambda p: p.stat().st_mtime))
    return str(Path(value).expanduser())


def check_resume(path: str, module: L.LightningModule, stage: str) -> None:
    """Refuse a checkpoint of another stage or of a differently shaped network, naming what differs."""
    meta = read_checkpoint(path, expect_stage=stage)[KEY]
    mine = getattr(getattr(module, "net", None), "config", None)
    theirs = meta.get("net_config")
    if mine is not None and theirs is not None:
        diff = {k: (theirs.get(k), v) for k, v in as_dict(mine).items() if theirs.get(k) != v}
        if diff:
            k, (a, b) = next(iter(diff.items()))
            raise CheckpointError(
                f"checkpoint {path} has {k}={a} but this run's model has {k}={b}; "
                "resume with the model settings the checkpoint was trained with"
            )


def resolve_precision(value: str, accelerator: str) -> str:
    """Lightning's precision for ``trainer.precision`` (``auto``: bfloat16 where it is native, else float32),
    logging what ``auto`` chose and warning when an explicit bfloat16 would be emulated on this CPU."""
    chosen, device = trainer_precision(value, accelerator), device_type(accelerator)
    if str(value) == AUTO:
        log.info("trainer.precision=auto -> %s on this %s", chosen, device)
    warning = slow_bf16_warning("trainer.precision", chosen, device)
    if warning:
        log.warning(warning)
    return chosen


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train the stage ``cfg.stage.name``; returns the final metrics and the checkpoint paths."""
    validate(cfg)
    stage = cfg.stage.name
    if stage not in STAGES:
        raise ConfigError(f"stage.name={stage!r} is unknown; choose one of {sorted(STAGES)}")
    L.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision("high")

    datamodule, module, extra_callbacks = STAGES[stage](cfg)
    callbacks = instantiate_dict(cfg.get("callbacks")) + extra_callbacks
    loggers = instantiate_dict(cfg.get("logger"))
    if loggers:  # the monitor refuses a Trainer without a logger (logger=none)
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    extra: dict[str, Any] = {}
    if cfg.trainer.get("strategy") == "ddp" and getattr(module, "unused_parameters_early", False):
        extra["strategy"] = "ddp_find_unused_parameters_true"  # e.g. the discriminator before disc_start
    if cfg.trainer.get("sync_batchnorm") and cfg.trainer.get("accelerator") == "cpu":
        log.info("sync_batchnorm needs GPUs; on the CPU each process keeps its own batch-norm statistics")
        extra["sync_batchnorm"] = False
    extra["precision"] = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False, **extra)

    ckpt_path = resolve_ckpt_path(cfg)
    if ckpt_path is not None:
        check_resume(ckpt_path, module, stage)
        log.info("Resuming from %s", ckpt_path)
    if trainer.is_global_zero:
        out = Path(cfg.paths.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, out / "config.yaml", resolve=True)

    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)

    metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    ckpt_cb = trainer.checkpoint_callback
    if ckpt_cb is not None and getattr(ckpt_cb, "dirpath", None):
        metrics["best_ckpt"] = getattr(ckpt_cb, "best_model_path", "")
        metrics["last_ckpt"] = getattr(ckpt_cb, "last_model_path", "")
    metrics["global_step"] = trainer.global_step
    metrics["output_dir"] = str(cfg.paths.output_dir)
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@friendly_errors
def main(cfg: DictConfig) -> None:
    metrics = train(cfg)
    for key in sorted(k for k in metrics if "/" in k and not k.endswith(("_step", "_epoch"))):
        rank_zero_info(f"{key:<28} {metrics[key]:.4f}")
    rank_zero_info(f"outputs in {metrics['output_dir']}")


if __name__ == "__main__":
    main()
