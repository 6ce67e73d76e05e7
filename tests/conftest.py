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


def small_overrides(generated_root: Path, tmp_path: Path, generated: bool = True, vqvae: bool = True) -> list[str]:
    """Overrides that make any stage run on the small generated data in seconds (with ``vqvae``, the narrow
    VQ-VAE widths of TINY_VQ: the preset's convolutions at 64x64 cost seconds a step on 2 cores)."""
    data = [f"data.root={generated_root}", *(f"data.{k}={v}" for k, v in GEN.items())] if generated else []
    return [
        f"paths.root_dir={tmp_path}",
        f"paths.output_dir={tmp_path / 'run'}",
        *data,
        *(NARROW_VQ if vqvae else []),
        "data.batch_size=8",
        "trainer.enable_progress_bar=false",
        "++callbacks.progress_bar=null",
    ]


@pytest.fixture
def make_cfg(generated_root: Path, tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose conf/train.yaml with the small overrides plus the test's own."""

    def _make(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            probe = compose(config_name="train", overrides=[o for o in overrides if not o.startswith("data.")])
            generated = probe.data._target_.endswith("GeneratedDataModule")
            vqvae = "encoder_channels" in probe.model.vqvae
            base = small_overrides(generated_root, tmp_path, generated, vqvae)
            return compose(config_name="train", overrides=[*base, *overrides])

    return _make


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m <args>`` as a user would, without a terminal."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def python_output(code: str, timeout: float = 120) -> str:
    """The stripped stdout of ``python -c code`` in a fresh interpreter (which must exit with 0)."""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.strip()


def compose_small(generated_root: Path, run_root: Path, *overrides: str) -> DictConfig:
    """compose() for session fixtures, which cannot use the function-scoped ``make_cfg``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="train", overrides=[*small_overrides(generated_root, run_root), *overrides])


# A tokenizer small enough to train in seconds: 16x16 images would not exercise the real grid, so the
# images stay 64x64 and the nets stay narrow.
NARROW_VQ = ["model.vqvae.encoder_channels=[8,16,16,32]", "model.vqvae.decoder_channels=[8,16,16,32]"]
TINY_VQ = [
    *NARROW_VQ,
    "model.vqvae.codebook_size=32",
    "model.vqvae.code_dim=16",
]
TINY_TF = [
    "model.transformer.dim=32",
    "model.transformer.depth=2",
    "model.transformer.heads=4",
    "model.transformer.mlp_dim=64",
]


@pytest.fixture(scope="session")
def tokenizer_ckpt(generated_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stage-1 checkpoint trained for a few steps on the generated data."""
    from tinymaskgit.train import train

    root = tmp_path_factory.mktemp("vq")
    train(compose_small(generated_root, root, "debug=limit", *TINY_VQ))
    return root / "run" / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def maskgit_ckpt(generated_root: Path, tokenizer_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stage-2 checkpoint trained for a few steps on the tokens of ``tokenizer_ckpt``."""
    from tinymaskgit.train import train

    root = tmp_path_factory.mktemp("mg")
    train(
        compose_small(
            generated_root,
            root,
            "stage=maskgit",
            f"tokenizer_ckpt={tokenizer_ckpt}",
            "debug=limit",
            "stage.module.sample.n_per_class=2",
            *TINY_TF,
        )
    )
    return root / "run" / "checkpoints" / "last.ckpt"
