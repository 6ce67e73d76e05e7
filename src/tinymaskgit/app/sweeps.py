"""The Compare tab: read a ``make fid-sweep`` folder, or run a bounded sweep on the loaded model."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinymaskgit.app.session import Limits, Session, run_config
from tinymaskgit.errors import ConfigError, DataError
from tinymaskgit.sweep import COLUMNS


def newest_sweep(log_dir: Path) -> Path | None:
    """The newest folder under ``log_dir`` that holds a ``make fid-sweep`` table (fid_sweep.csv)."""
    found = sorted(log_dir.rglob("fid_sweep.csv"), key=lambda p: p.stat().st_mtime) if log_dir.is_dir() else []
    return found[-1].parent if found else None


def read_sweep(folder: str | Path) -> tuple[list[str], list[list[Any]], Path | None]:
    """A sweep folder's table (columns, rows sorted best first) and its plot, if written."""
    import csv

    d = Path(str(folder).strip()).expanduser()
    table = d / "fid_sweep.csv"
    if not table.is_file():
        raise DataError(f"{d} holds no fid_sweep.csv; give the folder of a `make fid-sweep` run (its sweep dir)")
    with table.open() as f:
        rows = list(csv.DictReader(f))
    columns = COLUMNS[: COLUMNS.index("wall_s") + 1]  # settings and scores, not provenance
    at = columns.index("cfg_weight") + 1
    columns[at:at] = ["temperature", "token_temperature", "top_k"]
    rows.sort(key=lambda r: float(r["value"]) if r.get("value") else float("inf"))
    plot = d / "fid_sweep.png"
    return columns, [[shown_value(c, r.get(c, "")) for c in columns] for r in rows], plot if plot.is_file() else None


def shown_value(column: str, text: str) -> str:
    """A sweep cell as a person reads it: 4 significant digits, class accuracy in percent."""
    try:
        x = float(text)
    except ValueError:
        return text
    if column in ("steps", "n_fake"):
        return str(int(x))
    return f"{x:.1%}" if column == "class_acc" else f"{x:.4g}"


def sweep_grid(
    schedules: list[str], steps: list[int], cfg_weights: list[float], limits: Limits
) -> list[dict[str, Any]]:
    """Every combination of the chosen settings, refused when it exceeds ``limits.sweep_max_runs``."""
    if not schedules or not steps or not cfg_weights:
        raise ConfigError("pick at least one schedule, one T and one CFG weight")
    grid = [
        {"schedule": s, "steps": int(t), "cfg_weight": float(w)}
        for s, t, w in itertools.product(schedules, steps, cfg_weights)
    ]
    if len(grid) > limits.sweep_max_runs:
        raise ConfigError(
            f"{len(grid)} combinations asked, this page runs at most {limits.sweep_max_runs} "
            "(limits.sweep_max_runs); use `make fid-sweep` for a larger grid"
        )
    return grid


def run_sweep(
    session: Session,
    grid: list[dict[str, Any]],
    n_per_class: int,
    classifier_ckpt: str | Path | None,
    sweep_dir: Path,
    root_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    backend: str = "inception",
) -> Path:
    """Evaluate each combination of ``grid`` as ``make fid-sweep`` does; writes fid_sweep.{csv,md,png}.

    ``backend``: 'inception' (the standard FID; the classifier, if given, adds class accuracy) or 'classifier'
    (quick, needs ``classifier_ckpt``). ``progress(done, total)`` is called before each combination and at the end.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf, open_dict

    from tinymaskgit.evaluate import evaluate
    from tinymaskgit.sweep import write_sweep

    if not 1 <= int(n_per_class) <= session.limits.sweep_max_per_class:
        raise ConfigError(f"samples per class must be between 1 and {session.limits.sweep_max_per_class}")
    if backend not in ("inception", "classifier"):
        raise ConfigError(f"feature backend {backend!r} is unknown; choose inception or classifier")
    if backend == "classifier" and not classifier_ckpt:
        raise ConfigError(
            "no reference classifier found: train one (`make demo` does), start the page with classifier_ckpt=..., "
            "or choose the inception backend"
        )
    run_cfg = run_config(session.ckpt)
    if run_cfg is None or "data" not in run_cfg:
        raise ConfigError(f"no config.yaml beside {session.ckpt.parent}: the sweep needs the model's dataset")
    conf_dir = str(Path(__file__).resolve().parents[1] / "conf")
    for i, combo in enumerate(grid):
        if progress:
            progress(i, len(grid))
        overrides = [f"{k}={v}" for k, v in combo.items()]  # schedule=<name> picks the schedule group
        overrides += [
            "protocol=generation",
            f"ckpt={session.ckpt}",
            f"eval.backend={backend}",
            f"eval.classifier_ckpt={classifier_ckpt or 'null'}",
            f"n_per_class={int(n_per_class)}",
            "per_class=false",
            f"device={next(session.model.net.parameters()).device}",
            f"paths.root_dir={root_dir}",  # the reference-feature cache of the other entry points
            f"paths.output_dir={sweep_dir / str(i)}",
            f"out_dir={sweep_dir / str(i)}",
            "overwrite=true",
        ]
        if GlobalHydra.instance().is_initialized():  # inside the page's @hydra.main: the same conf/ is searched
            cfg = compose(config_name="evaluate", overrides=overrides)
        else:
            with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
                cfg = compose(config_name="evaluate", overrides=overrides)
        with open_dict(cfg):
            cfg.data = OmegaConf.merge(run_cfg.data, {})
        evaluate(cfg)
    if progress:
        progress(len(grid), len(grid))
    write_sweep(sweep_dir)
    return sweep_dir
