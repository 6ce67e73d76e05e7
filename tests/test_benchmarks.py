"""Smoke runs of the benchmark scripts at toy sizes, so that they keep working (their numbers are not tested)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tinymaskgit.models.transformer import MaskGITTransformer
from tinymaskgit.precision import cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_sampling  # noqa: E402
import common  # noqa: E402


def test_sampling_benchmark_rows_and_report(tmp_path: Path) -> None:
    rows = bench_sampling.bench("tiny", torch.device("cpu"), steps=2, n=4, n_ref=1, precisions=["32"])
    assert [r["precision"] for r in rows] == ["32"]
    row = rows[0]
    for key in ("ours_img_per_s", "reference_img_per_s", "forwards_only_img_per_s"):
        assert row[key] > 0
    assert row["speedup"] == pytest.approx(row["ours_img_per_s"] / row["reference_img_per_s"])
    out = common.report("sampling", rows, torch.device("cpu"), str(tmp_path))
    saved = json.loads(out.read_text())
    assert saved["rows"][0]["preset"] == "tiny" and saved["environment"]["device"] == "cpu"
    assert saved["environment"]["cpu"] == cpu_name() and isinstance(saved["environment"]["bf16_native"], bool)


def test_reference_loop_returns_one_image() -> None:
    torch.manual_seed(0)
    tok = common.preset("tiny", "vqvae").eval()
    net = common.preset(
        "tiny", "transformer", codebook_size=tok.codebook_size, num_tokens=tok.num_tokens, num_classes=3
    ).eval()
    m = bench_sampling.MaskGIT(net, tok, ["a", "b", "c"], {})
    image = bench_sampling.reference_sample_one(m, 1, steps=3, w=1.0, temperature=4.5)
    assert image.shape == (1, 3, 64, 64)


def test_training_benchmark_rows_and_curves(tmp_path: Path) -> None:
    import argparse

    import bench_train

    args = argparse.Namespace(device="cpu", steps=1, rounds=1, curve_steps=2)
    images = torch.rand(8, 3, 64, 64) * 2 - 1
    levers = {k: bench_train.VQ_LEVERS[k] for k in ("float32", "channels_last")}  # no bf16: emulated on AVX2
    levers["recipe"] = bench_train.recipe_lever("vqvae")[1]
    rows = bench_train.speed_rows("vqvae", "tiny", levers, images, 4, args)
    assert [r["lever"] for r in rows] == list(levers) and rows[0]["speedup"] == 1.0
    assert all(r["img_per_s"] > 0 for r in rows)
    tokens = torch.randint(0, 512, (8, 64))
    name, lever = bench_train.recipe_lever("maskgit")
    tf = {"float32": {}, name: lever}
    curves = bench_train.loss_curves("maskgit", "tiny", tf, tokens, 4, args)
    assert set(curves) == {"float32", name} and all(len(c) == 2 for c in curves.values())
    bench_train.plot({("tiny", "maskgit"): curves}, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000


@pytest.mark.parametrize("experiment", ["recipe_tiny_imagenet", "recipe_cat_faces"])
@pytest.mark.parametrize("stage", ["vqvae", "maskgit"])
@pytest.mark.parametrize("native_bf16", [True, False])
def test_recipe_lever_is_what_the_recipe_trains_with(experiment: str, stage: str, native_bf16: bool, monkeypatch):
    import bench_train
    from hydra import compose, initialize_config_dir

    from tests.conftest import CONF_DIR
    from tinymaskgit import precision

    monkeypatch.setattr(precision, "cpu_bf16_native", lambda: native_bf16)
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", f"stage={stage}"])
    name, lever = bench_train.recipe_lever(stage, experiment)
    assert cfg.trainer.precision == "auto" and lever["bf16"] is native_bf16  # as train.py resolves it here
    if stage == "vqvae":
        assert lever.get("channels_last", False) == cfg.stage.module.channels_last
        assert ("channels_last" in name) == cfg.stage.module.channels_last
    if stage == "maskgit":
        assert lever["sdpa"] == (cfg.model.transformer.attn_impl == "sdpa")
        assert lever["dropout"] == cfg.model.transformer.dropout
        assert lever["patch"] == cfg.model.transformer.patch and (f"patch {lever['patch']}" in name) == (
            lever["patch"] > 1
        )
    assert name.startswith("recipe (bf16" if lever["bf16"] else "recipe (float32")


def test_training_benchmark_script_end_to_end(tmp_path: Path, monkeypatch) -> None:
    import bench_train

    argv = ["bench_train.py", "--images", "20", "--steps", "1", "--rounds", "1", "--curve-steps", "2", "--batch", "4"]
    # float32 and the recipe's lever only: the bf16 levers are emulated (minutes) on a CPU without AVX512-BF16
    monkeypatch.setattr(sys, "argv", [*argv, "--levers", "float32", "--out", str(tmp_path)])
    bench_train.main()
    rows = json.loads((tmp_path / "train_speed.json").read_text())["rows"]
    assert {r["stage"] for r in rows} == {"vqvae", "maskgit"}
    assert not any("compile" in r["lever"] for r in rows)  # opt-in: its warm-up compiles for minutes
    assert sum("loss_at_end" in r for r in rows) == 4  # float32 and the recipe's levers of both stages
    assert (tmp_path / "train_loss_curves.png").is_file()


def test_lever_choice_keeps_float32_and_compiles_only_when_asked() -> None:
    import bench_train

    every = bench_train.VQ_LEVERS
    default = bench_train.chosen(every, None, compile_too=False)
    assert "bf16" in default and not any(v.get("compile") for v in default.values())
    assert "bf16+channels_last+compiled blocks" in bench_train.chosen(every, None, compile_too=True)
    assert list(bench_train.chosen(every, ["bf16", "compile"], compile_too=False)) == ["float32", "bf16", "compile"]


def test_unknown_lever_is_refused_with_the_list(monkeypatch, capsys) -> None:
    import bench_train

    monkeypatch.setattr(sys, "argv", ["bench_train.py", "--levers", "bf17"])
    with pytest.raises(SystemExit):
        bench_train.main()
    err = capsys.readouterr().err
    assert "unknown lever(s) ['bf17']" in err and "'bf16'" in err


def test_compiled_blocks_lever_compiles_every_block_and_nothing_else(monkeypatch) -> None:
    import bench_train

    from tinymaskgit.models.blocks import AttnBlock, ResBlock

    compiled: list[torch.nn.Module] = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, **kw: compiled.append(self))
    net = common.preset("tiny", "vqvae")
    blocks = [m for m in net.modules() if isinstance(m, (ResBlock, AttnBlock))]
    assert bench_train.compile_blocks(net) == len(blocks) > 4
    assert compiled == blocks


def test_a_preset_that_extends_another_builds_with_its_own_and_inherited_keys() -> None:
    tok = common.preset("tiny_narrow", "vqvae")
    net = common.preset(
        "tiny_narrow", "transformer", codebook_size=tok.codebook_size, num_tokens=tok.num_tokens, num_classes=10
    )
    tiny = common.model_config("tiny")
    assert tok.num_tokens == tiny.vqvae.latent_size**2 and net.config.dim == 192 != tiny.transformer.dim


def test_unknown_preset_is_refused_with_the_list() -> None:
    with pytest.raises(SystemExit, match="no model preset 'huge'.*tiny, tiny16, tiny_narrow"):
        common.model_config("huge")


class ClassTokens(MaskGITTransformer):
    """Fixed logits that favour token id == class id: a real class predicts an image of its own id's tokens, the
    null class predicts nothing in particular."""

    def forward(self, tokens: torch.Tensor, class_ids: torch.Tensor | None = None) -> torch.Tensor:
        assert class_ids is not None
        logits = torch.zeros(*tokens.shape, self.codebook_size)
        real = class_ids < self.num_classes
        logits[real, :, class_ids[real]] = 2.0
        return logits


def test_class_information_finds_the_class_the_net_uses() -> None:
    import class_information

    net = ClassTokens(codebook_size=8, num_tokens=16, num_classes=4, dim=8, depth=1, heads=2, mlp_dim=8)
    labels = torch.tensor([0, 1, 2, 3, 1, 2])
    tokens = labels[:, None].expand(-1, 16).clone()  # image c is all token c
    info = class_information.class_information(net, tokens, labels, ratio=0.5, batch=4)
    assert info["accuracy"] == 1.0
    # true class: -log(e^2 / (e^2 + 7)); null class: log 8
    assert info["ce_true"] == pytest.approx(-math.log(math.exp(2) / (math.exp(2) + 7)), abs=1e-5)
    assert info["ce_null"] == pytest.approx(math.log(8), abs=1e-5)
    assert info["gap"] == pytest.approx(info["ce_null"] - info["ce_true"])
    shuffled = class_information.class_information(net, tokens, labels.roll(1), ratio=0.5)  # wrong labels
    assert shuffled["accuracy"] == 0.0 and shuffled["gap"] < 0


def test_class_information_script_end_to_end(maskgit_ckpt: Path, tmp_path: Path) -> None:
    import class_information

    class_information.main(["--ckpt", str(maskgit_ckpt), "--n", "12", "--ratios", "0.5", "1.0", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "class_information.json").read_text())["rows"]
    assert [r["masked"] for r in rows] == [0.5, 1.0] and {r["images"] for r in rows} == {12}
    for r in rows:
        assert 0 <= r["accuracy"] <= 1 and r["gap"] == pytest.approx(r["ce_null"] - r["ce_true"], abs=2e-4)
    with pytest.raises(SystemExit, match="does not exist"):
        class_information.main(["--ckpt", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="no config.yaml"):
        lone = tmp_path / "lone" / "checkpoints" / "last.ckpt"
        lone.parent.mkdir(parents=True)
        lone.write_bytes(maskgit_ckpt.read_bytes())
        class_information.main(["--ckpt", str(lone), "--out", str(tmp_path)])


def test_blurred_keeps_full_size_and_flat_images_and_loses_detail_as_it_shrinks() -> None:
    import blur_reference

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8, generator=g)
    assert torch.equal(blur_reference.blurred(images, 64), images)
    flat = torch.full((2, 3, 64, 64), 77, dtype=torch.uint8)
    assert torch.equal(blur_reference.blurred(flat, 8), flat)
    errors = [(blur_reference.blurred(images, s).float() - images.float()).pow(2).mean() for s in (32, 16, 8)]
    assert errors[0] < errors[1] < errors[2]
    with pytest.raises(ValueError, match="size must lie in"):
        blur_reference.blurred(images, 0)


def test_blur_reference_rows_are_the_classifier_on_those_images(
    generated_root: Path, tokenizer_ckpt: Path, make_cfg, tmp_path: Path
) -> None:
    import blur_reference

    from tests.conftest import GEN
    from tests.fakes import TinyClassifier
    from tinymaskgit.data.generated import GeneratedDataModule
    from tinymaskgit.train import train

    val = GeneratedDataModule(root=str(generated_root), **GEN).dataset("val")
    clf = TinyClassifier()
    rows = blur_reference.measure(clf, val.images, val.labels, [16], [tokenizer_ckpt])
    assert [r["images"] for r in rows] == [
        "originals (64 px)",
        "16 px, scaled up",
        f"reconstructions: {tokenizer_ckpt}",
    ]
    assert rows[0]["psnr"] is None and rows[0]["fd_tinyclf"] == pytest.approx(0, abs=1e-6)
    truth = float((clf.predict(val.images) == val.labels).float().mean())
    assert rows[0]["class_acc"] == pytest.approx(truth, abs=1e-4)
    soft = blur_reference.blurred(val.images, 16)
    assert rows[1]["class_acc"] == pytest.approx(float((clf.predict(soft) == val.labels).float().mean()), abs=1e-4)
    assert rows[1]["fd_tinyclf"] > 0 and rows[1]["psnr"] > rows[2]["psnr"] - 50

    # the script on a real classifier checkpoint, its data from the run's config.yaml
    out = tmp_path / "clf"
    train(make_cfg("stage=classifier", "debug=limit", "trainer.max_epochs=1", f"paths.output_dir={out}"))
    ckpt = out / "checkpoints" / "last.ckpt"
    blur_reference.main(["--classifier", str(ckpt), "--sizes", "16", "--out", str(tmp_path / "bench")])
    saved = json.loads((tmp_path / "bench" / "blur_reference.json").read_text())["rows"]
    assert [r["images"] for r in saved] == ["originals (64 px)", "16 px, scaled up"]
    assert all(0 <= r["class_acc"] <= 1 for r in saved) and saved[1]["fd_classifier"] > 0
    with pytest.raises(SystemExit, match="does not exist"):
        blur_reference.main(["--classifier", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        blur_reference.main(["--classifier", str(ckpt), "--sizes", "64", "--out", str(tmp_path)])


def test_training_benchmark_times_a_patched_transformer_on_a_larger_grid(tmp_path: Path, monkeypatch) -> None:
    import bench_train

    built: list[dict] = []
    real = bench_train.preset

    def recording(name: str, part: str, **extra):
        built.append({"part": part, **extra})
        return real(name, part, **extra)

    monkeypatch.setattr(bench_train, "preset", recording)
    argv = [
        "bench_train.py",
        "--stages",
        "maskgit",
        "--latent-size",
        "16",
        "--levers",
        "bf16+patch 2",
        "--images",
        "20",
    ]
    monkeypatch.setattr(
        sys,
        "argv",
        [*argv, "--steps", "1", "--rounds", "1", "--curve-steps", "0", "--batch", "2", "--out", str(tmp_path)],
    )
    bench_train.main()
    rows = json.loads((tmp_path / "train_speed.json").read_text())["rows"]
    assert [r["lever"] for r in rows][:2] == ["float32", "bf16+patch 2"] and {r["latent_size"] for r in rows} == {16}
    nets = [b for b in built if b["part"] == "transformer"]
    assert [b["num_tokens"] for b in nets] == [256] * len(rows)  # every lever on the 16x16 grid
    assert [b["patch"] for b in nets][:2] == [1, 2]
    assert "bf16" not in bench_train.TF_LEVERS["float32"] and "latent_size" not in bench_train.TF_LEVERS["float32"]


def test_fid_scale_rows_score_a_set_against_itself_as_perfect() -> None:
    import fid_scale

    feats = np.random.default_rng(0).normal(size=(40, 8))
    r = fid_scale.row("same", feats, feats, "ref")
    assert abs(r["fid"]) < 1e-6 and r["precision"] == r["recall"] == r["coverage"] == 1.0 and r["n"] == 40
    shifted = fid_scale.row("shifted", feats + 3.0, feats, "ref")
    assert shifted["fid"] > 50 and shifted["precision"] < 0.5


def test_fid_scale_tokenizer_rows_take_the_first_images_of_every_class() -> None:
    import fid_scale

    labels = torch.tensor([2, 0, 1, 0, 2, 0, 1, 2, 1])
    idx = fid_scale.first_per_class(labels, 2)
    assert idx.tolist() == [1, 3, 2, 6, 0, 4]
    assert fid_scale.first_per_class(labels, 5).tolist() == [1, 3, 5, 2, 6, 8, 0, 4, 7]  # fewer than n: all of them
