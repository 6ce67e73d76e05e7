"""Token cache for stage 2: each split is encoded once by the frozen tokenizer and kept on disk.

The cache file is named by a hash of everything it holds depends on: the tokenizer's weights, the split's
pixels and labels, the class list and whether flipped images are tokenized too. It is reused exactly while
all of them are unchanged and rebuilt (into a new file) when any changes; an unreadable file is rebuilt
with a warning. With horizontal flips on, the flipped images are tokenized too and training draws either.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from tinymaskgit.cache import cache_key, cached, hash_module
from tinymaskgit.data.base import ImageDataModule
from tinymaskgit.data.images import to_float
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


class TokenDataset(Dataset):
    """Items are (token ids (N,), label); with ``flipped`` given, each item is the flip half the time."""

    def __init__(self, tokens: torch.Tensor, labels: torch.Tensor, flipped: torch.Tensor | None = None) -> None:
        self.tokens, self.labels, self.flipped = tokens, labels, flipped

    def __len__(self) -> int:
        return len(self.tokens)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.flipped is not None and torch.rand(()) < 0.5:
            return self.flipped[i], self.labels[i]
        return self.tokens[i], self.labels[i]


class TokenDataModule(L.LightningDataModule):
    """Wraps an image DataModule: serves the tokenizer's ids of its splits, cached under ``cache_dir``."""

    def __init__(
        self,
        images: ImageDataModule,
        tokenizer: Tokenizer,
        cache_dir: str,
        encode_batch_size: int = 128,
        encode_device: str | None = None,
    ) -> None:
        super().__init__()
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
            )

        return cached(self.cache_path(split), lambda: self._encode(split), valid)

    def prepare_data(self) -> None:
        self.images.prepare_data()
        self.setup()  # builds or reads each split's cache once; later setup() calls reuse what it read

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            if split not in self.splits:
                entry = self._load(split)
                self.splits[split] = TokenDataset(entry["tokens"], entry["labels"], entry.get("flipped"))

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
