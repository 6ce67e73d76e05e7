"""Writing pictures: lossless PNGs, grids, and the strip of every decoding step (latent mask over the predicted
image) with an animated GIF. Every file is written under a temporary name and renamed."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.utils import make_grid, save_image

from tinymaskgit.cache import atomic_write
from tinymaskgit.data.images import to_uint8


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write a (3, S, S) uint8 tensor as a lossless PNG; atomic: an interrupted write leaves no file at ``path``."""
    pil = Image.fromarray(image.permute(1, 2, 0).numpy())
    atomic_write(path, lambda tmp: pil.save(tmp, format="PNG"))


def save_grid(images: torch.Tensor, path: Path, nrow: int) -> torch.Tensor:
    """Save (N, 3, S, S) images in [-1, 1] as one PNG grid; returns the grid in [0, 1]."""
    grid = make_grid(images.float().clamp(-1, 1).add(1).div(2), nrow=nrow, padding=2, pad_value=1.0)
    atomic_write(path, lambda tmp: save_image(grid, tmp, format="PNG"))
    return grid


def mask_image(mask: torch.Tensor, size: int) -> torch.Tensor:
    """(L, L) bool still-unknown mask -> (3, size, size) in [-1, 1]: unknown black, decided white."""
    m = (~mask).float()[None, None]  # (1, 1, L, L)
    return (F.interpolate(m, size=(size, size), mode="nearest")[0] * 2 - 1).expand(3, size, size)


def step_frames(masks: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """Per step, the latent mask above the predicted image: (T, 3, 2S + 2, S) in [-1, 1].

    Args:
        masks: T tensors (L, L) bool, True where the token is still unknown after the step.
        images: (T, 3, S, S) the images predicted at each step.
    """
    size = images.shape[-1]
    sep = torch.ones(3, 2, size)
    return torch.stack([torch.cat([mask_image(m, size), sep, img], dim=1) for m, img in zip(masks, images)])


def save_step_strip(frames: torch.Tensor, path: Path) -> torch.Tensor:
    """Save the frames side by side (one column per step) as a PNG, and as an animated GIF beside it; returns
    the strip as written, (3, H, W) uint8."""
    path.parent.mkdir(parents=True, exist_ok=True)
    strip = to_uint8(make_grid(frames.clamp(-1, 1), nrow=len(frames), padding=2, pad_value=1.0, normalize=False))
    save_png(strip, path)
    gif = [
        Image.fromarray(to_uint8(f).permute(1, 2, 0).numpy()).resize(
            (f.shape[-1] * 3, f.shape[-2] * 3), Image.Resampling.NEAREST
        )
        for f in frames
    ]
    gif += [gif[-1]] * 3  # linger on the result
    atomic_write(
        path.with_suffix(".gif"),
        lambda tmp: gif[0].save(tmp, format="GIF", save_all=True, append_images=gif[1:], duration=400, loop=0),
    )
    return strip
