"""Every experiment preset composes and trains two steps of both stages on the CPU, at its real model shapes
(the lab preset's too): the cheapest guard for the GPU presets on a machine without a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from tests.conftest import CONF_DIR, GEN
from tinymaskgit.data.generated import CLASSES
from tinymaskgit.precision import trainer_precision
from tinymaskgit.train import train

EXPERIMENTS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))


def data_overrides(experiment: str, generated_root: Path) -> list[str]:
    """Point each preset's dataset at the generated data, which has both layouts."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        target = compose(config_name="train", overrides=[f"experiment={experiment}"]).data._target_
    if target.endswith("GeneratedDataModule"):
        return [f"data.root={generated_root}", *(f"data.{k}={v}" for k, v in GEN.items())]
    if target.endswith("TinyImageNetDataModule"):
        return [f"data.root={generated_root / 'tiny-imagenet'}", f"data.classes=[{','.join(w for w, *_ in CLASSES)}]"]
    return [f"data.root={generated_root / 'inpaint'}"]  # cat-faces layout


def test_every_experiment_is_covered() -> None:
    assert {"demo", "tiny_imagenet10", "cat_faces_lab"} <= set(EXPERIMENTS)


CASES = [(e, t) for e in EXPERIMENTS for t in ("cpu", "gpu") if not (e == "cat_faces_lab" and t == "cpu")]


@pytest.mark.slow
@pytest.mark.parametrize("experiment,trainer", CASES)
def test_experiment_trains_two_steps_of_each_stage(
    generated_root: Path, tmp_path: Path, experiment: str, trainer: str
) -> None:
    common = [
        f"experiment={experiment}",
        f"trainer={trainer}",
        "trainer.accelerator=cpu",  # the gpu trainer on the CPU
        # bf16-mixed where this CPU computes bfloat16 natively; one that emulates it takes minutes a step at the
        # lab shapes (test_precision trains both stages in bf16-mixed on every CPU, at small shapes)
        *(["trainer.precision=auto"] if trainer == "gpu" else []),
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "data.batch_size=2",
        "~callbacks.images",
        "~callbacks.progress_bar",
        "~callbacks.last_every_n_steps",
        "+callbacks.model_checkpoint.save_weights_only=true",
        "logger=none",
        f"paths.root_dir={tmp_path}",
        *data_overrides(experiment, generated_root),
    ]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg1 = compose(config_name="train", overrides=[*common, f"paths.output_dir={tmp_path / 'vq'}"])
    m1 = train(cfg1)
    assert m1["global_step"] == 2
    tok = tmp_path / "vq" / "checkpoints" / "last.ckpt"
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg2 = compose(
            config_name="train",
            overrides=[*common, "stage=maskgit", f"tokenizer_ckpt={tok}", f"paths.output_dir={tmp_path / 'mg'}"],
        )
    m2 = train(cfg2)
    assert m2["global_step"] == 2 and torch.isfinite(torch.tensor(m2["val/loss"]))
    meta = torch.load(tmp_path / "mg" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    net = meta["tinymaskgit"]["net_config"]
    assert net["dim"] == cfg2.model.transformer.dim and net["depth"] == cfg2.model.transformer.depth
    assert net["num_tokens"] == cfg1.model.vqvae.latent_size**2


@pytest.mark.parametrize("experiment", [e for e in EXPERIMENTS if e.startswith("recipe_")])
def test_recipe_stages_get_their_share_of_the_hour_and_anneal_in_it(experiment: str, tmp_path: Path) -> None:
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import Timer

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        base = compose(config_name="train", overrides=[f"experiment={experiment}"])
        total = 0.0
        for stage, minutes in base.recipe.minutes.items():
            cfg = compose(
                config_name="train",
                overrides=[f"experiment={experiment}", f"stage={stage}", f"paths.output_dir={tmp_path}"],
            )
            trainer = instantiate(cfg.trainer, precision=trainer_precision(cfg.trainer.precision, "cpu"))
            (timer,) = [c for c in trainer.callbacks if isinstance(c, Timer)]
            assert timer._duration == int(minutes) * 60 and cfg.trainer.precision == "auto"
            assert cfg.stage.module.min_lr_ratio < 1  # a time-bounded stage anneals its rate by the clock
            total += int(minutes)
    assert total <= 55  # the rest of the hour is sampling and evaluation


@pytest.mark.parametrize(
    ("experiment", "want"), [("recipe_tiny_imagenet", True), ("recipe_cat_faces", False), ("demo", False)]
)
def test_stage2_loss_covers_all_tokens_only_where_the_experiment_asks(experiment: str, want: bool) -> None:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"experiment={experiment}", "stage=maskgit"])
        assert cfg.stage.module.loss_on_all is want
        assert "loss_on_all" not in compose(config_name="train", overrides=[f"experiment={experiment}"]).stage.module


@pytest.mark.parametrize("experiment", ["recipe_tiny_imagenet", "recipe_cat_faces", "demo"])
def test_the_tiny_imagenet_recipe_and_the_demo_narrow_the_transformer(experiment: str) -> None:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        tf = compose(config_name="train", overrides=[f"experiment={experiment}", "stage=maskgit"]).model.transformer
        preset = compose(config_name="train", overrides=["stage=maskgit"]).model.transformer
    narrow = (tf.dim, tf.heads, tf.mlp_dim) == (192, 6, 768)
    assert narrow is (experiment != "recipe_cat_faces")
    assert tf.dim % tf.heads == 0 and tf.depth == preset.depth


def test_a_model_preset_on_the_command_line_replaces_the_recipes_narrow_transformer() -> None:
    """The width comes with the recipe's model preset, so `model=base` (the GPU advice) gets base's whole net."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        got = compose(config_name="train", overrides=["experiment=recipe_tiny_imagenet", "model=base"]).model
        base = compose(config_name="train", overrides=["model=base"]).model
    for key in ("dim", "depth", "heads", "mlp_dim", "attn_impl", "patch"):
        assert got.transformer[key] == base.transformer[key], key
    assert got.vqvae.latent_size == base.vqvae.latent_size


def test_the_recipes_and_the_demo_train_the_8x8_grid_without_patches() -> None:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        grids = {
            e: compose(config_name="train", overrides=[f"experiment={e}", "stage=maskgit"]).model
            for e in ("recipe_tiny_imagenet", "recipe_cat_faces", "demo")
        }
    got = {e: (m.vqvae.latent_size, m.transformer.patch) for e, m in grids.items()}
    assert got == {"recipe_tiny_imagenet": (8, 1), "recipe_cat_faces": (8, 1), "demo": (8, 1)}
    # tiny16 is still there for sharper tokens: its grid and patches come with it
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        m = compose(config_name="train", overrides=["experiment=recipe_tiny_imagenet", "model=tiny16"]).model
    assert (m.vqvae.latent_size, m.transformer.patch, m.transformer.dim) == (16, 2, 192)


def test_the_demo_trains_a_narrow_tokenizer() -> None:
    """The demo's VQ-VAE at half the tiny preset's widths (its 64x64 convolutions are most of the demo's time)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        demo = compose(config_name="train", overrides=["experiment=demo"]).model.vqvae
        tiny = compose(config_name="train", overrides=["model=tiny"]).model.vqvae
    assert list(demo.encoder_channels) == [c // 2 for c in tiny.encoder_channels] == list(demo.decoder_channels)
    assert (demo.latent_size, demo.codebook_size) == (tiny.latent_size, tiny.codebook_size)


def test_the_demo_caps_each_stage_by_minutes_beside_the_makefiles_epochs() -> None:
    """On a slow machine the minutes stop a stage before its epochs, keeping `make demo` near 15 minutes."""
    caps = {}
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for stage in ("vqvae", "maskgit", "classifier"):
            caps[stage] = compose(config_name="train", overrides=["experiment=demo", f"stage={stage}"]).trainer.max_time
    assert caps == {"vqvae": "00:00:03:00", "maskgit": "00:00:05:00", "classifier": "00:00:01:00"}
    makefile = (Path(CONF_DIR).parents[2] / "Makefile").read_text()
    assert "stage=vqvae trainer.max_epochs=$(DEMO_VQ_EPOCHS)" in makefile  # the epochs still bound a fast machine
    assert "stage=maskgit trainer.max_epochs=$(DEMO_MG_EPOCHS)" in makefile
