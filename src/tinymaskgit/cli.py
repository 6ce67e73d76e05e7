"""Shared behaviour of the entry points: user errors become one line on stderr and exit status 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from tinymaskgit.errors import TinyMaskGITError


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
