"""One-hour CPU recipes, end to end: ``python -m tinymaskgit.recipe tiny_imagenet --data-root ... --out ...``.

``tiny_imagenet``: tokenizer -> transformer -> reference classifier -> ``n_per_class`` samples per class in
``OUT/samples/<class>/`` -> reconstructions of the val images in ``OUT/reconstructions/<class>/`` ->
``OUT/evaluation.md`` -> ``OUT/time_to_quality.png``.
``cat_faces``: tokenizer -> unconditional transformer -> every test pair inpainted into ``OUT/inpainted/`` ->
FID/KID against the ground truth with the lab's grade -> ``OUT/strip.png`` (masked | ours | ground truth) -> the
same report. ``--tokenizer PATH`` (either recipe) skips stage 1 and trains the transformer on that tokenizer: with
the lab's ``VQGAN.pt`` this is the lab's own flow.

Each step is the command a user would type (printed before it runs), in its own process. A finished step
leaves ``OUT/.done/<step>`` and is skipped when the recipe runs again with the same ``OUT``; a training stage
that was interrupted resumes from its ``last.ckpt`` (its time budget continues where it stopped).
"""

from __future__ import annotations

import argparse
import csv
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tinymaskgit.errors import ConfigError

RECIPES = ("tiny_imagenet", "cat_faces")
# the sampler each recipe evaluates with, chosen by the standard FID with recall as the guard (never by class
# accuracy, which a template per class raises; docs/results_history.md): tiny-imagenet samples at a constant
# w = 2 (w = 5 gives one template a class), drawing each token at temperature 0.85 with the confidence's Gumbel
# noise at 2 instead of 4.5: FID 158 against 167, recall 0.046 against 0.024 (N = 1,000, two seeds);
# for inpainting, temperature 1 with the default two re-encoding rounds
SAMPLER_ARGS = {
    "tiny_imagenet": "steps=8 cfg_weight=2 token_temperature=0.85 temperature=2 precision=auto",
    "cat_faces": "steps=8 temperature=1 precision=auto",
}
STAGE_METRICS = {
    "vqvae": ["val/psnr"],
    "maskgit": ["val/masked_ce", "val/uncond_masked_ce", "val/masked_acc"],
    "classifier": ["val/acc"],
}


def q(path: Path | str) -> str:
    """A path as a quoted Hydra override value (paths may hold spaces, quotes or non-ASCII characters)."""
    return "'" + str(path).replace("\\", "\\\\").replace("'", "\\'") + "'"


@dataclass
class Step:
    """One recipe step: a command (or a function) and the marker that says it is done."""

    name: str
    args: list[str] = field(default_factory=list)  # python -m <args>
    run: Callable[[], None] | None = None
    train_dir: Path | None = None  # training stages resume from <train_dir>/checkpoints/last.ckpt


def plan(a: argparse.Namespace) -> list[Step]:
    """The steps of recipe ``a.recipe`` with its paths and overrides."""
    out, root = a.out, str(a.data_root)
    data = ["data=tiny_imagenet10" if a.recipe == "tiny_imagenet" else "data=cat_faces", f"data.root={q(root)}"]
    data += a.data_args

    def train(stage: str, *extra: str) -> Step:
        args = [
            "tinymaskgit.train",
            f"experiment=recipe_{a.recipe}",
            f"stage={stage}",
            f"data.root={q(root)}",
            f"paths.root_dir={q(out)}",
            f"hydra.run.dir={q(out / stage)}",
            *extra,
            *a.data_args,
            *a.train_args,
        ]
        return Step(stage, args, train_dir=out / stage)

    # --tokenizer: a tokenizer from elsewhere (the lab's VQGAN.pt, an earlier run's): stage 1 is not trained
    tokenizer = a.tokenizer or out / "vqvae" / "checkpoints" / "last.ckpt"
    maskgit = out / "maskgit" / "checkpoints" / "last.ckpt"
    steps = [] if a.tokenizer else [train("vqvae")]
    steps.append(train("maskgit", f"tokenizer_ckpt={q(tokenizer)}"))
    common = [f"paths.root_dir={q(out)}", "overwrite=true", *a.sampler_args]
    # the real images' Inception features, shared by every run on the same images (keyed on pixels and network)
    fid_cache = [f"eval.cache_dir={q(Path(a.fid_cache).expanduser())}"] if a.backend == "inception" else []
    if a.recipe == "tiny_imagenet":
        classifier = out / "classifier" / "checkpoints" / "best.ckpt"
        backend = [f"eval.backend={a.backend}", f"eval.classifier_ckpt={q(classifier)}", *fid_cache]
        steps += [
            train("classifier"),
            Step(
                "samples",
                [
                    "tinymaskgit.sample",
                    f"ckpt={q(maskgit)}",
                    f"n_per_class={a.n_per_class}",
                    f"out_dir={q(out / 'samples')}",
                    f"hydra.run.dir={q(out / 'logs' / 'samples')}",
                    *common,
                ],
            ),
            Step(
                "reconstruction",
                [
                    "tinymaskgit.evaluate",
                    "protocol=reconstruction",
                    f"ckpt={q(tokenizer)}",
                    "save_images=true",
                    f"images_dir={q(out / 'reconstructions')}",
                    f"out_dir={q(out / 'eval' / 'reconstruction')}",
                    f"hydra.run.dir={q(out / 'logs' / 'reconstruction')}",
                    *data,
                    *backend,
                    *common,
                ],
            ),
            Step(
                "generation",
                [
                    "tinymaskgit.evaluate",
                    "protocol=generation",
                    f"ckpt={q(maskgit)}",
                    f"n_per_class={a.n_per_class}",
                    f"out_dir={q(out / 'eval' / 'generation')}",
                    f"hydra.run.dir={q(out / 'logs' / 'generation')}",
                    *data,
                    *backend,
                    *common,
                ],
            ),
        ]
    else:
        backend = [f"eval.backend={a.backend}", *fid_cache]
        if a.classifier:
            backend.append(f"eval.classifier_ckpt={q(a.classifier)}")
        steps += [
            Step(
                "inpainted",
                [
                    "tinymaskgit.inpaint",
                    f"ckpt={q(maskgit)}",
                    f"out_dir={q(out / 'inpainted')}",
                    f"hydra.run.dir={q(out / 'logs' / 'inpainted')}",
                    "step_strips=[0,1,2]",
                    *data,
                    *common,
                ],
            ),
            Step(
                "inpainting",
                [
                    "tinymaskgit.evaluate",
                    "protocol=inpainting",
                    f"ckpt={q(maskgit)}",  # provenance; the images scored are the step before's, not made again
                    f"results_dir={q(out / 'inpainted' / 'completed')}",
                    f"out_dir={q(out / 'eval' / 'inpainting')}",
                    f"hydra.run.dir={q(out / 'logs' / 'inpainting')}",
                    *data,
                    *backend,
                    *common,
                ],
            ),
            Step("strip", run=lambda: write_strip(a)),
        ]
    steps.append(Step("report", run=lambda: write_report(a)))
    return steps


def run_step(step: Step, out: Path) -> bool:
    """Run ``step`` unless its marker exists; returns whether it ran."""
    marker = out / ".done" / step.name
    if marker.is_file():
        print(f"[recipe] {step.name}: done earlier, skipped", flush=True)
        return False
    args = list(step.args)
    if step.train_dir is not None:
        last = step.train_dir / "checkpoints" / "last.ckpt"
        if last.is_file():
            args.append(f"ckpt_path={q(last)}")
            print(f"[recipe] {step.name}: resuming from {last}", flush=True)
    if step.run is not None:
        step.run()
    else:
        print(f"[recipe] {step.name}: python -m {' '.join(args)}", flush=True)
        res = subprocess.run([sys.executable, "-m", *args], stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise SystemExit(f"error: recipe step {step.name} failed (exit {res.returncode}); fix it and run again")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("done\n")
    return True


# -- the report ----------------------------------------------------------------------------------------------
def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "csv" / "metrics.csv"
    return list(csv.DictReader(path.open())) if path.is_file() else []


def time_to_quality(out: Path, stages: list[str]) -> list[dict[str, float | str]]:
    """(stage, metric, recipe minute, value) of every validation, minutes counted from the recipe's start."""
    points: list[dict[str, float | str]] = []
    offset = 0.0
    for stage in stages:
        rows = [r for r in read_metrics(out / stage) if r.get("time/minutes")]
        for r in rows:
            for metric in STAGE_METRICS[stage]:
                if r.get(metric):
                    points.append(
                        {
                            "stage": stage,
                            "metric": metric,
                            "minute": offset + float(r["time/minutes"]),
                            "value": float(r[metric]),
                        }
                    )
        if rows:
            offset += max(float(r["time/minutes"]) for r in rows)
    return points


def plot_time_to_quality(points: list[dict[str, float | str]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [(s, m) for s in STAGE_METRICS for m in STAGE_METRICS[s] if any(p["metric"] == m for p in points)]
    fig, axes = plt.subplots(1, max(1, len(metrics)), figsize=(3.6 * max(1, len(metrics)), 3.2), squeeze=False)
    for ax, (stage, metric) in zip(axes[0], metrics):
        pts = [(p["minute"], p["value"]) for p in points if p["metric"] == metric and p["stage"] == stage]
        ax.plot(*zip(*pts), marker="o", markersize=3)
        ax.set_title(f"{stage}: {metric}")
        ax.set_xlabel("recipe wall-clock minutes")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(a: argparse.Namespace) -> None:
    """OUT/evaluation.md (the evaluation tables, each stage's last validation, the pictures) and the plot."""
    out: Path = a.out
    stages = ["vqvae", "maskgit"] + (["classifier"] if a.recipe == "tiny_imagenet" else [])
    points = time_to_quality(out, stages)
    if points:
        plot_time_to_quality(points, out / "time_to_quality.png")
    from tinymaskgit.precision import describe_machine

    lines = [f"# Recipe {a.recipe}", "", f"Data: `{a.data_root}`. Outputs: `{out}`.", ""]
    # the minutes buy different numbers of steps on different machines: both are reported, with the machine
    lines.append(f"Machine (the report's, usually the training's): {describe_machine()}.")
    if a.tokenizer:
        lines.append(f"Tokenizer: `{a.tokenizer}` (stage 1 not trained here).")
    lines += ["", "## Training", ""]
    lines += ["| stage | minutes | steps | last validation |", "|---|---|---|---|"]
    for stage in stages:
        logged = read_metrics(out / stage)
        rows = [r for r in logged if r.get("time/minutes")]
        if rows:
            last = rows[-1]
            vals = ", ".join(f"{m} {float(last[m]):.4g}" for m in STAGE_METRICS[stage] if last.get(m))
            steps = max(int(r["step"]) for r in logged if r.get("step"))
            lines.append(f"| {stage} | {float(last['time/minutes']):.1f} | {steps:,} | {vals} |")
    lines += ["", "## Evaluation", ""]
    tables = sorted((out / "eval").glob("*/results.md"))
    for i, t in enumerate(tables):
        body = t.read_text().splitlines()
        lines += body if i == 0 else body[2:]
    pictures = ["time_to_quality.png", "samples/grid.png", "strip.png"]
    lines += ["", *[f"![{p}]({p})" for p in pictures if (out / p).is_file()]]
    (out / "evaluation.md").write_text("\n".join(lines) + "\n")
    print(f"[recipe] report: {out / 'evaluation.md'}", flush=True)


def write_strip(a: argparse.Namespace, n: int = 8) -> None:
    """OUT/strip.png: for the first ``n`` test pairs, masked input | ours | ground truth, one row each."""
    import torch
    from torchvision.utils import make_grid

    from tinymaskgit.data.cat_faces import CatFacesDataModule
    from tinymaskgit.data.images import read_rgb, to_uint8
    from tinymaskgit.pictures import save_png

    pairs = CatFacesDataModule(root=str(a.data_root)).inpaint_split()
    k = min(n, len(pairs.names))
    ours = torch.stack([read_rgb(a.out / "inpainted" / "completed" / name, 64) for name in pairs.names[:k]])
    gt = pairs.ground_truth[:k] if pairs.ground_truth is not None else ours
    rows = torch.stack([pairs.masked[:k], ours, gt], dim=1).flatten(0, 1)  # (3k, 3, S, S)
    grid = make_grid(rows.float() / 127.5 - 1, nrow=3, padding=2, pad_value=1.0)
    save_png(to_uint8(grid), a.out / "strip.png")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, with the recipe's sampler settings filled in and the override strings split."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("recipe", choices=RECIPES)
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--classifier",
        default="",
        help="cat_faces: a stage=classifier checkpoint (extra columns; with --backend classifier, the features)",
    )
    p.add_argument(
        "--backend",
        choices=("inception", "classifier"),
        default="inception",
        help="evaluation features: the standard FID network (default) or the reference classifier (quick)",
    )
    p.add_argument(
        "--fid-cache",
        default="~/.cache/tinymaskgit/fid_stats",
        help="where the real images' Inception features are kept",
    )
    p.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        help="train only the transformer, on this tokenizer (a stage=vqvae checkpoint or the lab's VQGAN.pt)",
    )
    p.add_argument("--n-per-class", type=int, default=100)
    p.add_argument("--train-args", default="", help="extra overrides for every training stage")
    p.add_argument("--data-args", default="", help="extra data.* overrides for training and evaluation")
    p.add_argument("--sampler-args", default=None, help="overrides for sampling/evaluation (default: the recipe's)")
    a = p.parse_args(argv)
    if a.sampler_args is None:
        a.sampler_args = SAMPLER_ARGS[a.recipe]
    a.train_args, a.sampler_args, a.data_args = (shlex.split(x) for x in (a.train_args, a.sampler_args, a.data_args))
    return a


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    a.out = a.out.expanduser().resolve()
    a.data_root = a.data_root.expanduser().resolve()
    if a.tokenizer is not None:
        a.tokenizer = a.tokenizer.expanduser().resolve()
    try:
        if a.tokenizer is not None and not a.tokenizer.is_file():
            raise ConfigError(
                f"TOKENIZER={a.tokenizer} does not exist; pass a stage=vqvae checkpoint or the lab's VQGAN.pt"
            )
        if not a.data_root.is_dir():
            raise ConfigError(f"DATA_ROOT {a.data_root} does not exist; point DATA_ROOT at the dataset folder")
        if a.recipe == "cat_faces" and a.backend == "classifier" and not Path(a.classifier).expanduser().is_file():
            raise ConfigError(
                f"recipe cat_faces with --backend classifier needs CLASSIFIER=<a stage=classifier best.ckpt> for its "
                f"FD/KID features (got {a.classifier!r}); `make recipe-tiny-imagenet` trains one in OUT/classifier/"
            )
        if a.classifier and not Path(a.classifier).expanduser().is_file():
            raise ConfigError(f"CLASSIFIER={a.classifier} does not exist; pass a stage=classifier best.ckpt or nothing")
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    a.out.mkdir(parents=True, exist_ok=True)
    for step in plan(a):
        run_step(step, a.out)
    print(f"[recipe] {a.recipe} finished: {a.out / 'evaluation.md'}", flush=True)


if __name__ == "__main__":
    main()
