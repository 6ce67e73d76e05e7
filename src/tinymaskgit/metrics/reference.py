"""Features of real image sets, cached on disk per dataset, split, backend (and its weights) and pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tinymaskgit.cache import cache_key, cached
from tinymaskgit.metrics.features import Backend


def cached_features(
    backend: Backend, images: torch.Tensor, cache_dir: str | Path | None, dataset: str, split: str
) -> np.ndarray:
    """Backend features of ``images`` (uint8), read from / written to the cache when ``cache_dir`` is set.

    The file name holds the dataset, split and backend name, and a hash of the backend's weights and the
    pixels, so a change in any of them misses the cache (and writes a new file; old ones are kept). A file
    that is unreadable or holds another number of rows is rebuilt with a warning.
    """
    if cache_dir is None:
        return backend.features(images).numpy()
    key = cache_key(backend=backend.name, weights=backend.weights_hash, pixels=images)[:20]
    path = Path(cache_dir).expanduser() / f"{dataset}-{split}-{backend.name}-{key}.npy"

    def valid(feats: np.ndarray) -> bool:
        return feats.ndim == 2 and len(feats) == len(images) and bool(np.isfinite(feats).all())

    return cached(path, lambda: backend.features(images).numpy(), valid)
