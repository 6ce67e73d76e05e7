"""The scale beside every FID: what real and plainly blurred images score in the standard FID features.

Rows, each against the reference split (default: the 5,000 tiny-imagenet-10 train images): the real val
images; the val images shrunk to ``--blur`` pixels (area average) and scaled back up (bilinear). With
``--also-val``, the blurred val images against the val images themselves. With ``--tokenizer CKPT``, what that
tokenizer's decoder allows any sampler on its tokens: its reconstructions of the val images, and of the first
``--per-class`` train images of each class (N = 1,000 at 100, as the recipe's generation row; against a reference
that holds those very images, so the most favourable case for samples). Each row: FID, KID, precision,
recall, density, coverage (``tinymaskgit.metrics``), N. The reference features are cached in ``--cache``
(the same cache ``evaluate`` and the recipes use), so a second run costs only the blurred images.

    python benchmarks/fid_scale.py --data-root ../shared/data/tiny-imagenet-200 [--blur 16] [--out bench_out] \
        [--tokenizer <run>/vqvae/checkpoints/last.ckpt]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch
from blur_reference import blurred
from common import report

from tinymaskgit.cli import resolve_device
from tinymaskgit.data.tiny_imagenet import TinyImageNetDataModule
from tinymaskgit.errors import TinyMaskGITError
from tinymaskgit.evaluate import reconstruct
from tinymaskgit.inference import load_tokenizer
from tinymaskgit.metrics.features import InceptionBackend
from tinymaskgit.metrics.fid import Stats, fd_to, kid
from tinymaskgit.metrics.prdc import prdc
from tinymaskgit.metrics.reference import cached_features


def row(name: str, fake: np.ndarray, real: np.ndarray, reference: str) -> dict[str, Any]:
    k, _ = kid(fake, real, subsets=50, subset_size=1000)
    return {
        "images": name,
        "reference": reference,
        "fid": round(fd_to(fake, Stats.of(real)), 2),
        "kid": round(k, 4),
        **{key: round(v, 3) for key, v in prdc(real, fake).as_dict().items()},
        "n": len(fake),
    }


def first_per_class(labels: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the first ``n`` images of each class, class by class."""
    return torch.cat([torch.nonzero(labels == c).flatten()[:n] for c in labels.unique(sorted=True)])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-root", required=True, help="the tiny-imagenet-200 folder (the 10 classes)")
    p.add_argument("--reference", default="train", choices=["train", "val"])
    p.add_argument("--blur", type=int, nargs="+", default=[16], help="pixels the val images are shrunk to")
    p.add_argument("--also-val", action="store_true", help="also score the blurred val images against val")
    p.add_argument("--tokenizer", nargs="*", default=[], help="stage-1 or stage-2 checkpoints to reconstruct with")
    p.add_argument("--per-class", type=int, default=100, help="train images per class the tokenizer rows reconstruct")
    p.add_argument("--device", default="auto", help="auto (a GPU if there is one) | cpu | cuda")
    p.add_argument("--cache", default="~/.cache/tinymaskgit/fid_stats")
    p.add_argument("--out", default="bench_out")
    a = p.parse_args(argv)
    try:
        dm = TinyImageNetDataModule(root=a.data_root)
        device = resolve_device(a.device)
        backend = InceptionBackend(device=device)
        ref, val = dm.dataset(a.reference), dm.dataset("val")
        real = cached_features(backend, ref.images, a.cache, dm.name, a.reference)
        val_f = cached_features(backend, val.images, a.cache, dm.name, "val")
        toks = [(ckpt, load_tokenizer(ckpt, device, stage=None)) for ckpt in a.tokenizer]
    except TinyMaskGITError as e:
        raise SystemExit(f"error: {e}") from None
    refname = f"{dm.name}/{a.reference} ({len(ref)})"
    rows = [row("real val images", val_f, real, refname)]
    for size in a.blur:
        blur_f = backend.features(blurred(val.images, size)).numpy()
        rows.append(row(f"val, {size} px blur", blur_f, real, refname))
        if a.also_val:
            rows.append(row(f"val, {size} px blur", blur_f, val_f, f"{dm.name}/val ({len(val)})"))
    train = dm.dataset("train")
    some = first_per_class(train.labels, a.per_class)
    for ckpt, tok in toks:
        for split, images in (("val", val.images), (f"train, first {a.per_class} a class", train.images[some])):
            fake = backend.features(reconstruct(tok, images, 64, device)).numpy()
            rows.append(row(f"{split}, reconstructed by {ckpt}", fake, real, refname))
    report("fid_scale", rows, device, a.out)


if __name__ == "__main__":
    main()
