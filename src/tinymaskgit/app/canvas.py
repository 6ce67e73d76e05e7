"""Pictures in and out of the page: uploads fitted to the model's size, the painting canvas and its hole.

Dimension legend: S image size, D display scale of the painting canvas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torchvision.utils import make_grid

from tinymaskgit.data.images import to_float
from tinymaskgit.errors import DataError

DISPLAY = 4  # the painting canvas shows the S-px image at D x S so that a brush can hit single pixels


def enlarge(image: np.ndarray, factor: int = DISPLAY) -> np.ndarray:
    """(H, W, C) -> (factor H, factor W, C) by repeating pixels, so that a browser shows them unsmoothed."""
    return image.repeat(factor, 0).repeat(factor, 1)


def as_hwc(images: torch.Tensor, nrow: int) -> np.ndarray:
    """(B, 3, S, S) uint8 -> one (H, W, 3) uint8 grid with white 2-px gaps."""
    grid = make_grid(to_float(images).add(1).div(2), nrow=nrow, padding=2, pad_value=1.0)
    return grid.mul(255).round().byte().permute(1, 2, 0).numpy()


def fit_picture(image: Image.Image, size: int) -> tuple[torch.Tensor, str]:
    """Any picture -> (3, S, S) uint8: centre-cropped to a square, then resized; the note says what changed."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    note = ""
    if w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        rgb = rgb.crop((left, top, left + side, top + side))
        note = f"centre-cropped from {w}x{h} to {side}x{side}"
    if rgb.size != (size, size):
        note = (note + ", then " if note else "") + f"resized from {rgb.size[0]}x{rgb.size[1]} to {size}x{size}"
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1), note


def read_upload(path: str | Path, size: int) -> tuple[torch.Tensor, str]:
    """An uploaded file -> (3, S, S) uint8 and a note; a file that is not a picture raises DataError."""
    p = Path(path)
    try:
        with Image.open(p) as f:
            f.load()
            return fit_picture(f, size)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(
            f"{p.name} is not an image this page can read ({type(e).__name__}); upload a PNG or JPEG"
        ) from None


def canvas(image: torch.Tensor) -> dict[str, Any]:
    """A (3, S, S) uint8 image as the painting canvas's value: shown at D x S with nearest-neighbour pixels."""
    big = enlarge(image.permute(1, 2, 0).numpy())  # (D*S, D*S, 3)
    return {"background": big, "layers": [], "composite": big}


def from_canvas(value: dict[str, Any] | None, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The painting canvas's value -> (3, S, S) uint8 image and (1, S, S) bool known pixels.

    A pixel is part of the hole when any of its D x D display block carries paint on a layer.
    """
    if not value or value.get("background") is None:
        raise DataError("no image on the canvas: pick a test image or upload one first")
    bg = np.asarray(value["background"])[..., :3].astype(np.uint8)  # (H, W, 3)
    h, w = bg.shape[:2]
    if h == w and h % size == 0:  # the canvas this page made: every (h / S)-th pixel is the image, exactly
        image = torch.from_numpy(bg[:: h // size, :: h // size].copy()).permute(2, 0, 1)
    else:
        image, _ = fit_picture(Image.fromarray(bg), size)
    painted = np.zeros((h, w), dtype=bool)
    for layer in value.get("layers") or []:
        a = np.asarray(layer)
        if a.shape[:2] == (h, w):
            painted |= a[..., 3] > 0 if a.ndim == 3 and a.shape[-1] == 4 else a.reshape(h, w, -1).any(-1)
    hole = torch.from_numpy(painted).float()[None, None]  # (1, 1, H, W)
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    hole = F.adaptive_max_pool2d(hole[..., top : top + side, left : left + side], size)[0]  # (1, S, S)
    return image, hole < 0.5
