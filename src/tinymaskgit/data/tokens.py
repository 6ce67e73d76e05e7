"""Token cache for stage 2: each split is encoded once by the frozen tokenizer and kept on disk.

The cache file is named by a hash of everything it holds depends on: the tokenizer's weights, the split's
pixels and labels, the class list, whether flipped images are tokenized too and the crop views. It is reused
exactly while all of them are unchanged and rebuilt (into a new file) when any changes; an unreadable file is
rebuilt with a warning. With horizontal flips on, the flipped images are tokenized too; with ``crop_views=V``,
V random crops of every train image as well (token-space augmentation: stage 2 sees more token grids than
there are images). Training draws one of an image's grids at random each time it is served.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from tinymaskgit.cache import cache_key, cached, hash_module
from tinymaskgit.data.base import ImageDataModule
from tinymaskgit.data.images import to_float
from tinymaskgit.errors import ConfigError
from tinymaskgit.models.tokenizer import Tokenizer

log = logging.getLogger(__name__)


@torch.no_grad()
def encode_images(tokenizer: Tokenizer, images: torch.Tensor, batch_size: int, device: str) -> torch.Tensor:
    """(N, 3, S, S) uint8 images -> (N, L*L) int64 token ids."""
    tokenizer = tokenizer.to(device).eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = to_float(images[i : i + batch_size]).to(device)
        out.append(tokenizer.tokenize(x).flatten(1).cpu())  # (b, L*L)
    return torch.cat(out) if out else torch.zeros(0, 0, dtype=torch.long)


def random_crops(images: torch.Tensor, min_scale: float, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """(N, 3, S, S) uint8 -> one random square crop of each, its side drawn in [min_scale, 1] x S, resized back to
    S x S (bilinear, antialiased) and mirrored half the time when ``flip``."""
    n, _, size, _ = images.shape
    sides = (size * (min_scale + (1 - min_scale) * torch.rand(n, generator=generator))).round().long().clamp(1, size)
    mirror = (torch.rand(n, generator=generator) < 0.5) & flip
    out = torch.empty_like(images)
    for i in range(n):
        side = int(sides[i])
        top, left = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=generator))
        crop = images[i : i + 1, :, top : top + side, left : left + side].float()
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        crop = crop.round().clamp(0, 255).to(images.dtype)
        out[i] = crop[0].flip(-1) if mirror[i] else crop[0]
    return out


class TokenDataset(Dataset):
    """Items are (token ids (N,), label): each item one of its image's grids drawn at random: the image's own,
    its flip (``flipped``), or one of its crop views (``crops``, (V, N, L))."""

    def __init__(
        self,
        tokens: torch.Tensor,
        labels: torch.Tensor,
        flipped: torch.Tensor | None = None,
        crops: torch.Tensor | None = None,
    ) -> None:
        self.tokens, self.labels, self.flipped, self.crops = tokens, labels, flipped, crops
        self.views = [tokens] + ([flipped] if flipped is not None else []) + (list(crops) if crops is not None else [])

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        v = int(torch.randint(len(self.views), ())) if len(self.views) > 1 else 0
        return self.views[v][i], self.labels[i]


class TokenDataModule(L.LightningDataModule):
    """Wraps an image DataModule: serves the tokenizer's ids of its splits, cached under ``cache_dir``."""

    def __init__(
        self,
        images: ImageDataModule,
        tokenizer: Tokenizer,
        cache_dir: str,
        encode_batch_size: int = 128,
        encode_device: str | None = None,
        crop_views: int = 0,
        crop_scale: float = 0.8,
    ) -> None:
        super().__init__()
        if int(crop_views) < 0 or not 0 < float(crop_scale) <= 1:
            raise ConfigError(
                f"stage.crop_views={crop_views} stage.crop_scale={crop_scale}: crop_views must be >= 0 (0: no crops) "
                f"and crop_scale in (0, 1] (the smallest crop side as a share of the image's)"
            )
        self.crop_views, self.crop_scale = int(crop_views), float(crop_scale)
        self.images = images
        self.tokenizer = tokenizer
        self.cache_dir = Path(cache_dir).expanduser()
        self.encode_batch_size = encode_batch_size
        self.encode_device = encode_device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.splits: dict[str, TokenDataset] = {}
        self._tok_hash: str | None = None
        self._paths: dict[str, Path] = {}

    @property
    def num_classes(self) -> int:
        return self.images.num_classes

    @property
    def class_names(self) -> list[str]:
        return self.images.class_names

    def _flips(self, split: str) -> bool:
        return bool(self.images.hflip) and split == "train"

    def _crops(self, split: str) -> int:
        return self.crop_views if split == "train" else 0

    def cache_path(self, split: str) -> Path:
        """Where the tokens of ``split`` live: named by a hash of everything they depend on (hashed once)."""
        if split in self._paths:
            return self._paths[split]
        if self._tok_hash is None:
            self._tok_hash = hash_module(self.tokenizer)
        ds = self.images.dataset(split)
        key = cache_key(
            tokenizer=self._tok_hash,
            pixels=ds.images,
            labels=ds.labels,
            classes=list(self.images.class_names),
            flips=self._flips(split),
            **({"crops": [self._crops(split), self.crop_scale]} if self._crops(split) else {}),
        )
        path = self.cache_dir / f"{self.images.name}-{split}-{key[:20]}.pt"
        self._paths[split] = path
        return path

    def _encode(self, split: str) -> dict[str, Any]:
        ds = self.images.dataset(split)
        log.info("tokenizing %d %s images -> %s", len(ds), split, self.cache_path(split))
        entry = {
            "tokens": encode_images(self.tokenizer, ds.images, self.encode_batch_size, self.encode_device),
            "labels": ds.labels.clone(),
        }
        if self._flips(split):
            entry["flipped"] = encode_images(
                self.tokenizer, ds.images.flip(-1), self.encode_batch_size, self.encode_device
            )
        if self._crops(split):
            g = torch.Generator().manual_seed(0)  # the views are part of the cache: the same crops every time
            views = [random_crops(ds.images, self.crop_scale, self._flips(split), g) for _ in range(self._crops(split))]
            entry["crops"] = torch.stack(
                [encode_images(self.tokenizer, v, self.encode_batch_size, self.encode_device) for v in views]
            )
        return entry

    def _load(self, split: str) -> dict[str, Any]:
        ds = self.images.dataset(split)
        n = self.tokenizer.num_tokens

        def valid(entry: Any) -> bool:
            parts = ["tokens", "labels"] + (["flipped"] if self._flips(split) else [])
            return (
                isinstance(entry, dict)
                and all(isinstance(entry.get(k), torch.Tensor) for k in parts)
                and tuple(entry["tokens"].shape) == (len(ds), n)
                and torch.equal(entry["labels"], ds.labels)
                and all(tuple(entry[k].shape) == (len(ds), n) for k in parts if k != "labels")
                and (
                    not self._crops(split)
                    or (
                        isinstance(entry.get("crops"), torch.Tensor)
                        and tuple(entry["crops"].shape) == (self._crops(split), len(ds), n)
                    )
                )
            )

        return cached(self.cache_path(split), lambda: self._encode(split), valid)

    def prepare_data(self) -> None:
        self.images.prepare_data()
        self.setup()  # builds or reads each split's cache once; later setup() calls reuse what it read

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            if split not in self.splits:
                entry = self._load(split)
                self.splits[split] = TokenDataset(
                    entry["tokens"], entry["labels"], entry.get("flipped"), entry.get("crops")
                )

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        ds = self.splits[split]
        return DataLoader(
            ds,
            batch_size=self.images.batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(ds) > self.images.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)
