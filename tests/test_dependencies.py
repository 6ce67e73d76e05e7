"""The dependency floors in pyproject.toml against the names the code imports from those libraries.

Each name below is listed with the first release that shipped it (from the libraries' changelogs; the
lightning and torchmetrics floors are also installed and run by `make check-floors` in CI). A new import
from one of these libraries must be added here with its version, and the floor raised if needed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRST_SHIPPED = {
    "lightning": {
        "lightning.pytorch.callbacks.WeightAveraging": "2.6.0",
        "lightning.pytorch.callbacks.Timer": "2.0.0",
        "lightning.pytorch.callbacks.LearningRateMonitor": "2.0.0",
        "lightning.pytorch.callbacks.ModelCheckpoint": "2.0.0",
        "lightning.pytorch.loggers.CSVLogger": "2.0.0",
        "lightning.pytorch.loggers.WandbLogger": "2.0.0",
        "lightning.pytorch.loggers.csv_logs.ExperimentWriter": "2.0.0",
        "lightning.fabric.loggers.logger.rank_zero_experiment": "2.0.0",
        "lightning.pytorch.utilities.rank_zero_info": "2.0.0",
        "lightning.pytorch.utilities.rank_zero_only": "2.0.0",
    },
    "torchmetrics": {
        "torchmetrics.image.fid.NoTrainInceptionV3": "1.3.0",  # feature_extractor_weights_path
        "torchmetrics.classification.MulticlassAccuracy": "0.11.0",
        "torchmetrics.functional.image.peak_signal_noise_ratio": "0.11.0",
    },
    "hydra-core": {
        "hydra.utils.instantiate": "1.0.0",
        "hydra.experimental.callback.Callback": "1.1.0",
        "hydra.compose": "1.1.0",  # 1.0 had it under hydra.experimental
        "hydra.initialize_config_dir": "1.1.0",
        "hydra.core.global_hydra.GlobalHydra": "1.0.0",
    },
    "omegaconf": {
        "omegaconf.DictConfig": "2.0.0",
        "omegaconf.OmegaConf": "2.0.0",
        "omegaconf.open_dict": "2.0.0",
        "omegaconf.errors.OmegaConfBaseException": "2.0.0",  # its full_key and OmegaConf.to_object: 2.1
    },
}
MODULE_OF = {"lightning": "lightning", "torchmetrics": "torchmetrics", "hydra": "hydra-core", "omegaconf": "omegaconf"}


def version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def floors() -> dict[str, str]:
    """name -> floor of every ``"name>=X"`` requirement line in pyproject.toml (no tomllib on Python 3.10)."""
    text = (ROOT / "pyproject.toml").read_text()
    return dict(re.findall(r'^\s*"([A-Za-z0-9_.\-]+)>=([0-9][^",]*)"', text, re.M))


def imported_names() -> set[tuple[str, str]]:
    """(package, dotted name) of every ``from <lib>... import <name>`` in src/."""
    found = set()
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                top = node.module.split(".")[0]
                if top in MODULE_OF:
                    found |= {(MODULE_OF[top], f"{node.module}.{a.name}") for a in node.names}
    return found


def test_every_imported_name_is_listed_with_its_first_release() -> None:
    unlisted = sorted(name for pkg, name in imported_names() if name not in FIRST_SHIPPED[pkg])
    assert not unlisted, f"add these to FIRST_SHIPPED with the release that first shipped them: {unlisted}"


@pytest.mark.parametrize("package", sorted(FIRST_SHIPPED))
def test_floor_is_at_least_what_the_code_needs(package: str) -> None:
    floor = floors()[package]
    used = {n: v for pkg, n in imported_names() if pkg == package for v in [FIRST_SHIPPED[pkg][n]]}
    too_new = {n: v for n, v in used.items() if version(v) > version(floor)}
    assert not too_new, f"pyproject allows {package}>={floor} but the code imports {too_new}"


def test_installed_versions_meet_the_floors() -> None:
    from importlib.metadata import version as installed

    for package, floor in floors().items():
        assert version(installed(package)) >= version(floor), package
