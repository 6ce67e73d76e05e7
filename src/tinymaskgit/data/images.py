"""Reading image files into uint8 tensors and the in-memory dataset every DataModule serves.

Images live in memory as uint8 (N, 3, S, S); the dataset turns them into floats in [-1, 1].
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from tinymaskgit.errors import DataError


def read_rgb(path: Path, size: int, resize: bool = False) -> torch.Tensor:
    """Read an image file as a (3, size, size) uint8 tensor; greyscale and RGBA become RGB.

    Raises DataError naming the file if it cannot be decoded, or if it is not ``size`` x ``size`` and
    ``resize`` is false.
    """
    try:
        with Image.open(path) as f:
            rgb = f.convert("RGB")
        if rgb.size != (size, size):
            if not resize:
                raise DataError(
                    f"{path} is {rgb.size[0]}x{rgb.size[1]}, expected {size}x{size}; "
                    "set data.resize=true to resize such images"
                )
            rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
        arr = np.asarray(rgb, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read image {path}: {e}; replace the file or set data.skip_corrupt=true") from e
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def read_mask(path: Path, size: int) -> torch.Tensor:
    """Read a single-channel pixel mask as a (1, size, size) bool tensor: True = known pixel (value >= 128)."""
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"cannot read mask {path}: {e}") from e
    if arr.shape != (size, size):
        raise DataError(f"mask {path} is {arr.shape[1]}x{arr.shape[0]}, expected {size}x{size}")
    return torch.from_numpy(arr >= 128)[None]


def load_images(
    paths: Sequence[Path], size: int, resize: bool = False, skip_corrupt: bool = False
) -> tuple[torch.Tensor, list[int]]:
    """Read many files into a (N, 3, size, size) uint8 tensor.

    Returns the tensor and the positions in ``paths`` that were kept; with ``skip_corrupt`` unreadable
    files are left out and counted in one warning, otherwise the first one raises DataError.
    """
    images: list[torch.Tensor] = []
    kept: list[int] = []
    skipped: list[Path] = []
    for i, p in enumerate(paths):
        try:
            images.append(read_rgb(p, size, resize))
            kept.append(i)
        except DataError:
            if not skip_corrupt:
                raise
            skipped.append(p)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable image(s), first: {skipped[0]}", stacklevel=2)
    if not images:
        return torch.zeros(0, 3, size, size, dtype=torch.uint8), kept
    return torch.stack(images), kept


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounding to the nearest level (not truncating)."""
    return images.detach().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


class ImageDataset(Dataset):
    """In-memory images with integer labels; items are (float image in [-1, 1], label)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, hflip: bool = False) -> None:
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = to_float(self.images[i])
        if self.hflip and torch.rand(()) < 0.5:
            x = x.flip(-1)
        return x, self.labels[i]
