"""A run killed with SIGKILL in mid-epoch resumes from its last.ckpt and ends where an uninterrupted run ends."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import GEN, TINY_TF, TINY_VQ

REPO = Path(__file__).resolve().parents[1]
BATCHES = 10 * GEN["train_per_class"] // 8  # per epoch: 60 images in batches of 8, the last one dropped


def command(generated_root: Path, run_dir: Path) -> list[str]:
    """Stage 1 as a user runs it, in its own process."""
    return [
        sys.executable,
        "-m",
        "tinymaskgit.train",
        "stage=vqvae",
        f"data.root={generated_root}",
        *(f"data.{k}={v}" for k, v in GEN.items()),
        "data.batch_size=8",
        *TINY_VQ,
        "trainer.max_epochs=2",
        "+trainer.limit_val_batches=1",
        "trainer.log_every_n_steps=1",
        "callbacks.last_every_n_steps.every_n_train_steps=1",
        "+callbacks.slow._target_=tests.fakes.SlowSteps",
        f"hydra.run.dir={run_dir}",
        f"paths.root_dir={run_dir.parent}",
    ]


def global_step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])


def logged_steps(csv_path: Path) -> set[int]:
    """Training steps with a row in the CSV log so far (empty while it does not exist)."""
    if not csv_path.is_file():
        return set()
    rows = csv.DictReader(csv_path.read_text().splitlines())
    # a row being written may be cut short: only whole step numbers count
    return {
        int(r["step"])
        for r in rows
        if (r.get("train/loss_step") or r.get("train/loss")) and (r.get("step") or "").isdigit()
    }


@pytest.mark.slow
def test_kill_9_in_mid_epoch_then_resume(generated_root: Path, tmp_path: Path) -> None:
    """Stage 1 here; test_recipe kills and resumes stage 2 inside the recipe (test_resume_from_last_for_every_stage
    resumes each stage in process)."""
    run_dir = tmp_path / "run"
    args = command(generated_root, run_dir)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    last = run_dir / "checkpoints" / "last.ckpt"
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        killed_at = -1
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                killed_at = global_step(last) if last.is_file() else -1
            except Exception:  # being written
                killed_at = -1
            # Lightning logs a step's row after that step's checkpoint: wait for the row too, or a kill in
            # between loses a row the checkpoint already counts (no training lost; the CSV has a gap)
            if killed_at >= 3 and killed_at - 1 in logged_steps(run_dir / "csv" / "metrics.csv"):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
    assert 3 <= global_step(last) < BATCHES  # killed inside the first epoch

    res = subprocess.run([*args, f"ckpt_path={last}"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    assert global_step(last) == 2 * BATCHES  # the same final step count as an uninterrupted run

    # the CSV holds the killed run's rows and continues after them
    assert set(range(2 * BATCHES)) <= logged_steps(run_dir / "csv" / "metrics.csv")


def test_one_last_ckpt_holds_the_newest_step(make_cfg, tmp_path: Path) -> None:
    """The epoch-end and the every-N-steps checkpoints share last.ckpt; Lightning would version the second
    writer's file (last-v1.ckpt), leaving last.ckpt up to an epoch behind the mid-epoch saves."""
    from tinymaskgit.train import train

    run = tmp_path / "run"
    # epochs of 7 batches: the epoch-end save (step 7) comes before the step save (step 10)
    train(make_cfg("trainer.max_epochs=2", "callbacks.last_every_n_steps.every_n_train_steps=10", *TINY_VQ))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert global_step(run / "checkpoints" / "last.ckpt") == 2 * BATCHES


@pytest.mark.parametrize(
    ("stop", "final"),
    [([], 2 * BATCHES), (["+callbacks.stop._target_=tests.fakes.StopAtStep", "+callbacks.stop.step=10"], 10)],
)
def test_last_ckpt_holds_the_final_step_when_the_last_validation_is_not_the_best(
    make_cfg, tmp_path: Path, stop: list[str], final: int
) -> None:
    """Lightning (2.6) writes last.ckpt at an epoch's end only with a new best: a run whose last validation was
    worse (every time-bounded recipe stage, as a rule) kept the weights of its last every-N-steps save. Also
    when training is stopped mid-epoch, as trainer.max_time stops it."""
    from tinymaskgit.train import train

    run = tmp_path / "run"
    # monitoring the step in min mode makes epoch 1 the best and nothing later; no step save in between
    overrides = ["callbacks.model_checkpoint.monitor=step", "callbacks.model_checkpoint.mode=min", *stop]
    train(
        make_cfg("trainer.max_epochs=2", "callbacks.last_every_n_steps.every_n_train_steps=100", *overrides, *TINY_VQ)
    )
    assert global_step(run / "checkpoints" / "best.ckpt") == BATCHES
    assert global_step(run / "checkpoints" / "last.ckpt") == final


@pytest.mark.parametrize("stage", ["maskgit", "classifier"])
def test_resume_from_last_for_every_stage(make_cfg, tokenizer_ckpt: Path, tmp_path: Path, stage: str) -> None:
    """Lightning loads a checkpoint with weights_only=True: the hparams must be plain lists and dicts."""
    from tinymaskgit.train import train

    extra = (
        [f"tokenizer_ckpt={tokenizer_ckpt}", *TINY_TF, "stage.module.sample.n_per_class=1"]
        if stage == "maskgit"
        else []
    )
    first = tmp_path / "logs" / stage / "runs" / "first"
    train(make_cfg(f"stage={stage}", "debug=limit", "trainer.max_epochs=1", f"paths.output_dir={first}", *extra))
    second = tmp_path / "logs" / stage / "runs" / "second"
    metrics = train(make_cfg(f"stage={stage}", "debug=limit", "ckpt_path=last", f"paths.output_dir={second}", *extra))
    assert metrics["global_step"] == 6
