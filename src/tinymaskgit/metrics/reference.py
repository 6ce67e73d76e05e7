"""Features of real image sets, cached on disk per dataset, split, backend (and its weights) and pixels."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch

from tinymaskgit.data.tokens import fingerprint_tensor
from tinymaskgit.metrics.features import Backend

log = logging.getLogger(__name__)


def cached_features(
    backend: Backend, images: torch.Tensor, cache_dir: str | Path | None, dataset: str, split: str
) -> np.ndarray:
    """Backend features of ``images`` (uint8), read from / written to the cache when ``cache_dir`` is set.

    The file name holds the dataset, split, backend name, backend weights hash and a hash of the pixels,
    so a change in any of them misses the cache (and writes a new file; old ones are kept).
    """
    if cache_dir is None:
        return backend.features(images).numpy()
    key = f"{dataset}-{split}-{backend.name}-{backend.weights_hash}-{fingerprint_tensor(images)[:16]}"
    path = Path(cache_dir).expanduser() / f"{key}.npy"
    if path.is_file():
        log.info("reference features: cache hit %s", path)
        return np.load(path)
    feats = backend.features(images).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, feats)
    tmp.replace(path)
    return feats
