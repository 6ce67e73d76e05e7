"""Collect a `make fid-sweep` multirun into fid_sweep.csv, fid_sweep.md and fid_sweep.png in the sweep dir.

A Hydra callback: after the last job, it reads every job's results.json (the overall row of each) and
writes one row per job with its sampler settings and provenance, then plots the metric against T with a
line per schedule (dashed: with a sweet spot) and a panel per CFG weight.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from tinymaskgit.sampling.decode import DecodeSettings

log = logging.getLogger(__name__)
# sampler settings not listed in fid_sweep.md's "other settings" column: those with a column of their own, precision
# (a metric has that name) and reencode (inpainting only); any other that differs from DecodeSettings' default is
# listed there, so that rows of a sweep over e.g. cfg_schedule or order differ
OWN_COLUMN = {"schedule", "steps", "sweet_spot", "cfg_weight", "temperature", "precision", "reencode"}

COLUMNS = [
    "schedule",
    "steps",
    "sweet_spot",
    "cfg_weight",
    "metric",
    "value",
    "kid_metric",
    "kid",
    "kid_std",
    "precision",
    "recall",
    "density",
    "coverage",
    "class_acc",
    "fd_classifier",
    "n_fake",
    "n_real",
    "reference",
    "seed",
    "wall_s",
    "backend",
    "backend_weights",
    "classifier_val_acc",
    "ckpt_hash",
    "ckpt",
    "cfg_schedule",
    "step_counts",
    "order",
    "confidence",
    "temperature",
    "token_temperature",
    "top_k",
    "job",
]


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """The overall row of every job under ``sweep_dir`` (jobs that wrote no results are skipped)."""
    rows = []
    for path in sorted(
        sweep_dir.glob("*/results.json"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0
    ):
        for r in json.loads(path.read_text()):
            if r.get("class_name", "all") == "all":
                rows.append({**r, "job": path.parent.name})
    return rows


def write_table(rows: list[dict[str, Any]], sweep_dir: Path) -> None:
    """fid_sweep.csv (every column) and fid_sweep.md (sorted by the metric, best first)."""
    with (sweep_dir / "fid_sweep.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    metric, kid_metric = (rows[0]["metric"], rows[0]["kid_metric"]) if rows else ("fd", "kid")
    lines = [
        f"| schedule | T | sweet spot | w | temperature | other settings | {metric} | {kid_metric} | precision "
        "| recall | coverage | class acc | N | seed | s |",
        "|---" * 15 + "|",
    ]

    def fmt(v: Any, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    defaults = asdict(DecodeSettings())
    for r in sorted(rows, key=lambda r: r["value"]):
        other = ", ".join(f"{k}={r[k]}" for k, v in defaults.items() if k not in OWN_COLUMN and k in r and r[k] != v)
        lines.append(
            f"| {r['schedule']} | {r['steps']} | {r['sweet_spot'] if r['sweet_spot'] is not None else '-'} "
            f"| {r['cfg_weight']} | {r.get('temperature', '-')} | {other or '-'} | {r['value']:.3g} | {r['kid']:.3g} "
            f"| {fmt(r.get('precision'), '.3f')} | {fmt(r.get('recall'), '.3f')} | {fmt(r.get('coverage'), '.3f')} "
            f"| {fmt(r.get('class_acc'), '.1%')} | {r['n_fake']} | {r['seed']} | {r['wall_s']} |"
        )
    if rows:
        r0 = rows[0]
        lines += [
            "",
            f"Backend {r0['backend']} (weights {r0['backend_weights']}), checkpoint {r0['ckpt_hash']}, "
            f"reference {r0['reference']} ({r0['n_real']} images).",
        ]
        if r0.get("classifier_val_acc") is not None:
            lines[-1] += f" Classifier held-out accuracy {r0['classifier_val_acc']:.1%}."
    (sweep_dir / "fid_sweep.md").write_text("\n".join(lines) + "\n")


def plot(rows: list[dict[str, Any]], sweep_dir: Path) -> None:
    """fid_sweep.png: metric vs T, a line per schedule (dashed: sweet spot), a panel per CFG weight."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    weights = sorted({r["cfg_weight"] for r in rows})
    fig, axes = plt.subplots(1, len(weights), figsize=(4.5 * len(weights), 3.6), squeeze=False, sharey=True)
    for ax, w in zip(axes[0], weights):
        for i, sched in enumerate(sorted({r["schedule"] for r in rows})):
            color = f"C{i}"  # one colour per schedule; the sweet spot changes only the line style
            for spot in sorted({r["sweet_spot"] for r in rows}, key=lambda s: -1 if s is None else s):
                pts = sorted(
                    (r["steps"], r["value"])
                    for r in rows
                    if r["cfg_weight"] == w and r["schedule"] == sched and r["sweet_spot"] == spot
                )
                if pts:
                    label = sched if spot is None else f"{sched}, t={spot}"
                    ax.plot(*zip(*pts), marker="o", color=color, linestyle="-" if spot is None else "--", label=label)
        ax.set_title(f"CFG weight w = {w}")
        ax.set_xlabel("decoding steps T")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{rows[0]['metric']} ({rows[0]['backend']} features)")
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    fig.savefig(sweep_dir / "fid_sweep.png", dpi=120)
    plt.close(fig)


def write_sweep(sweep_dir: Path) -> list[dict[str, Any]]:
    """Collect the jobs under ``sweep_dir`` and write the table and the plot; returns the rows."""
    rows = collect(sweep_dir)
    if not rows:
        log.warning("no job of the sweep in %s wrote results", sweep_dir)
        return rows
    write_table(rows, sweep_dir)
    plot(rows, sweep_dir)
    log.info("sweep results: %s", sweep_dir / "fid_sweep.md")
    return rows


class CollectSweep(Callback):
    """Hydra callback: writes the sweep's table and plot once every job has run."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_sweep(Path(config.hydra.sweep.dir))
