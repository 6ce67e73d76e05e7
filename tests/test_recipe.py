"""The recipes' orchestration on the generated data in seconds: the OUT layout, skipping finished steps,
resuming a stage that was killed, reconstructions saved by class (no test runs the hour)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.conftest import GEN, TINY_TF, TINY_VQ
from tinymaskgit.data.generated import CLASSES
from tinymaskgit.recipe import SAMPLER_ARGS, parse_args, plan
from tinymaskgit.recipe import main as recipe_main

REPO = Path(__file__).resolve().parents[1]
TRAIN = [
    "trainer.max_time=null",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=4",
    "+trainer.limit_val_batches=1",
    "trainer.log_every_n_steps=1",
    "data.batch_size=4",
    "callbacks.last_every_n_steps.every_n_train_steps=1",
    *TINY_VQ,
    *TINY_TF,
]
SLOW = "+callbacks.slow._target_=tests.fakes.SlowSteps"
NAMES = [n for _, n, *_ in CLASSES]


def argv(recipe: str, root: Path, out: Path, *extra: str, train: list[str] = TRAIN) -> list[str]:
    data = f"data.classes=[{','.join(w for w, *_ in CLASSES)}]" if recipe == "tiny_imagenet" else ""
    return [
        recipe,
        f"--data-root={root}",
        f"--out={out}",
        "--n-per-class=2",
        f"--train-args={' '.join(train)}",
        f"--data-args={data}",
        "--sampler-args=steps=2 precision=auto",
        "--backend=classifier",  # the quick features; the Inception path is tested in test_evaluate
        *extra,
    ]


def test_recipes_evaluate_with_the_standard_fid_by_default(tmp_path: Path) -> None:
    from tinymaskgit.recipe import parse_args, plan

    for recipe in ("tiny_imagenet", "cat_faces"):
        a = parse_args([recipe, f"--data-root={tmp_path}", f"--out={tmp_path / 'out'}"])
        evals = [s.args for s in plan(a) if s.args and s.args[0] == "tinymaskgit.evaluate"]
        assert evals and all("eval.backend=inception" in args for args in evals)
        assert all(any(x.startswith("eval.cache_dir=") and "fid_stats" in x for x in args) for args in evals)
    a = parse_args(["tiny_imagenet", f"--data-root={tmp_path}", f"--out={tmp_path / 'out'}"])
    gen = next(s.args for s in plan(a) if "protocol=generation" in s.args)
    assert any(x.startswith("eval.classifier_ckpt=") for x in gen)  # class accuracy beside the FID


def step_of(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])


@pytest.mark.slow
def test_tiny_imagenet_recipe_layout_skip_and_resume_after_kill(generated_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "recipe out"
    root = generated_root / "tiny-imagenet"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "tinymaskgit.recipe", *argv("tiny_imagenet", root, out, train=[*TRAIN, SLOW])]
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    last = out / "maskgit" / "checkpoints" / "last.ckpt"
    try:  # kill the whole recipe while stage 2 is in its first epoch
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if last.is_file() and step_of(last) >= 1:
                    break
            except Exception:
                pass
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)  # the recipe and the training process it started
    finally:
        proc.wait()
        log.close()
    assert (out / ".done" / "vqvae").is_file() and not (out / ".done" / "maskgit").exists()
    killed_at = step_of(last)
    assert 1 <= killed_at < 4

    res = subprocess.run(
        cmd[:3] + argv("tiny_imagenet", root, out), cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "vqvae: done earlier, skipped" in res.stdout
    assert f"maskgit: resuming from {last}" in res.stdout
    assert step_of(last) == 4  # ended where an uninterrupted stage ends

    for stage in ("vqvae", "maskgit", "classifier"):
        assert (out / stage / "checkpoints" / "last.ckpt").is_file()
        assert (out / ".done" / stage).is_file()
    for name in ("red disc", "lime dots"):
        slug = name.replace(" ", "_")
        assert len(list((out / "samples" / slug).glob("*.png"))) == 2
        recs = sorted((out / "reconstructions" / slug).glob("*.png"))
        assert len(recs) == GEN["val_per_class"]
        with Image.open(recs[0]) as im:
            assert im.size == (64, 64)
    report = (out / "evaluation.md").read_text()
    assert "| reconstruction |" in report and "| generation |" in report and "fd_classifier" in report
    assert "| maskgit | " in report and (out / "time_to_quality.png").stat().st_size > 1000
    maskgit_row = next(line for line in report.splitlines() if line.startswith("| maskgit |"))
    # the steps the minutes bought (4 batches; Lightning logs the count or the last batch's 0-based index)
    assert maskgit_row.split("|")[3].strip() in ("3", "4")
    assert "precision=auto -> " in report and f"{os.cpu_count()} cores" in report  # which machine
    assert "val/masked_ce" in report and "val/uncond_masked_ce" in report  # both branches of CFG, validated

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.ckpt")}
    again = subprocess.run(
        cmd[:3] + argv("tiny_imagenet", root, out), cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert again.returncode == 0
    for step in ("vqvae", "maskgit", "classifier", "samples", "reconstruction", "generation"):
        assert f"{step}: done earlier, skipped" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.ckpt")} == stamps


@pytest.mark.slow
def test_cat_faces_recipe_on_the_labs_vqgan_inpaints_every_pair_and_writes_the_strip(
    generated_root: Path, tmp_path: Path, make_cfg
) -> None:
    """The lab's flow: --tokenizer VQGAN.pt (course layout, plain state_dict) -> transformer only -> every test
    pair inpainted -> scored with the lab's grade -> strip."""
    from tests.fakes import SMALL, course_files
    from tinymaskgit.inference import load_maskgit
    from tinymaskgit.models.lab_vqgan import LabVQGAN
    from tinymaskgit.train import train

    train(make_cfg("stage=classifier", "debug=limit", "trainer.max_epochs=1", f"paths.output_dir={tmp_path / 'clf'}"))
    clf = tmp_path / "clf" / "checkpoints" / "last.ckpt"
    vqgan = course_files(tmp_path / "course", **SMALL)
    out = tmp_path / "cats"
    recipe_main(argv("cat_faces", generated_root / "inpaint", out, f"--classifier={clf}", f"--tokenizer={vqgan}"))
    assert not (out / "vqvae").exists() and not (out / ".done" / "vqvae").exists()  # stage 1 is the lab's
    assert isinstance(load_maskgit(out / "maskgit" / "checkpoints" / "last.ckpt").tokenizer, LabVQGAN)
    assert len(list((out / "inpainted" / "completed").glob("*.png"))) == GEN["inpaint"]
    with Image.open(out / "strip.png") as im:
        assert im.size[0] > im.size[1] / 3  # three columns: masked | ours | ground truth
    report = (out / "evaluation.md").read_text()
    assert "| inpainting |" in report and f"Tokenizer: `{vqgan}`" in report


def test_cat_faces_scores_the_images_it_inpainted_without_inpainting_again(tmp_path: Path) -> None:
    steps = {s.name: s.args for s in plan(parse_args(["cat_faces", f"--data-root={tmp_path}", f"--out={tmp_path}"]))}
    assert f"out_dir='{tmp_path / 'inpainted'}'" in steps["inpainted"]
    assert f"results_dir='{tmp_path / 'inpainted' / 'completed'}'" in steps["inpainting"]


def test_a_missing_tokenizer_is_one_line_and_stage_one_is_planned_without_one(tmp_path: Path, capsys) -> None:
    base = ["cat_faces", f"--data-root={tmp_path}", f"--out={tmp_path / 'o'}"]
    assert [s.name for s in plan(parse_args(base))][:2] == ["vqvae", "maskgit"]
    with pytest.raises(SystemExit) as info:
        recipe_main([*base, f"--tokenizer={tmp_path / 'VQGAN.pt'}"])
    assert info.value.code == 2 and capsys.readouterr().err.startswith("error: TOKENIZER=")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "recipe,step,expected",
    [
        ("tiny_imagenet", "samples", "cfg_weight=2"),
        ("cat_faces", "inpainted", "temperature=1"),
        ("cat_faces", "inpainting", "temperature=1"),
    ],
)
def test_each_recipe_samples_with_its_own_settings_unless_told(
    tmp_path: Path, recipe: str, step: str, expected: str
) -> None:
    base = [recipe, f"--data-root={tmp_path}", f"--out={tmp_path / 'o'}"]
    args = {s.name: s.args for s in plan(parse_args(base))}[step]
    assert expected in args and all(x in args for x in SAMPLER_ARGS[recipe].split())
    args = {s.name: s.args for s in plan(parse_args([*base, "--sampler-args=steps=3 reencode=0"]))}[step]
    assert "steps=3" in args and "reencode=0" in args and expected not in args


def test_missing_data_root_is_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        recipe_main(["tiny_imagenet", f"--data-root={tmp_path / 'nope'}", f"--out={tmp_path / 'o'}"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("error: DATA_ROOT")
    assert not (tmp_path / "o").exists()
