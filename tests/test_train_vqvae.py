"""Stage 1 end to end: fast_dev_run, checkpoints and resume, the CLI, loggers and DDP."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from tests.conftest import GEN, TINY_VQ, run_cli
from tinymaskgit.errors import CheckpointError
from tinymaskgit.inference import load_tokenizer
from tinymaskgit.models.fsq import FiniteScalarQuantizer
from tinymaskgit.models.vqvae import VQVAE
from tinymaskgit.train import train


def test_fast_dev_run(make_cfg) -> None:
    metrics = train(make_cfg("debug=fast"))
    assert "val/rec_loss" in metrics and metrics["global_step"] == 1


def test_run_writes_checkpoints_images_and_logs(make_cfg, tmp_path: Path) -> None:
    metrics = train(make_cfg("debug=limit"))
    run = tmp_path / "run"
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "checkpoints" / "best.ckpt").is_file()
    assert sorted(p.name for p in (run / "images").iterdir()) == [
        "reconstructions_epoch000.png",
        "reconstructions_epoch001.png",
    ]
    assert (run / "csv" / "metrics.csv").is_file() and (run / "config.yaml").is_file()
    for key in ("val/psnr", "val/codebook_usage", "val/perplexity", "train/codebook_usage"):
        assert key in metrics
    assert 0 < metrics["val/codebook_usage"] <= 100


def test_tokenizer_rebuilds_from_checkpoint_alone(make_cfg, tmp_path: Path) -> None:
    train(make_cfg("debug=limit", "model.vqvae.codebook_size=64"))
    net = load_tokenizer(str(tmp_path / "run" / "checkpoints" / "last.ckpt"))
    assert net.codebook_size == 64 and not net.training
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert net.tokenize(x).shape == (2, 8, 8)


def test_fsq_tokenizer_trains_and_rebuilds_from_its_checkpoint(make_cfg, tmp_path: Path) -> None:
    fsq = ("model.vqvae.quantizer=fsq", "model.vqvae.fsq_levels=[4,4,4]", "model.vqvae.codebook_size=64")
    metrics = train(make_cfg("debug=limit", *fsq))
    assert 0 < metrics["val/codebook_usage"] <= 100 and metrics["val/vq_loss"] == 0
    net = load_tokenizer(str(tmp_path / "run" / "checkpoints" / "last.ckpt"))
    assert isinstance(net.quantizer, FiniteScalarQuantizer) and net.codebook_size == 64
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert int(net.tokenize(x).max()) < 64


@pytest.mark.parametrize("channels_last", [True, False])
def test_channels_last_trains_in_nhwc_and_its_checkpoint_loads_as_usual(
    make_cfg, tmp_path: Path, monkeypatch, channels_last: bool
) -> None:
    layouts: list[tuple[bool, bool]] = []  # (batch, first conv's weight) in channels_last, per forward pass
    encode = VQVAE.encode

    def spy(self: VQVAE, x: torch.Tensor):
        nhwc = torch.channels_last
        weight = self.encoder.conv_in.weight
        layouts.append((x.is_contiguous(memory_format=nhwc), weight.is_contiguous(memory_format=nhwc)))
        return encode(self, x)

    monkeypatch.setattr(VQVAE, "encode", spy)
    train(make_cfg("debug=fast", f"stage.module.channels_last={channels_last}", *TINY_VQ))
    assert layouts and set(layouts) == {(channels_last, channels_last)}
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    trained = {k[len("net.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    net = load_tokenizer(str(tmp_path / "run" / "checkpoints" / "last.ckpt"))  # a plain, contiguous network
    for name, p in net.state_dict().items():
        assert torch.equal(p, trained[name]), name


@pytest.mark.parametrize("floor", [1.0, 0.1])
def test_learning_rate_constant_by_default_and_annealed_by_the_clock(make_cfg, tmp_path: Path, floor: float) -> None:
    # a time-bounded run (max_epochs=-1) with min_lr_ratio < 1 follows the cosine by the time spent
    metrics = train(
        make_cfg(
            "debug=limit",
            "trainer.max_epochs=-1",
            "trainer.max_time=00:00:00:10",  # steps of up to ~4 s (a loaded 2-core machine) still end late in it
            "trainer.log_every_n_steps=1",
            f"stage.module.min_lr_ratio={floor}",
            *TINY_VQ,
        )
    )
    rows = list(csv.DictReader((tmp_path / "run" / "csv" / "metrics.csv").open()))
    key = next(k for k in rows[0] if "lr" in k and k.endswith("vqvae"))  # Lightning's LearningRateMonitor
    lrs = [float(r[key]) for r in rows if r.get(key)]
    # a step count that does not depend on the machine's load: two steps or more, the last in the budget's second half
    assert len(lrs) == metrics["global_step"] >= 2 and lrs[0] == pytest.approx(4e-4)
    if floor == 1.0:
        assert lrs == pytest.approx([4e-4] * len(lrs))
    else:
        assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.6 * 4e-4


def test_resume_from_last_continues_where_it_stopped(make_cfg, tmp_path: Path) -> None:
    first = tmp_path / "logs" / "vqvae" / "runs" / "first"
    train(make_cfg("debug=limit", "trainer.max_epochs=1", f"paths.output_dir={first}"))
    assert torch.load(first / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 3
    second = tmp_path / "logs" / "vqvae" / "runs" / "second"
    metrics = train(make_cfg("debug=limit", "ckpt_path=last", f"paths.output_dir={second}"))
    assert metrics["global_step"] == 6  # 3 steps of epoch 0 restored + 3 of epoch 1
    ckpt = torch.load(second / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["epoch"] == 1
    assert (first / "checkpoints" / "last.ckpt").is_file()  # the earlier run is untouched


def test_resume_last_without_earlier_run_says_so(make_cfg) -> None:
    with pytest.raises(CheckpointError, match="found no earlier run"):
        train(make_cfg("debug=limit", "ckpt_path=last"))


def test_resume_with_mismatched_model_names_the_difference(make_cfg, tmp_path: Path) -> None:
    first = tmp_path / "first"
    train(make_cfg("debug=limit", "trainer.max_epochs=1", f"paths.output_dir={first}"))
    ckpt = first / "checkpoints" / "last.ckpt"
    with pytest.raises(CheckpointError, match="codebook_size=512 but this run's model has codebook_size=128"):
        train(make_cfg("debug=limit", f"ckpt_path={ckpt}", "model.vqvae.codebook_size=128"))


def test_missing_or_corrupt_checkpoint(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        train(make_cfg("debug=limit", f"ckpt_path={tmp_path / 'nope.ckpt'}"))
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_tokenizer(str(bad))


@pytest.mark.parametrize("logger", ["tensorboard", "none"])
def test_other_loggers(make_cfg, logger: str) -> None:
    assert "val/psnr" in train(make_cfg("debug=limit", "trainer.max_epochs=1", f"logger={logger}"))


def test_wandb_runs_offline_without_account(make_cfg, tmp_path: Path, monkeypatch) -> None:
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    train(make_cfg("debug=limit", "trainer.max_epochs=1", "logger=wandb"))
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))


@pytest.mark.slow
def test_cli_from_another_directory(generated_root: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    res = run_cli(
        [
            "tinymaskgit.train",
            "stage=vqvae",
            "debug=limit",
            "trainer.max_epochs=1",
            f"data.root={generated_root}",
            *(f"data.{k}={v}" for k, v in GEN.items()),
        ],
        cwd=elsewhere,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    runs = list((elsewhere / "logs" / "vqvae" / "runs").iterdir())
    assert len(runs) == 1
    assert (runs[0] / "checkpoints" / "last.ckpt").is_file()
    assert (runs[0] / ".hydra" / "config.yaml").is_file()


def run_ddp(generated_root: Path, tmp_path: Path, *extra: str) -> tuple[str, dict]:
    """Stage 1 under DDP on two CPU processes (debug=limit); returns its stderr and its run's last checkpoint."""
    res = run_cli(
        [
            "tinymaskgit.train",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.precision=32-true",
            "debug=limit",
            f"data.root={generated_root}",
            *(f"data.{k}={v}" for k, v in GEN.items()),
            "data.batch_size=4",
            "model.vqvae.codebook_size=64",
            *extra,
        ],
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "vqvae" / "runs").iterdir()  # both processes wrote into one run dir
    return res.stderr, torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)


DISC = ["stage.module.disc_weight=0.1", "stage.module.disc_start=2", "stage.module.disc_channels=8"]


@pytest.mark.parametrize("adaptive", [False, True])
def test_discriminator_trains_after_its_start_step_and_steps_count_batches(
    make_cfg, tmp_path: Path, adaptive: bool
) -> None:
    metrics = train(
        make_cfg("debug=limit", *DISC, f"stage.module.disc_adaptive={adaptive}", "trainer.log_every_n_steps=1")
    )
    assert "train/d_loss" in metrics and "train/g_loss" in metrics
    assert metrics["global_step"] == 6  # 2 epochs x 3 batches: one step per batch, discriminator or not
    rows = list(csv.DictReader((tmp_path / "run" / "csv" / "metrics.csv").open()))
    weights = [float(r["train/disc_weight"]) for r in rows if r.get("train/disc_weight")]
    assert weights and all(w > 0 for w in weights)
    if not adaptive:
        assert all(w == pytest.approx(0.1) for w in weights)


def test_feature_matching_from_the_config_trains_a_discriminator_that_the_checkpoint_keeps(
    make_cfg, tmp_path: Path
) -> None:
    metrics = train(make_cfg("debug=limit", *DISC[1:], "stage.module.fm_weight=1.0", "trainer.log_every_n_steps=1"))
    assert "train/fm_loss" in metrics and "train/d_loss" in metrics
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["fm_weight"] == 1.0
    assert any(k.startswith("discriminator.") for k in ckpt["state_dict"])


@pytest.mark.slow
def test_discriminator_with_ddp_on_two_cpu_processes(generated_root: Path, tmp_path: Path) -> None:
    """Two processes, one run dir; before disc_start the discriminator gets no gradient, which plain DDP refuses."""
    stderr, ckpt = run_ddp(generated_root, tmp_path, *DISC)
    assert "world_size=2" in stderr or "distributed_backend=gloo" in stderr
    assert ckpt["global_step"] == 6
    assert any(k.startswith("discriminator.") for k in ckpt["state_dict"])
