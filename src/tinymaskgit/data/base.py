"""The shared LightningDataModule: splits held in memory, the same loaders for every dataset."""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch
from torch.utils.data import DataLoader

from tinymaskgit.data.images import ImageDataset
from tinymaskgit.errors import ConfigError, DataError


@dataclass
class InpaintSet:
    """An inpainting split: masked images, their pixel masks (True = known) and, when shipped, ground truth."""

    masked: torch.Tensor  # (N, 3, S, S) uint8
    masks: torch.Tensor  # (N, 1, S, S) bool
    names: list[str]  # output file name of each image
    ground_truth: torch.Tensor | None = None  # (N, 3, S, S) uint8


class ImageDataModule(L.LightningDataModule):
    """Base class: subclasses implement ``load_split`` and may override ``inpaint_split``.

    ``num_classes`` is 0 for an unconditional dataset (one label, 0, for every image).
    """

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        hflip: bool = True,
        image_size: int = 64,
        resize: bool = False,
        skip_corrupt: bool = False,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ConfigError(f"data.batch_size must be a positive integer, got {batch_size}")
        if num_workers < 0:
            raise ConfigError(f"data.num_workers must be >= 0, got {num_workers}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.hflip = hflip
        self.image_size = image_size
        self.resize = resize
        self.skip_corrupt = skip_corrupt
        self.pin_memory = pin_memory
        self.splits: dict[str, ImageDataset] = {}

    # -- what a dataset provides -------------------------------------------------------------------
    num_classes: int = 0
    class_names: list[str] = []
    name: str = "images"

    def load_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images (N, 3, S, S), int64 labels (N,)) of ``split`` ('train' or 'val')."""
        raise NotImplementedError

    def inpaint_split(self) -> InpaintSet:
        """The inpainting test split, for datasets that ship one."""
        raise DataError(f"dataset '{self.name}' has no inpainting split; use data=cat_faces or data=generated")

    # -- Lightning hooks -------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            if split not in self.splits:
                images, labels = self.load_split(split)
                self.splits[split] = ImageDataset(images, labels, hflip=self.hflip and split == "train")

    def dataset(self, split: str) -> ImageDataset:
        """The in-memory dataset of a split, loading it on first use."""
        self.setup()
        return self.splits[split]

    def _loader(self, split: str, shuffle: bool, drop_last: bool = False) -> DataLoader:
        return DataLoader(
            self.dataset(split),
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True, drop_last=len(self.dataset("train")) > self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)
