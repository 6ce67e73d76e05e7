"""Shared fixtures: small generated data and the real Hydra config, shrunk to run in seconds on a CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tinymaskgit.data.generated import generate

CONF_DIR = str(Path(__file__).resolve().parents[1] / "src" / "tinymaskgit" / "conf")
GEN = dict(seed=0, train_per_class=6, val_per_class=2, inpaint=6)


@pytest.fixture(scope="session")
def generated_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated dataset shared by the whole session (read-only for tests)."""
    root = tmp_path_factory.mktemp("data") / "generated"
    generate(root, **GEN)
    return root


def small_overrides(generated_root: Path, tmp_path: Path) -> list[str]:
    """Overrides that make any stage run on the small generated data in seconds."""
    return [
        f"paths.root_dir={tmp_path}",
        f"paths.output_dir={tmp_path / 'run'}",
        f"data.root={generated_root}",
        *(f"data.{k}={v}" for k, v in GEN.items()),
        "data.batch_size=8",
        "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
    ]


@pytest.fixture
def make_cfg(generated_root: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose conf/train.yaml with the small overrides plus the test's own."""

    def _make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose(config_name="train", overrides=[*small_overrides(generated_root, tmp_path), *overrides])

    return _make


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m <args>`` as a user would, without a terminal."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
