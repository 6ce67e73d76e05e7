"""On-disk caches (stage-2 tokens, reference features): content hashes for their keys, atomic writes, and
reads that treat a truncated or foreign file as a miss.

A cache file is named by a hash of everything its contents depend on, so a change in any input misses the
cache and writes a new file (old files are kept). Files are written to a temporary name and renamed, so a
killed run never leaves a half-written file under the real name; a file that cannot be read all the same
(a full disk, a copy cut short) is reported in one warning and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)
T = TypeVar("T")


def hash_tensor(t: torch.Tensor) -> str:
    """sha256 of a tensor's dtype, shape and bytes."""
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def hash_module(net: nn.Module) -> str:
    """sha256 of a module's state dict (names, shapes and values)."""
    h = hashlib.sha256()
    for name, t in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(hash_tensor(t).encode())
    return h.hexdigest()


def hash_file(path: str | Path, n: int = 12) -> str:
    """First ``n`` hex digits of a file's sha256."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def cache_key(**parts: Any) -> str:
    """sha256 over named parts: tensors by content, anything else by its JSON form."""
    h = hashlib.sha256()
    for name in sorted(parts):
        value = parts[name]
        h.update(name.encode())
        h.update(hash_tensor(value).encode() if isinstance(value, torch.Tensor) else json.dumps(value).encode())
    return h.hexdigest()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_torch(path: Path) -> Any:
    return torch.load(path, map_location="cpu", weights_only=True)


def _read_numpy(path: Path) -> Any:
    return np.load(path, allow_pickle=False)


def _write_torch(obj: Any) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            torch.save(obj, f)

    return write


def _write_numpy(obj: Any) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            np.save(f, obj)

    return write


def cached(path: Path, build: Callable[[], T], valid: Callable[[T], bool] | None = None) -> T:
    """The object stored at ``path`` (``.pt``: torch, ``.npy``: numpy), or ``build()`` written there.

    A file that cannot be read, or whose contents ``valid`` rejects, is rebuilt with one warning.
    """
    numpy = path.suffix == ".npy"
    if path.is_file():
        try:
            obj = (_read_numpy if numpy else _read_torch)(path)
            if valid is None or valid(obj):
                log.info("cache hit: %s", path)
                return obj
            reason = "its contents do not match what it should hold"
        except Exception as e:  # a truncated or foreign file raises many types
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        warnings.warn(f"cache file {path} is unreadable ({reason}); rebuilding it", stacklevel=2)
    obj = build()
    atomic_write(path, (_write_numpy if numpy else _write_torch)(obj))
    return obj
