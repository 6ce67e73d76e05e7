"""Helpers shared by the benchmark scripts: timing, presets, and the table + JSON report."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from tinymaskgit.precision import bf16_native, cpu_name

CONF = Path(__file__).resolve().parents[1] / "src" / "tinymaskgit" / "conf"


def model_config(name: str) -> DictConfig:
    """``model=<name>`` as the training config composes it (a preset may extend another by its defaults list)."""
    if not (CONF / "model" / f"{name}.yaml").is_file():
        names = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
        raise SystemExit(f"no model preset {name!r} in {CONF / 'model'}; choose one of {', '.join(names)}")
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=[f"model={name}"]).model


def preset(name: str, part: str, **extra: Any) -> Any:
    """Build ``model.<part>`` of preset ``name`` from the real config files."""
    node = model_config(name)[part]
    for k, v in extra.items():
        node[k] = v
    return instantiate(node)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_per_call(fn: Callable[[], Any], device: torch.device, warmup: int, iters: int) -> float:
    """Median seconds of ``fn`` over ``iters`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def environment(device: torch.device) -> dict[str, Any]:
    env = {
        "torch": torch.__version__,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "cpu": cpu_name(),
        "bf16_native": bf16_native(device.type),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def report(name: str, rows: list[dict[str, Any]], device: torch.device, out_dir: str) -> Path:
    """Print ``rows`` as a table and write them with the environment to ``out_dir/<name>.json``."""
    out = Path(out_dir) / f"{name}.json"  # written first: a table that cannot print loses no measurement
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"environment": environment(device), "rows": rows}, indent=2))
    cols = list(dict.fromkeys(c for r in rows for c in r))  # every column any row has, in first-seen order
    widths = [max(len(c), *(len(_fmt(r.get(c, "-"))) for r in rows)) for c in cols]
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(_fmt(r.get(c, "-")).ljust(w) for c, w in zip(cols, widths)))
    print(f"\nwrote {out}")
    return out


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)
