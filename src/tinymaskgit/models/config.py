"""How every network takes its settings: one config dataclass (as nanoGPT's ``GPTConfig``), or its fields as
keywords (what Hydra's ``_target_`` nodes and the checkpoints' stored configs pass)."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def config_of(cls: type[T], config: T | None, kwargs: dict[str, Any]) -> T:
    """``config`` itself, or ``cls(**kwargs)``; both at once is an error."""
    if config is not None and kwargs:
        raise TypeError(f"pass a {cls.__name__} or its fields as keywords, not both")
    return config if config is not None else cls(**kwargs)


def as_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as the plain dict a checkpoint stores (``Net(**as_dict(net.config))`` rebuilds it)."""
    assert is_dataclass(config) and not isinstance(config, type)
    return asdict(config)
