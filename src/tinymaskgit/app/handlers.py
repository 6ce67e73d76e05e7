"""What the page does, as plain functions: generate and inpaint with the loaded model (and, re-exported here
for the page and the tests, the session, canvas and sweep helpers of the sibling modules).

Gradio is only the view (``page.py``); these functions take numbers, tensors and paths and return the same,
so tests call them without a server. Bad input raises a TinyMaskGITError whose one-line message the page
shows instead of a traceback.

Dimension legend: S image size, L latent grid side, N = L * L tokens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tinymaskgit.app.canvas import DISPLAY, as_hwc, canvas, enlarge, fit_picture, from_canvas, read_upload
from tinymaskgit.app.session import UNCONDITIONAL, Limits, Session, newest_checkpoint, run_config, test_images
from tinymaskgit.app.sweeps import newest_sweep, read_sweep, run_sweep, sweep_grid
from tinymaskgit.data.images import to_uint8
from tinymaskgit.errors import ConfigError, DataError
from tinymaskgit.inference import MaskGIT
from tinymaskgit.naming import class_ids_from_names, slug
from tinymaskgit.pictures import mask_image, save_png, save_step_strip, step_frames
from tinymaskgit.sampling.decode import DecodeSettings, settings_from
from tinymaskgit.sampling.generate import generate, inpaint, token_mask

__all__ = [
    "DISPLAY",
    "UNCONDITIONAL",
    "Generated",
    "Inpainted",
    "Limits",
    "Session",
    "as_hwc",
    "canvas",
    "enlarge",
    "fit_picture",
    "from_canvas",
    "newest_checkpoint",
    "newest_sweep",
    "page_settings",
    "read_sweep",
    "read_upload",
    "run_config",
    "run_generate",
    "run_inpaint",
    "run_sweep",
    "sweep_grid",
    "test_images",
]


def page_settings(values: dict[str, Any], max_steps: int) -> DecodeSettings:
    """The page's sampler widgets -> type-checked DecodeSettings (a sweet spot or top-k of 0 is off), T bounded."""
    values = {**values, "sweet_spot": values.get("sweet_spot") or None}
    if "top_k" in values:
        values["top_k"] = int(values["top_k"]) if values["top_k"] else None
    steps = int(values.get("steps", 8))
    if not 1 <= steps <= max_steps:
        raise ConfigError(f"steps must be between 1 and {max_steps} on this page (limits.max_steps), got {steps}")
    try:
        return settings_from(values)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def class_ids_for(m: MaskGIT, class_name: str | None, n: int) -> torch.Tensor | None:
    """(n,) ids of the chosen class, or None for an unconditional model or choice."""
    if not m.class_names or class_name in (None, "", UNCONDITIONAL):
        return None
    return torch.full((n,), class_ids_from_names([class_name], m.class_names)[0])


def write_steps(masks: list[torch.Tensor], images: torch.Tensor, path: Path) -> tuple[np.ndarray, Path]:
    """The decoding-step strip as written to ``path``, as an (H, W, 3) array, and the animated GIF beside it."""
    strip = save_step_strip(step_frames(masks, images), path)
    return strip.permute(1, 2, 0).numpy(), path.with_suffix(".gif")


def stamp() -> str:
    """A file-name stamp unique within the page's run: time of day and microseconds."""
    return time.strftime("%H%M%S") + f"_{time.perf_counter_ns() // 1000 % 10**6:06d}"


@dataclass
class Generated:
    grid: np.ndarray  # (H, W, 3) uint8
    images: torch.Tensor  # (B, 3, S, S) uint8
    strip: np.ndarray  # (H, W, 3) uint8: token mask above predicted image, one column per step
    gif: Path
    seconds: float


def run_generate(
    session: Session, class_name: str | None, n: int, settings: DecodeSettings, seed: int, trace: int = 0
) -> Generated:
    """Sample ``n`` images as ``python -m tinymaskgit.sample`` does (same seed and settings, same images)."""
    n = int(n)
    if not 1 <= n <= session.limits.max_samples:
        raise ConfigError(f"samples must be between 1 and {session.limits.max_samples} (limits.max_samples), got {n}")
    if not 0 <= int(trace) < n:
        raise ConfigError(f"the traced sample must be between 0 and {n - 1}, got {trace}")
    m = session.model
    t = time.perf_counter()
    res = generate(m, class_ids_for(m, class_name, n), n, settings, 64, int(seed), [int(trace)])
    seconds = time.perf_counter() - t
    name = f"{slug(class_name or 'x')}_{stamp()}.png"
    strip, gif = write_steps(res.step_masks[0], res.step_images[0], session.out_dir / "generate" / name)
    return Generated(as_hwc(res.images, min(n, 8)), res.images, strip, gif, seconds)


@dataclass
class Inpainted:
    masked: np.ndarray  # (S, S, 3) uint8: the input with its hole greyed
    token_mask: np.ndarray  # (S, S, 3) uint8: the tokens to generate in black
    strip: np.ndarray  # (H, W, 3) uint8: every decoding step
    gif: Path
    result: np.ndarray  # (S, S, 3) uint8, known pixels pasted back
    png: Path
    seconds: float
    unknown_tokens: int


def run_inpaint(
    session: Session,
    image: torch.Tensor,
    known: torch.Tensor,
    settings: DecodeSettings,
    seed: int,
    class_name: str | None = None,
    mask_threshold: float = 0.0,
) -> Inpainted:
    """Complete ``image`` (3, S, S) uint8 where ``known`` (1, S, S) is False, as ``python -m tinymaskgit.inpaint``."""
    if known.all():
        raise DataError("the mask is empty: paint the part of the image to regenerate with the brush")
    if not 0 <= float(mask_threshold) < 1:
        raise ConfigError(f"mask_threshold must be in [0, 1), got {mask_threshold}")
    m = session.model
    # (1, 3, S, S): the hole painted grey (128), as in the cat-faces lab's masked images
    masked = torch.where(known, image, torch.full_like(image, 128))[None]
    t = time.perf_counter()
    res = inpaint(
        m,
        masked,
        known[None],
        settings,
        class_ids_for(m, class_name, 1),
        float(mask_threshold),
        True,
        1,
        int(seed),
        [0],
    )
    seconds = time.perf_counter() - t
    unknown = token_mask(known[None], m.tokenizer.latent_size, float(mask_threshold))[0]  # (N,)
    side = m.tokenizer.latent_size
    folder, when = session.out_dir / "inpaint", stamp()
    strip, gif = write_steps(res.step_masks[0], res.step_images[0], folder / f"steps_{when}.png")
    png = folder / f"inpainted_{when}.png"
    save_png(res.images[0], png)
    tokens = to_uint8(mask_image(unknown.view(side, side), session.size))
    hwc = lambda x: x.permute(1, 2, 0).numpy()  # noqa: E731
    return Inpainted(hwc(masked[0]), hwc(tokens), strip, gif, hwc(res.images[0]), png, seconds, int(unknown.sum()))
