"""The 64x64 cat-faces set in the MaskGIT inpainting lab's layout (unconditional, one class).

    root/train/*.png, root/val/*.png          training and validation images
    root/masked_image/image_NNN.png          test images, holes painted grey
    root/mask64/mask_NNN.png                  their masks: 0 = missing pixel, 255 = known pixel
    root/test_gt/image_NNN.png | root/test_gt.csv   ground truth (csv: header row, then 64*64*3 uint8 HWC
                                              values per image, in file-name order)

``load_inpaint_pairs`` reads any folder of image + mask pairs, not only this split.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tinymaskgit.data.base import ImageDataModule, InpaintSet
from tinymaskgit.data.images import load_images, read_mask, read_rgb
from tinymaskgit.errors import DataError

FETCH_HINT = (
    "get the cat-faces inpainting set (train/, val/, masked_image/, mask64/) and set data.root to it, "
    "or use data=generated"
)
SUFFIXES = {".png", ".jpg", ".jpeg"}


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)


def mask_name_for(image: Path) -> str:
    """The lab's pairing: image_NNN.png <-> mask_NNN.png; any other name pairs with the same name."""
    stem = image.stem
    return "mask_" + stem[len("image_") :] if stem.startswith("image_") else stem


def read_gt_csv(path: Path, n: int, size: int) -> torch.Tensor:
    """The lab's test_gt.csv -> (n, 3, size, size) uint8."""
    rows: list[np.ndarray] = []
    with path.open(newline="") as f:
        reader = csv.reader(f)
        next(reader, None)  # header
        for i, row in enumerate(reader):
            if len(row) != size * size * 3:
                raise DataError(f"{path} row {i + 1} has {len(row)} values, expected {size * size * 3}")
            rows.append(np.asarray(row, dtype=np.uint8))
    if len(rows) != n:
        raise DataError(f"{path} has {len(rows)} rows but there are {n} masked images")
    arr = np.stack(rows).reshape(n, size, size, 3)
    return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()


def load_inpaint_pairs(image_dir: Path, mask_dir: Path, size: int = 64, gt: Path | None = None) -> InpaintSet:
    """Pair every image in ``image_dir`` with its mask in ``mask_dir`` (and ground truth, if given).

    ``gt`` is a folder of images named like the masked ones, or a csv in the lab's format.
    """
    for d in (image_dir, mask_dir):
        if not d.is_dir():
            raise DataError(f"missing folder {d}; {FETCH_HINT}")
    images = _files(image_dir)
    if not images:
        raise DataError(f"no images in {image_dir}")
    masks_by_stem = {p.stem: p for p in _files(mask_dir)}
    used: set[str] = set()
    masked, masks = [], []
    for img in images:
        m = masks_by_stem.get(mask_name_for(img)) or masks_by_stem.get(img.stem)
        if m is None:
            raise DataError(f"image {img} has no mask: expected {mask_dir / (mask_name_for(img) + '.png')}")
        used.add(m.stem)
        masked.append(read_rgb(img, size))
        _check_mask_size(m, size, img)
        masks.append(read_mask(m, size))
    orphans = sorted(set(masks_by_stem) - used)
    if orphans:
        o = masks_by_stem[orphans[0]]
        expected = image_dir / (o.stem.replace("mask_", "image_", 1) + ".png")
        raise DataError(f"mask {o} has no image: expected {expected}")
    ground_truth = None
    if gt is not None:
        if gt.is_file():
            ground_truth = read_gt_csv(gt, len(images), size)
        elif gt.is_dir():
            missing = [gt / p.name for p in images if not (gt / p.name).is_file()]
            if missing:
                raise DataError(f"ground truth {missing[0]} is missing for {image_dir / missing[0].name}")
            ground_truth = torch.stack([read_rgb(gt / p.name, size) for p in images])
    return InpaintSet(
        masked=torch.stack(masked),
        masks=torch.stack(masks),
        names=[p.with_suffix(".png").name for p in images],
        ground_truth=ground_truth,
    )


def _check_mask_size(mask: Path, size: int, image: Path) -> None:
    """Check a mask's size up front so the error names both files."""
    try:
        with Image.open(mask) as im:
            w, h = im.size
    except OSError as e:
        raise DataError(f"cannot read mask {mask} (for image {image}): {e}") from e
    if (w, h) != (size, size):
        raise DataError(f"mask {mask} is {w}x{h} but image {image} needs a {size}x{size} mask")


class CatFacesDataModule(ImageDataModule):
    """Cat faces: unconditional training images plus the lab's inpainting test split."""

    name = "cat_faces"
    num_classes = 0

    def __init__(self, root: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.class_names = ["cat"]

    def check_layout(self) -> None:
        if not self.root.is_dir():
            raise DataError(f"cat-faces root {self.root} does not exist; {FETCH_HINT}")
        for split in ("train", "val"):
            if not (self.root / split).is_dir():
                raise DataError(f"missing split folder {self.root / split} (expected {split}/*.png); {FETCH_HINT}")

    def prepare_data(self) -> None:
        self.check_layout()

    def load_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_layout()
        paths = _files(self.root / split)
        if not paths:
            raise DataError(f"no images in {self.root / split}; {FETCH_HINT}")
        images, _ = load_images(paths, self.image_size, self.resize, self.skip_corrupt)
        return images, torch.zeros(len(images), dtype=torch.long)

    def inpaint_split(self) -> InpaintSet:
        gt: Path | None = None
        if (self.root / "test_gt").is_dir():
            gt = self.root / "test_gt"
        elif (self.root / "test_gt.csv").is_file():
            gt = self.root / "test_gt.csv"
        return load_inpaint_pairs(self.root / "masked_image", self.root / "mask64", self.image_size, gt)
