"""Token cache for stage 2: each split is encoded once by the frozen tokenizer and kept on disk.

The cache file's name carries a hash of the tokenizer's weights and of the split's pixels, so it is reused
exactly while both are unchanged and rebuilt (into a new file) when either changes. With horizontal flips
on, the flipped images are tokenized too and training draws either version.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tinymaskgit.data.base import ImageDataModule
from tinymaskgit.data.images import to_float
from tinymaskgit.models.vqvae import VQVAE

log = logging.getLogger(__name__)


def fingerprint_module(net: nn.Module) -> str:
    """sha256 of a module's state dict (names, shapes and values)."""
    h = hashlib.sha256()
    for name, t in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def fingerprint_tensor(t: torch.Tensor) -> str:
    """sha256 of a tensor's bytes."""
    return hashlib.sha256(t.contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()


@torch.no_grad()
def encode_images(tokenizer: VQVAE, images: torch.Tensor, batch_size: int, device: str) -> torch.Tensor:
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
        tokenizer: VQVAE,
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

    def cache_path(self, split: str) -> Path:
        """Where the tokens of ``split`` live for this tokenizer and these pixels (hashed once per split)."""
        if split in self._paths:
            return self._paths[split]
        if self._tok_hash is None:
            self._tok_hash = fingerprint_module(self.tokenizer)[:16]
        data_hash = fingerprint_tensor(self.images.dataset(split).images)[:16]
        flip = "-flip" if self.images.hflip and split == "train" else ""
        path = self.cache_dir / f"{self.images.name}-{split}-tok{self._tok_hash}-data{data_hash}{flip}.pt"
        self._paths[split] = path
        return path

    def _build(self, split: str) -> Path:
        path = self.cache_path(split)
        if path.is_file():
            log.info("token cache hit: %s", path)
            return path
        ds = self.images.dataset(split)
        log.info("tokenizing %d %s images -> %s", len(ds), split, path)
        entry = {
            "tokens": encode_images(self.tokenizer, ds.images, self.encode_batch_size, self.encode_device),
            "labels": ds.labels.clone(),
        }
        if path.name.endswith("-flip.pt"):
            entry["flipped"] = encode_images(
                self.tokenizer, ds.images.flip(-1), self.encode_batch_size, self.encode_device
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(entry, tmp)
        tmp.replace(path)  # atomic: a killed run never leaves a half-written cache
        return path

    def prepare_data(self) -> None:
        self.images.prepare_data()
        for split in ("train", "val"):
            self._build(split)

    def setup(self, stage: str | None = None) -> None:
        for split in ("train", "val"):
            if split not in self.splits:
                entry = torch.load(self._build(split), map_location="cpu", weights_only=True)
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
