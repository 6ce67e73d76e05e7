"""How much a stage-2 transformer uses its class, measured on images of its dataset, without sampling.

N images of a split are encoded by the checkpoint's own tokenizer; in each, a share r of the tokens is masked
(the same positions for every class tried) and the masked tokens' mean cross-entropy is computed with the true
class, the null class and every other class:

- gap: CE(null class) - CE(true class), nats per masked token: what the class tells the transformer;
- accuracy: how often the true class gives the lowest CE of the real classes (the transformer as a classifier).

Classifier-free guidance samples from (1 + w) * cond - w * uncond logits, so it amplifies exactly this
difference: a transformer whose gap is near zero gives guidance little to amplify. The images come from the
dataset in the ``config.yaml`` that training wrote beside the checkpoint's folder (``--data-root`` moves it).

    python benchmarks/class_information.py --ckpt RUN/maskgit/checkpoints/last.ckpt [--ckpt ...] \
        [--data-root DIR] [--split train|val] [--n 1000] [--ratios 0.5 0.9] [--out bench_out]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from common import report
from hydra.utils import instantiate

from tinymaskgit.app.session import run_config
from tinymaskgit.data.tokens import encode_images
from tinymaskgit.errors import TinyMaskGITError
from tinymaskgit.inference import load_maskgit
from tinymaskgit.models.transformer import MaskGITTransformer


def split_images(ckpt: Path, split: str, n: int, data_root: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``n`` (uint8) images of ``split`` of the checkpoint's dataset, spread evenly over it, and labels."""
    cfg = run_config(ckpt)
    if cfg is None or "data" not in cfg:
        raise SystemExit(f"no config.yaml with a data section beside {ckpt.parent}: cannot tell the model's dataset")
    if data_root is not None:
        cfg.data.root = data_root
    try:
        ds = instantiate(cfg.data).dataset(split)
    except TinyMaskGITError as e:
        raise SystemExit(f"cannot read the {split} split of {ckpt}'s dataset: {e} (pass --data-root)") from None
    idx = torch.linspace(0, len(ds) - 1, min(n, len(ds))).round().long()
    return ds.images[idx], torch.as_tensor(ds.labels)[idx]


@torch.no_grad()
def class_information(
    net: MaskGITTransformer, tokens: torch.Tensor, labels: torch.Tensor, ratio: float, seed: int = 0, batch: int = 250
) -> dict[str, float]:
    """The gap CE(null) - CE(true class) of the masked tokens (nats per token) and the transformer's accuracy as a
    classifier, for (M, N) token grids with a share ``ratio`` of each masked (at least one token)."""
    if net.num_classes < 2:
        raise SystemExit(f"the transformer has {net.num_classes} classes: a class-free model uses no class")
    g = torch.Generator().manual_seed(seed)
    m, n = tokens.shape
    masked = torch.rand(m, n, generator=g).argsort(1) < max(1, round(ratio * n))  # (M, N), same count per row
    inputs = tokens.masked_fill(masked, net.mask_token_id)
    ce = torch.empty(m, net.num_classes + 1)  # (M, classes + null)
    for c in range(net.num_classes + 1):
        for s in range(0, m, batch):
            x, t, k = inputs[s : s + batch], tokens[s : s + batch], masked[s : s + batch]
            logits = net(x, torch.full((len(x),), c)).float()  # (b, N, K)
            per_token = F.cross_entropy(logits.transpose(1, 2), t, reduction="none")  # (b, N)
            ce[s : s + batch, c] = (per_token * k).sum(1) / k.sum(1)
    true = ce.gather(1, labels[:, None])[:, 0]
    null = ce[:, net.null_class_id]
    return {
        "ce_true": true.mean().item(),
        "ce_null": null.mean().item(),
        "gap": (null - true).mean().item(),
        "accuracy": (ce[:, : net.num_classes].argmin(1) == labels).float().mean().item(),
    }


def measure(ckpt: Path, split: str, n: int, ratios: list[float], data_root: str | None = None) -> list[dict[str, Any]]:
    """One row per masking ratio for the checkpoint ``ckpt``."""
    model = load_maskgit(ckpt)
    images, labels = split_images(ckpt, split, n, data_root)
    tokens = encode_images(model.tokenizer, images, batch_size=128, device="cpu")
    rows = []
    for ratio in ratios:
        info = class_information(model.net, tokens, labels, ratio)
        rows.append(
            {
                "checkpoint": str(ckpt),
                "cond": model.net.config.cond,
                "split": split,
                "images": len(tokens),
                "masked": ratio,
                **{k: round(v, 4) for k, v in info.items()},
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ckpt", nargs="+", required=True, type=Path, help="stage-2 checkpoints")
    p.add_argument("--data-root", default=None, help="the dataset's folder, if not where training read it")
    p.add_argument("--split", default="train", choices=["train", "val"])
    p.add_argument("--n", type=int, default=1000, help="images, spread evenly over the split")
    p.add_argument("--ratios", nargs="+", type=float, default=[0.5, 0.9], help="shares of masked tokens")
    p.add_argument("--out", default="bench_out")
    a = p.parse_args(argv)
    if not all(0 < r <= 1 for r in a.ratios):
        p.error(f"--ratios must lie in (0, 1], got {a.ratios}")
    try:
        rows = [row for ckpt in a.ckpt for row in measure(ckpt, a.split, a.n, a.ratios, a.data_root)]
    except TinyMaskGITError as e:  # a missing or foreign checkpoint: its one-line message, no traceback
        raise SystemExit(str(e)) from None
    report("class_information", rows, torch.device("cpu"), a.out)


if __name__ == "__main__":
    main()
