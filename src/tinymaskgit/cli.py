"""How an entry point runs: user errors become one line on stderr and exit status 2; the device; the output folder."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tinymaskgit.errors import ConfigError, TinyMaskGITError


def user_error(exc: BaseException) -> TinyMaskGITError | None:
    """The TinyMaskGITError behind ``exc`` (Hydra's instantiate wraps the errors of constructors)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, TinyMaskGITError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return None


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn``; a TinyMaskGITError is printed as ``error: <message>`` and exits with status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            err = user_error(e)
            if err is None:
                raise
            print(f"error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)

    return wrapper


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when available, else cpu; anything else as given (checked to exist)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA GPU is visible; use device=cpu or device=auto")
    return dev


def prepare_out_dir(path: str | Path, overwrite: bool) -> Path:
    """Create ``path``; refuse an existing non-empty folder unless ``overwrite`` (nothing is deleted)."""
    out = Path(path).expanduser()
    if out.is_dir() and any(p.name != ".hydra" and p.name[-4:] != ".log" for p in out.iterdir()) and not overwrite:
        raise ConfigError(f"out_dir {out} already holds files; choose another out_dir or pass overwrite=true")
    out.mkdir(parents=True, exist_ok=True)
    return out
