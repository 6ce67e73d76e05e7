"""Stage 2 end to end on generated data with a tiny tokenizer."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_TF, TINY_VQ
from tinymaskgit.errors import CheckpointError, ConfigError
from tinymaskgit.inference import load_maskgit
from tinymaskgit.models.fsq import FiniteScalarQuantizer
from tinymaskgit.sampling.decode import DecodeSettings
from tinymaskgit.sampling.generate import generate
from tinymaskgit.train import train


def test_fast_dev_run(make_cfg, tokenizer_ckpt: Path) -> None:
    metrics = train(make_cfg("stage=maskgit", f"tokenizer_ckpt={tokenizer_ckpt}", "debug=fast", *TINY_TF))
    assert "val/loss" in metrics and "val/masked_acc" in metrics


def test_the_frozen_tokenizer_raises_no_eval_mode_warning(make_cfg, tokenizer_ckpt: Path) -> None:
    # Lightning warns of modules in eval mode at the start of training; the frozen tokenizer is, on purpose
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(make_cfg("stage=maskgit", f"tokenizer_ckpt={tokenizer_ckpt}", "debug=fast", *TINY_TF))
    assert not [w for w in caught if "in eval mode at the start of training" in str(w.message)]


def test_transformer_trains_and_samples_on_an_fsq_tokenizer(make_cfg, tmp_path: Path) -> None:
    fsq = ("model.vqvae.quantizer=fsq", "model.vqvae.fsq_levels=[3,3,3]", "model.vqvae.codebook_size=27")
    train(make_cfg("debug=fast", *TINY_VQ, *fsq, "paths.output_dir=" + str(tmp_path / "vq")))
    tokenizer = tmp_path / "vq" / "checkpoints" / "last.ckpt"
    train(make_cfg("stage=maskgit", f"tokenizer_ckpt={tokenizer}", "debug=fast", *TINY_TF))
    m = load_maskgit(str(tmp_path / "run" / "checkpoints" / "last.ckpt"))
    assert isinstance(m.tokenizer.quantizer, FiniteScalarQuantizer)
    assert m.net.codebook_size == 27 and m.net.mask_token_id == 27
    out = generate(m, torch.tensor([0, 3]), 2, DecodeSettings(steps=4))
    assert out.images.shape == (2, 3, 64, 64) and int(out.tokens.max()) < 27


def test_checkpoint_rebuilds_sampler(maskgit_ckpt: Path) -> None:
    m = load_maskgit(str(maskgit_ckpt))
    assert m.net.num_classes == 10 and len(m.class_names) == 10
    assert m.net.codebook_size == m.tokenizer.codebook_size == 32
    assert m.net.num_tokens == m.tokenizer.num_tokens == 64
    grids = sorted(p.name for p in (maskgit_ckpt.parents[1] / "images").iterdir())
    assert grids == ["samples_epoch000.png", "samples_epoch001.png"]


def test_token_cache_is_reused_and_keyed(make_cfg, tokenizer_ckpt: Path, tmp_path: Path) -> None:
    cfg = make_cfg("stage=maskgit", f"tokenizer_ckpt={tokenizer_ckpt}", "debug=fast", *TINY_TF)
    train(cfg)
    cache = Path(cfg.stage.cache_dir)
    files = sorted(cache.glob("*.pt"))
    assert len(files) == 2  # train (with its flips) and val
    stamps = [f.stat().st_mtime_ns for f in files]
    train(cfg)
    assert [f.stat().st_mtime_ns for f in sorted(cache.glob("*.pt"))] == stamps  # hit: not rewritten
    train(make_cfg("stage=maskgit", f"tokenizer_ckpt={tokenizer_ckpt}", "debug=fast", "data.hflip=false", *TINY_TF))
    assert len(list(cache.glob("*.pt"))) == 3  # other flip setting -> a new train cache, old ones kept


def test_missing_tokenizer_is_explained(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs tokenizer_ckpt="):
        train(make_cfg("stage=maskgit", "debug=fast"))
    with pytest.raises(CheckpointError, match="does not exist"):
        train(make_cfg("stage=maskgit", f"tokenizer_ckpt={tmp_path / 'none.ckpt'}", "debug=fast"))


def test_stage2_checkpoint_is_not_a_tokenizer(make_cfg, maskgit_ckpt: Path) -> None:
    with pytest.raises(CheckpointError, match="stage=maskgit checkpoint, but a stage=vqvae one is needed"):
        train(make_cfg("stage=maskgit", f"tokenizer_ckpt={maskgit_ckpt}", "debug=fast"))


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.transformer.codebook_size=1024", "codebook_size=1024 does not match .* codebook_size=32"),
        ("model.transformer.num_tokens=256", "num_tokens=256 does not match .* num_tokens=64"),
    ],
)
def test_mismatched_transformer_is_refused(make_cfg, tokenizer_ckpt: Path, override: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        train(make_cfg("stage=maskgit", f"tokenizer_ckpt={tokenizer_ckpt}", "debug=fast", override))


def test_a_patched_transformer_trains_reloads_and_samples(make_cfg, tokenizer_ckpt: Path, tmp_path: Path) -> None:
    train(
        make_cfg(
            "stage=maskgit", f"tokenizer_ckpt={tokenizer_ckpt}", "debug=fast", "model.transformer.patch=2", *TINY_TF
        )
    )
    m = load_maskgit(str(tmp_path / "run" / "checkpoints" / "last.ckpt"))
    assert m.net.config.patch == 2 and m.net.pos_emb.shape[1] == 1 + 64 // 4  # the 8x8 grid in 2x2 squares
    out = generate(m, torch.tensor([0, 3]), 2, DecodeSettings(steps=4))
    assert out.images.shape == (2, 3, 64, 64) and out.tokens.shape == (2, 64)


@pytest.mark.parametrize(
    "patch,error,message",
    [
        ("3", CheckpointError, r"patch=3 does not divide the 8x8 token grid of the tokenizer .*pick a patch"),
        ("0", ConfigError, r"model.transformer.patch must be a positive integer .*got 0"),
    ],
)
def test_a_patch_that_does_not_fit_the_tokenizer_is_refused(
    make_cfg, tokenizer_ckpt: Path, patch: str, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        train(
            make_cfg(
                "stage=maskgit", f"tokenizer_ckpt={tokenizer_ckpt}", "debug=fast", f"model.transformer.patch={patch}"
            )
        )


def test_bad_image_grid_settings_fail_before_training(make_cfg, tokenizer_ckpt: Path) -> None:
    from tinymaskgit.cli import user_error

    with pytest.raises(Exception) as info:  # Hydra's instantiate wraps it; the CLI prints the ConfigError's line
        train(
            make_cfg("stage=maskgit", f"tokenizer_ckpt={tokenizer_ckpt}", "debug=fast", "stage.module.sample.steps=x")
        )
    err = user_error(info.value)
    assert isinstance(err, ConfigError)
    assert str(err).startswith("stage.module.sample: sampler setting steps='x': Value 'x' of type 'str'")


def test_saved_ema_weights_are_the_warmed_up_average_of_the_raw_weights(
    make_cfg, tokenizer_ckpt: Path, tmp_path: Path
) -> None:
    from tests.fakes import WeightRecorder

    decay = 0.5  # the warm-up's (1 + n) / (10 + n) stays below it for these steps: 2/11, 3/12
    train(
        make_cfg(
            "stage=maskgit",
            f"tokenizer_ckpt={tokenizer_ckpt}",
            "debug=limit",
            "trainer.max_epochs=1",
            f"stage.ema_decay={decay}",
            "stage.module.sample.n_per_class=1",
            "+callbacks.recorder._target_=tests.fakes.WeightRecorder",
            *TINY_TF,
        )
    )
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(path, weights_only=False)
    history = WeightRecorder.history
    assert len(history) == 3
    expected = {k: v.clone() for k, v in history[0].items()}  # the first update copies, then decay
    for n, step in enumerate(history[1:], start=1):
        d = min(decay, (1 + n) / (10 + n))
        for k, v in step.items():
            expected[k] = d * expected[k] + (1 - d) * v if v.is_floating_point() else v
    saved = {k[4:]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    raw = {k[4:]: v for k, v in ckpt["current_model_state"].items() if k.startswith("net.")}
    name = "blocks.0.attn.q_proj.weight"
    assert torch.equal(raw[name], history[-1][name])  # the raw weights are kept beside the average
    assert not torch.allclose(saved[name], raw[name])
    for k, v in expected.items():
        assert torch.allclose(saved[k], v, atol=1e-6), k
    m = load_maskgit(str(path))  # sampling loads the average
    assert torch.equal(m.net.state_dict()[name], saved[name])


def test_ema_decay_warms_up_and_leaves_integer_buffers_alone() -> None:
    from tinymaskgit.callbacks.ema import _ema_update, warm_decay

    assert warm_decay(0.999, 0) == pytest.approx(0.1)  # the first average after the copy follows the weights
    assert warm_decay(0.999, 1000) == pytest.approx(1001 / 1010)
    assert warm_decay(0.999, 10**6) == 0.999
    avg, cur = [torch.zeros(3), torch.zeros(2)], [torch.ones(3), torch.full((2,), 2.0)]
    _ema_update(avg, cur, torch.tensor(10**6), decay=0.9)
    assert torch.allclose(avg[0], torch.full((3,), 0.1)) and torch.allclose(avg[1], torch.full((2,), 0.2))
    counter = [torch.tensor([5])]  # e.g. the tokenizer's steps_unused
    _ema_update(counter, [torch.tensor([7])], torch.tensor(3), decay=0.9)
    assert counter[0].dtype == torch.int64 and counter[0].item() == 7


def test_bad_ema_decay_is_refused_before_training(make_cfg, tokenizer_ckpt: Path) -> None:
    with pytest.raises(ConfigError, match=r"^stage.ema_decay must lie strictly between 0 and 1 .* got 1.5$"):
        train(make_cfg("stage=maskgit", f"tokenizer_ckpt={tokenizer_ckpt}", "debug=fast", "stage.ema_decay=1.5"))


def test_time_bounded_run_decays_the_rate_by_the_clock(make_cfg, tokenizer_ckpt: Path, tmp_path: Path) -> None:
    # max_epochs=-1 with max_time has no step horizon: the cosine follows the time spent instead
    metrics = train(
        make_cfg(
            "stage=maskgit",
            f"tokenizer_ckpt={tokenizer_ckpt}",
            "debug=limit",
            "trainer.max_epochs=-1",
            "trainer.max_time=00:00:00:06",
            "trainer.log_every_n_steps=1",
            "stage.module.warmup_steps=2",
            *TINY_TF,
        )
    )
    peak = 4e-4
    assert metrics["global_step"] > 3
    rows = list(csv.DictReader((tmp_path / "run" / "csv" / "metrics.csv").open()))
    lrs = [float(r["train/lr/decay"]) for r in rows if r.get("train/lr/decay")]  # Lightning's LearningRateMonitor
    assert len(lrs) == metrics["global_step"] and max(lrs) == pytest.approx(peak)
    assert lrs[-1] < 0.6 * peak  # most of the time was spent: well down the cosine
