"""What the reference classifier makes of plainly blurred images: a yardstick for reconstructions and samples.

The val images are shrunk to ``size`` pixels (area average) and scaled back up (bilinear), for each size in
``--sizes``; each row gives their PSNR against the originals, the classifier's accuracy on them and their
fd_classifier / KID against the originals' features. ``--tokenizer`` adds a row for each tokenizer's
reconstructions of the same images, so a tokenizer can be read as "as sharp as a 20-pixel image" for the
classifier. The data come from the ``config.yaml`` that training wrote beside the classifier's run folder
(``--data-root`` moves it).

    python benchmarks/blur_reference.py --classifier RUN/classifier/checkpoints/best.ckpt \
        [--tokenizer RUN/vqvae/checkpoints/last.ckpt ...] [--data-root DIR] [--split val] \
        [--sizes 32 24 16 12 8] [--out bench_out]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from class_information import split_images
from common import report

from tinymaskgit.data.images import to_float, to_uint8
from tinymaskgit.errors import TinyMaskGITError
from tinymaskgit.evaluate import reconstruct
from tinymaskgit.inference import classifier_backend, load_tokenizer
from tinymaskgit.metrics.features import Backend
from tinymaskgit.metrics.fid import Stats, fd_to, kid
from tinymaskgit.metrics.psnr import psnr


def blurred(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, S, S) uint8 images shrunk to ``size`` pixels by area averaging and scaled back up bilinearly."""
    s = images.shape[-1]
    if not 1 <= size <= s:
        raise ValueError(f"size must lie in [1, {s}], got {size}")
    if size == s:
        return images.clone()
    small = F.interpolate(to_float(images), size=size, mode="area")
    return to_uint8(F.interpolate(small, size=s, mode="bilinear", align_corners=False).clamp(-1, 1))


def row_for(
    name: str, backend: Backend, fake: torch.Tensor, real_f: np.ndarray, images: torch.Tensor, labels: torch.Tensor
) -> dict[str, Any]:
    """PSNR, the classifier's accuracy, FD and KID of ``fake`` against the originals (their features ``real_f``)."""
    fake_f = backend.features(fake).numpy()
    preds = backend.predict(fake)
    identical = torch.equal(fake, images)
    return {
        "images": name,
        "psnr": None if identical else round(float(psnr(to_float(fake), to_float(images))), 2),
        "class_acc": None if preds is None else round(float((preds == labels).float().mean()), 4),
        backend.metric: round(fd_to(fake_f, Stats.of(real_f)), 3),
        "kid": round(kid(fake_f, real_f, subsets=10, subset_size=1000)[0], 4),
    }


def measure(
    backend: Backend,
    images: torch.Tensor,
    labels: torch.Tensor,
    sizes: list[int],
    tokenizers: list[Path] | None = None,
) -> list[dict[str, Any]]:
    """One row for the originals, one per blur size, one per tokenizer's reconstructions."""
    s = images.shape[-1]
    real_f = backend.features(images).numpy()
    named = [
        (f"originals ({s} px)" if size == s else f"{size} px, scaled up", blurred(images, size)) for size in [s, *sizes]
    ]
    cpu = torch.device("cpu")
    named += [
        (f"reconstructions: {c}", reconstruct(load_tokenizer(str(c)), images, 128, cpu)) for c in tokenizers or []
    ]
    return [row_for(name, backend, fake, real_f, images, labels) for name, fake in named]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--classifier", required=True, type=Path, help="a stage=classifier checkpoint")
    p.add_argument("--tokenizer", nargs="*", default=[], type=Path, help="vqvae or maskgit checkpoints")
    p.add_argument("--data-root", default=None, help="the dataset's folder, if not where training read it")
    p.add_argument("--split", default="val", choices=["train", "val"])
    p.add_argument("--n", type=int, default=100_000, help="images, spread evenly over the split (default: all)")
    p.add_argument("--sizes", nargs="+", type=int, default=[32, 24, 16, 12, 8], help="blur: pixels to shrink to")
    p.add_argument("--out", default="bench_out")
    a = p.parse_args(argv)
    try:
        backend = classifier_backend(a.classifier)
        images, labels = split_images(a.classifier, a.split, a.n, a.data_root)
        if not all(1 <= s < images.shape[-1] for s in a.sizes):
            p.error(f"--sizes must lie in [1, {images.shape[-1] - 1}], got {a.sizes}")
        rows = measure(backend, images, labels, a.sizes, a.tokenizer)
    except TinyMaskGITError as e:  # a missing or foreign checkpoint: its one-line message, no traceback
        raise SystemExit(str(e)) from None
    report("blur_reference", rows, torch.device("cpu"), a.out)


if __name__ == "__main__":
    main()
