"""fid_sweep.md tells apart rows that differ in any sampler setting, not only in the plotted axes."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

from tinymaskgit.sampling.decode import DecodeSettings
from tinymaskgit.sweep import write_table


def row(value: float, **settings: object) -> dict:
    sampler = {**asdict(DecodeSettings()), **settings}
    sampler["compute_precision"] = sampler.pop("precision")  # as evaluate writes it: 'precision' is the metric
    metric = {
        "metric": "fid",
        "kid_metric": "kid",
        "value": value,
        "kid": 0.1,
        "kid_std": 0.01,
        "precision": 0.4,
        "recall": 0.2,
    }
    info = {"n_fake": 30, "n_real": 50, "reference": "train", "wall_s": 1.0, "backend": "inception"}
    return {
        **sampler,
        **metric,
        **info,
        "coverage": 0.3,
        "backend_weights": "abc",
        "ckpt_hash": "def",
        "seed": 0,
        "job": "0",
    }


def test_rows_name_the_settings_that_differ_from_the_defaults(tmp_path: Path) -> None:
    rows = [row(200.0), row(150.0, step_counts="valeoai", order="halton", cfg_schedule="linear0", cfg_weight=5.0)]
    write_table(rows, tmp_path)
    lines = [x for x in (tmp_path / "fid_sweep.md").read_text().splitlines() if x.startswith("| ")]
    assert "other settings" in lines[0] and "coverage" in lines[0]
    best, plain = lines[1], lines[2]  # sorted by the metric, best first
    assert "step_counts=valeoai, cfg_schedule=linear0, order=halton" in best and "| 150 |" in best
    assert "| - | 200 |" in plain  # nothing differs from the defaults
    got = list(csv.DictReader((tmp_path / "fid_sweep.csv").open()))
    assert [(r["step_counts"], r["order"], r["confidence"]) for r in got] == [
        ("paper", "confidence", "guided"),
        ("valeoai", "halton", "guided"),
    ]
