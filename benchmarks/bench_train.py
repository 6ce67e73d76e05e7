"""Training speed of both stages, float32 against each lever, side by side in one run; and equal loss after equal
steps for the combination the recipes use (one plot with both loss curves per stage).

Levers: bf16 autocast (Lightning's ``precision=bf16-mixed``), channels_last (convolutional tokenizer), batch
size, AdamW/Adam with ``foreach=False`` or ``fused=True``, ``torch.compile``, and sdpa attention. Every lever
runs from the same initial weights on the same batch; the configurations are timed in rounds (each round
times every configuration once) and the median over rounds is reported, so a passing load on the machine
hits all of them alike.

    python benchmarks/bench_train.py [--presets tiny] [--rounds 3] [--steps 6] [--curve-steps 150] [--out bench_out]
        [--compile] [--levers NAME ...] [--latent-size 16]

``--latent-size`` sets the tokenizer's token grid (the preset's by default) for both stages; the transformer then
trains on its tokens, e.g. 16x16 with and without ``bf16+patch 2``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from common import CONF, preset, report, sync
from hydra import compose, initialize_config_dir

from tinymaskgit.lit.maskgit_module import training_mask
from tinymaskgit.models.blocks import AttnBlock, ResBlock
from tinymaskgit.precision import trainer_precision
from tinymaskgit.sampling.schedules import get_schedule

# name -> settings; 'recipe' is what conf/experiment/recipe_*.yaml trains with
VQ_LEVERS: dict[str, dict[str, Any]] = {
    "float32": {},
    "bf16": {"bf16": True},
    "channels_last": {"channels_last": True},
    "bf16+channels_last": {"bf16": True, "channels_last": True},
    "batch x2": {"batch_mult": 2},
    "foreach=False": {"opt": {"foreach": False}},
    "fused": {"opt": {"fused": True}},
    "bf16+fused": {"bf16": True, "opt": {"fused": True}},
    "bf16+channels_last+fused": {"bf16": True, "channels_last": True, "opt": {"fused": True}},
    "compile": {"compile": True},
    "bf16+channels_last+compiled blocks": {"bf16": True, "channels_last": True, "compile": "blocks"},
}
TF_LEVERS: dict[str, dict[str, Any]] = {
    "float32": {},
    "bf16": {"bf16": True},
    "sdpa": {"sdpa": True},
    "batch x2": {"batch_mult": 2},
    "foreach=False": {"opt": {"foreach": False}},
    "fused": {"opt": {"fused": True}},
    "compile": {"compile": True},
    "bf16+compile": {"bf16": True, "compile": True},
    "bf16+sdpa": {"bf16": True, "sdpa": True},
    "bf16+adaln": {"bf16": True, "cond": "adaln"},
    "bf16+patch 2": {"bf16": True, "patch": 2},  # 2x2 squares of tokens a position (model.transformer.patch)
}


def recipe_lever(stage: str, experiment: str = "recipe_tiny_imagenet") -> tuple[str, dict[str, Any]]:
    """The lever ``experiment=<experiment> stage=<stage>`` trains with, from the config Hydra composes for it,
    so the benchmark's 'recipe' row cannot drift from the recipe: its precision, the tokenizer's memory layout
    and, for the transformer, its attention implementation, dropout and class conditioning."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", f"stage={stage}"])
    precision = trainer_precision(cfg.trainer.precision, cfg.trainer.accelerator)  # 'auto' as train.py resolves it
    lever: dict[str, Any] = {"bf16": precision.startswith("bf16")}
    parts = ["bf16"] if lever["bf16"] else ["float32"]
    if stage == "vqvae" and cfg.stage.module.get("channels_last"):
        lever["channels_last"] = True
        parts.append("channels_last")
    if stage == "maskgit":
        tf = cfg.model.transformer
        lever.update(sdpa=tf.attn_impl == "sdpa", dropout=float(tf.dropout), cond=str(tf.get("cond", "token")))
        lever["patch"] = int(tf.get("patch") or 1)
        parts += ["sdpa"] * lever["sdpa"] + [f"dropout {tf.dropout:g}"] + ["adaln"] * (lever["cond"] == "adaln")
        parts += [f"patch {lever['patch']}"] * (lever["patch"] > 1)
    return f"recipe ({', '.join(parts)})", lever


def grid(lever: dict[str, Any]) -> dict[str, int]:
    """The tokenizer preset's override for ``--latent-size`` (none: the preset's own grid)."""
    return {"latent_size": lever["latent_size"]} if lever.get("latent_size") else {}


def update(opt: torch.optim.Optimizer, net: torch.nn.Module, loss: torch.Tensor) -> float:
    """One optimizer step on ``loss`` with the stages' gradient clipping (norm 1); returns the loss."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    opt.step()
    return float(loss.detach())


def compile_blocks(net: torch.nn.Module) -> int:
    """torch.compile each ResNet and attention block of ``net`` in place, each its own graph (short compiles, in
    which the norm + SiLU between convolutions can fuse); returns how many."""
    blocks = [m for m in net.modules() if isinstance(m, (ResBlock, AttnBlock))]
    for m in blocks:
        m.compile(dynamic=False)
    return len(blocks)


def vq_setup(name: str, lever: dict[str, Any], device: torch.device, images: torch.Tensor) -> Callable[[int], float]:
    """A closure running one training step of the tokenizer on batch ``i``; returns the loss."""
    torch.manual_seed(0)
    net = preset(name, "vqvae", **grid(lever)).to(device).train()
    fmt = torch.channels_last if lever.get("channels_last") else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.Adam(
        [p for p in net.parameters() if p.requires_grad], lr=4e-4, betas=(0.5, 0.9), **lever.get("opt", {})
    )
    model = net
    if lever.get("compile") == "blocks":
        compile_blocks(net)
    elif lever.get("compile"):
        model = torch.compile(net)

    def step(i: int) -> float:
        x = images[i].to(device).contiguous(memory_format=fmt)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(lever.get("bf16"))):
            rec, q = model(x)
        return update(opt, net, F.mse_loss(rec.float(), x) + q.vq_loss)

    return step


def tf_setup(name: str, lever: dict[str, Any], device: torch.device, tokens: torch.Tensor) -> Callable[[int], float]:
    """A closure running one MaskGIT training step (masked tokens, cross-entropy) on batch ``i``."""
    torch.manual_seed(0)
    tok = preset(name, "vqvae", **grid(lever))
    net = preset(
        name,
        "transformer",
        codebook_size=tok.codebook_size,
        num_tokens=tok.num_tokens,
        num_classes=10,
        attn_impl="sdpa" if lever.get("sdpa") else "math",
        cond=lever.get("cond", "token"),
        patch=lever.get("patch", 1),
        **({"dropout": lever["dropout"]} if "dropout" in lever else {}),
    )
    net = net.to(device).train()
    opt = torch.optim.AdamW(net.parameters(), lr=4e-4, betas=(0.9, 0.96), weight_decay=0.03, **lever.get("opt", {}))
    model = torch.compile(net) if lever.get("compile") else net
    gamma = get_schedule("arccos")

    def step(i: int) -> float:
        t = tokens[i].to(device)
        g = torch.Generator(device=device).manual_seed(i)
        mask = training_mask(gamma, t.shape[0], t.shape[1], device, g)
        labels = torch.arange(t.shape[0], device=device) % 10
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(lever.get("bf16"))):
            logits = model(t.masked_fill(mask, net.mask_token_id), labels)
        return update(opt, net, F.cross_entropy(logits[mask].float(), t[mask], label_smoothing=0.1))

    return step


def batches_of(data: torch.Tensor, batch: int, count: int) -> list[torch.Tensor]:
    return [data[(i * batch + torch.arange(batch)) % len(data)] for i in range(count)]


def speed_rows(
    stage: str, name: str, levers: dict[str, dict[str, Any]], data: torch.Tensor, batch: int, args: Any
) -> list[dict[str, Any]]:
    device = torch.device(args.device)
    steps: dict[str, Callable[[int], float]] = {}
    warm_s: dict[str, float] = {}
    setup = vq_setup if stage == "vqvae" else tf_setup
    feeds: dict[str, list[torch.Tensor]] = {}
    for lever_name, lever in levers.items():
        b = batch * lever.get("batch_mult", 1)
        feeds[lever_name] = batches_of(data, b, args.steps + 2)
        try:
            step = setup(name, lever, device, feeds[lever_name])
            t = time.perf_counter()
            for i in range(2):  # warm-up (compilation happens here)
                step(i)
            sync(device)
            warm_s[lever_name] = time.perf_counter() - t
            steps[lever_name] = step
        except Exception as e:  # a lever this torch build lacks (e.g. fused Adam on an old CPU build)
            print(f"{stage}/{lever_name}: skipped ({type(e).__name__}: {str(e).splitlines()[0][:100]})")
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(args.rounds):
        for lever_name, step in steps.items():
            sync(device)
            t = time.perf_counter()
            for i in range(2, args.steps + 2):
                step(i)
            sync(device)
            times[lever_name].append(time.perf_counter() - t)
    base = None
    rows = []
    for lever_name, ts in times.items():
        b = batch * levers[lever_name].get("batch_mult", 1)
        rate = b * args.steps / statistics.median(ts)
        base = base or rate
        rows.append(
            {
                "stage": stage,
                "preset": name,
                "lever": lever_name,
                "latent_size": levers[lever_name].get("latent_size"),  # None: the preset's
                "batch": b,
                "img_per_s": rate,
                "speedup": rate / base,
                "spread": (max(ts) - min(ts)) / statistics.median(ts),
                "warmup_s": warm_s[lever_name],
            }
        )
    return rows


def loss_curves(stage: str, name: str, levers: dict[str, dict[str, Any]], data: torch.Tensor, batch: int, args: Any):
    device = torch.device(args.device)
    feed = batches_of(data, batch, args.curve_steps)
    setup = vq_setup if stage == "vqvae" else tf_setup
    curves = {}
    for lever_name in ("float32", next(k for k in levers if k.startswith("recipe"))):
        step = setup(name, levers[lever_name], device, feed)
        curves[lever_name] = [step(i) for i in range(args.curve_steps)]
    return curves


def training_images(n: int) -> torch.Tensor:
    """The generated dataset's images (written to a temporary folder), as uint8 -> float in [-1, 1]."""
    import tempfile

    from tinymaskgit.data.generated import GeneratedDataModule

    with tempfile.TemporaryDirectory() as tmp:
        dm = GeneratedDataModule(root=tmp, train_per_class=max(1, n // 10), val_per_class=1, inpaint=1)
        return dm.dataset("train").images.float().div(127.5).sub(1)


def chosen(levers: dict[str, dict[str, Any]], names: list[str] | None, compile_too: bool) -> dict[str, dict[str, Any]]:
    """float32 and the levers ``names`` (all when None, the torch.compile ones only with ``compile_too``)."""
    return {
        k: dict(v)  # a copy: main() adds the grid to each
        for k, v in levers.items()
        if k == "float32" or (k in names if names is not None else compile_too or not v.get("compile"))
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["tiny"])
    p.add_argument("--stages", nargs="+", default=["vqvae", "maskgit"], choices=["vqvae", "maskgit"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=None, help="default: 32 (vqvae) / 64 (maskgit); lab 8 / 16")
    p.add_argument("--steps", type=int, default=6, help="timed steps per configuration and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--curve-steps", type=int, default=150, help="steps of the equal-steps loss curves (0: none)")
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--compile", action="store_true", help="also time torch.compile (its warm-up compiles for minutes)")
    p.add_argument(
        "--levers", nargs="+", default=None, metavar="NAME", help="time only these (and float32 and the recipe's)"
    )
    p.add_argument("--latent-size", type=int, default=None, help="the token grid's side (default: the preset's)")
    p.add_argument("--out", default="bench_out")
    args = p.parse_args()
    if args.levers:
        unknown = sorted(set(args.levers) - set(VQ_LEVERS) - set(TF_LEVERS))
        if unknown:
            p.error(f"unknown lever(s) {unknown}; the levers are {sorted(set(VQ_LEVERS) | set(TF_LEVERS))}")
    vq_levers = chosen(VQ_LEVERS, args.levers, args.compile)
    tf_levers = chosen(TF_LEVERS, args.levers, args.compile)
    for stage, levers in (("vqvae", vq_levers), ("maskgit", tf_levers)):
        name, lever = recipe_lever(stage)
        levers[name] = lever
        for lever in levers.values():
            lever["latent_size"] = args.latent_size
    device = torch.device(args.device)
    images = training_images(args.images)
    rows, curves = [], {}
    for name in args.presets:
        vq_batch = args.batch or (8 if name == "lab" else 32)
        if "vqvae" in args.stages:
            rows += speed_rows("vqvae", name, vq_levers, images, vq_batch, args)
            if args.curve_steps:
                curves[(name, "vqvae")] = loss_curves("vqvae", name, vq_levers, images, vq_batch, args)
        if "maskgit" in args.stages:
            with torch.no_grad():
                torch.manual_seed(0)
                tok = preset(name, "vqvae", **grid({"latent_size": args.latent_size})).train()
                tok(images[:64])  # seeds the codebook from encoder outputs, so the tokens are diverse
                tok.eval()
                tokens = torch.cat([tok.tokenize(images[i : i + 64]).flatten(1) for i in range(0, len(images), 64)])
            tf_batch = args.batch or (16 if name == "lab" else 64)
            rows += speed_rows("maskgit", name, tf_levers, tokens, tf_batch, args)
            if args.curve_steps:
                curves[(name, "maskgit")] = loss_curves("maskgit", name, tf_levers, tokens, tf_batch, args)
    for r in rows:
        if (r["preset"], r["stage"]) in curves:
            c = curves[(r["preset"], r["stage"])]
            if r["lever"] in c:
                r["loss_at_end"] = statistics.mean(c[r["lever"]][-10:])
    report("train_speed", rows, device, args.out)
    if curves:
        plot(curves, Path(args.out) / "train_loss_curves.png")


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.4), squeeze=False)
    for ax, ((name, stage), c) in zip(axes[0], curves.items()):
        for label, losses in c.items():
            ax.plot(range(1, len(losses) + 1), losses, label=label, alpha=0.8)
        ax.set_title(f"{stage} ({name} preset): loss after equal steps")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
