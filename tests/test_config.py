"""Config composition of every group option, and one-line errors for invalid values."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.conftest import CONF_DIR, GEN, run_cli
from tinymaskgit.config import validate
from tinymaskgit.errors import ConfigError

TRAIN_DEFAULTS = OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / "train.yaml").defaults)
TRAIN_GROUPS = [next(iter(d)) for d in TRAIN_DEFAULTS if isinstance(d, dict)]
GROUPS = sorted(g for g in TRAIN_GROUPS if g not in ("hydra", "paths"))
assert len(GROUPS) == 9, GROUPS  # a failed read of train.yaml would silently test nothing


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONF_DIR) / group).glob("*.yaml"))


# set by the test fixtures themselves (small_overrides)
OVERRIDDEN = ("data.batch_size", "trainer.enable_progress_bar", "callbacks.progress_bar", *(f"data.{k}" for k in GEN))


def expected_values(group: str, option: str) -> dict[str, object]:
    """The plain values an option's file sets, by their dotted key in the composed config."""
    path = Path(CONF_DIR) / group / f"{option}.yaml"
    glob = "@package _global_" in path.read_text()
    node = OmegaConf.load(path)
    flat: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif not (isinstance(value, str) and "${" in value) and not isinstance(value, list):
            flat[prefix] = value

    raw = OmegaConf.to_container(node, resolve=False)
    assert isinstance(raw, dict)
    for item in raw.pop("defaults", []):  # `override /data: cat_faces` -> that option's _target_
        if isinstance(item, dict):
            for key, choice in item.items():
                other = key.split("/")[-1]
                target = OmegaConf.load(Path(CONF_DIR) / other / f"{choice}.yaml").get("_target_")
                if target:
                    flat[f"{other}._target_"] = target
    walk("" if glob else group, raw)
    return {k: v for k, v in flat.items() if not k.startswith(OVERRIDDEN) and not k.startswith("hydra")}


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes_with_its_values(make_cfg, group: str, option: str) -> None:
    cfg = make_cfg(f"{group}={option}")
    validate(cfg)
    expected = expected_values(group, option)
    if not expected:  # an option that switches a group off (callbacks=none, logger=none)
        assert not [k for k, v in (cfg.get(group) or {}).items() if v is not None]
    for key, value in expected.items():
        assert OmegaConf.select(cfg, key) == value, key


def test_defaults_compose_to_stage1_on_generated_data(make_cfg) -> None:
    cfg = make_cfg()
    assert cfg.stage.name == "vqvae"
    assert cfg.data._target_.endswith("GeneratedDataModule")
    assert cfg.model.vqvae.latent_size == 8


@pytest.mark.parametrize("option", options("data"))
def test_every_data_option_instantiates(make_cfg, option: str) -> None:
    dm = instantiate(make_cfg(f"data={option}").data)
    assert dm.batch_size == 8


@pytest.mark.parametrize(
    "override,key",
    [
        ("data.batch_size=-4", "data.batch_size"),
        ("data.batch_size=0", "data.batch_size"),
        ("model.vqvae.codebook_size=1", "model.vqvae.codebook_size"),
        ("model.vqvae.latent_size=7", "model.vqvae.latent_size"),
        ("model.vqvae.norm=batch", "model.vqvae.norm"),
        ("model.vqvae.quantizer=lfq", "model.vqvae.quantizer"),
        ("model.vqvae.quantizer=fsq", "model.vqvae.fsq_levels"),
        ("model.vqvae.quantizer=fsq model.vqvae.fsq_levels=[8,8,5]", "model.vqvae.codebook_size=320"),
        ("model.vqvae.latent_size=24", "model.vqvae.latent_size"),
        ("trainer.max_epochs=0", "trainer.max_epochs"),
        ("data.num_workers=-1", "data.num_workers"),
        ("stage.module.optimizer.lr=-0.1", "stage.module.optimizer.lr"),
        ("stage.module.min_lr_ratio=0", "stage.module.min_lr_ratio"),
        ("stage=maskgit stage.module.min_lr_ratio=1.5", "stage.module.min_lr_ratio"),
        ("stage.module.warmup_steps=-1", "stage.module.warmup_steps"),
        ("stage=maskgit stage.module.min_mask_ratio=1.0", "stage.module.min_mask_ratio"),
        ("stage=maskgit stage.module.min_mask_ratio=-0.1", "stage.module.min_mask_ratio"),
        ("stage.module.fm_weight=-1", "stage.module.fm_weight"),
        ("stage.module.disc_weight=-0.5", "stage.module.disc_weight"),
        ("stage=classifier stage.module.max_shift=-2", "stage.module.max_shift"),
        ("stage=classifier stage.module.max_shift=64", "stage.module.max_shift"),
    ],
)
def test_invalid_value_names_the_key(make_cfg, override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as info:
        validate(make_cfg(*override.split()))
    assert "\n" not in str(info.value)


def test_unknown_group_option_is_refused() -> None:
    with (
        initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"),
        pytest.raises(MissingConfigException),
    ):
        compose(config_name="train", overrides=["data=imagenet_full"])


@pytest.mark.slow
def test_cli_prints_one_line_error_for_bad_value(tmp_path: Path) -> None:
    res = run_cli(["tinymaskgit.train", "data.batch_size=-1", f"paths.root_dir={tmp_path}"], cwd=tmp_path)
    assert res.returncode == 2
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: data.batch_size must be a positive integer, got -1"]
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_cli_names_unknown_option(tmp_path: Path) -> None:
    res = run_cli(["tinymaskgit.train", "model=huge"], cwd=tmp_path)
    assert res.returncode != 0
    assert "Could not find 'model/huge'" in res.stderr
