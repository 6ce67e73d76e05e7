"""Batch augmentations applied in a training step (on whatever device the batch is on).

Dimension legend: B batch, C channels, H/W image height/width, s the largest shift in pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_translate(images: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image moved by its own random (dy, dx), each in [-max_shift, max_shift], edges reflected.

    The classic crop-after-padding augmentation of small-image classifiers: the class of an image does
    not change when it moves by a few pixels, so a classifier that memorises pixel positions cannot fit it.
    """
    if max_shift == 0:
        return images
    b, _, h, w = images.shape
    if not 0 < max_shift < min(h, w):
        raise ValueError(f"max_shift must be in [0, {min(h, w)}) for {h}x{w} images, got {max_shift}")
    s = max_shift
    padded = F.pad(images, (s, s, s, s), mode="reflect")  # (B, C, H+2s, W+2s)
    offsets = torch.randint(0, 2 * s + 1, (2, b), generator=generator).to(images.device)
    rows = offsets[0, :, None] + torch.arange(h, device=images.device)  # (B, H)
    cols = offsets[1, :, None] + torch.arange(w, device=images.device)  # (B, W)
    batch = torch.arange(b, device=images.device)[:, None, None]  # (B, 1, 1)
    window = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return window.permute(0, 3, 1, 2).contiguous()  # (B, C, H, W)
