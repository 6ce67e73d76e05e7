"""What the web page does, as plain functions: load a checkpoint once, generate, inpaint, read and run sweeps.

Gradio is only the view (``page.py``); these functions take numbers, numpy arrays and paths and return the
same, so tests call them without a server. Bad input raises a TinyMaskGITError whose one-line message the
page shows instead of a traceback.

Dimension legend: S image size, L latent grid side, D display scale of the painting canvas.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torchvision.utils import make_grid

from tinymaskgit.cli import class_ids_from_names, slug
from tinymaskgit.data.images import to_float, to_uint8
from tinymaskgit.errors import CheckpointError, ConfigError, DataError, TinyMaskGITError
from tinymaskgit.inference import MaskGIT, load_maskgit, read_checkpoint
from tinymaskgit.pictures import mask_image, save_png, save_step_strip, step_frames
from tinymaskgit.sampling.decode import DecodeSettings, settings_from
from tinymaskgit.sampling.generate import generate, inpaint, token_mask

UNCONDITIONAL = "unconditional"
DISPLAY = 4  # the painting canvas shows the S-px image at D x S so that a brush can hit single pixels


@dataclass
class Limits:
    """Per-request bounds that keep a 2-core machine responsive (conf/app.yaml: limits)."""

    max_samples: int = 64
    max_steps: int = 32
    gallery: int = 24  # test images offered on the Inpaint tab
    sweep_max_runs: int = 8  # settings combinations per in-page sweep
    sweep_max_per_class: int = 50  # samples per class per combination


def newest_checkpoint(log_dir: Path, stage: str) -> Path | None:
    """The newest ``*/checkpoints/*.ckpt`` under ``log_dir`` of ``stage`` (last.ckpt / best.ckpt preferred)."""
    if not log_dir.is_dir():
        return None
    found = sorted(log_dir.rglob("checkpoints/*.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
    preferred = "best.ckpt" if stage == "classifier" else "last.ckpt"
    found.sort(key=lambda p: p.name != preferred)  # stable: newest preferred file first
    for path in found:
        try:
            read_checkpoint(path, expect_stage=stage)
        except CheckpointError:
            continue
        return path
    return None


def run_config(ckpt: Path) -> Any | None:
    """The config.yaml that training wrote into the checkpoint's run folder, or None."""
    from omegaconf import OmegaConf

    path = ckpt.parent.parent / "config.yaml"
    return OmegaConf.load(path) if path.is_file() else None


def test_images(ckpt: Path, n: int) -> tuple[torch.Tensor, list[str], str]:
    """Up to ``n`` validation images of the checkpoint's dataset (spread over the split), captions, a note."""
    from hydra.utils import instantiate

    cfg = run_config(ckpt)
    if cfg is None or "data" not in cfg:
        return (
            torch.empty(0, 3, 0, 0, dtype=torch.uint8),
            [],
            "no training config beside the checkpoint: upload an image",
        )
    try:
        dm = instantiate(cfg.data)
        val = dm.dataset("val")
    except TinyMaskGITError as e:
        return (
            torch.empty(0, 3, 0, 0, dtype=torch.uint8),
            [],
            f"the checkpoint's dataset is not readable here ({e}); upload an image",
        )
    idx = torch.linspace(0, len(val) - 1, min(n, len(val))).round().long()
    names = list(dm.class_names)
    captions = [f"{names[int(val.labels[i])] if names else 'image'} #{int(i)}" for i in idx]
    return val.images[idx], captions, f"{len(idx)} validation images of {dm.name}"


@dataclass
class Session:
    """One loaded model and what the page offers with it; built once when the server starts."""

    ckpt: Path
    model: MaskGIT
    limits: Limits
    out_dir: Path
    gallery: torch.Tensor = field(default_factory=lambda: torch.empty(0, 3, 0, 0, dtype=torch.uint8))
    captions: list[str] = field(default_factory=list)
    gallery_note: str = ""

    @classmethod
    def load(cls, ckpt: str | Path, device: str | torch.device, limits: Limits, out_dir: Path) -> Session:
        path = Path(ckpt).expanduser()
        model = load_maskgit(path, device)
        images, captions, note = test_images(path, limits.gallery)
        out_dir.mkdir(parents=True, exist_ok=True)
        return cls(path, model, limits, out_dir, images, captions, note)

    @property
    def size(self) -> int:
        return int(self.model.tokenizer.image_size)

    @property
    def class_choices(self) -> list[str]:
        return list(self.model.class_names) or [UNCONDITIONAL]


def page_settings(
    steps: int,
    schedule: str,
    sweet_spot: int | None,
    cfg_weight: float,
    cfg_schedule: str,
    temperature: float,
    precision: str,
    max_steps: int,
) -> DecodeSettings:
    """The page's sampler widgets -> validated DecodeSettings (a sweet spot of 0 or None is off)."""
    steps = int(steps)
    if not 1 <= steps <= max_steps:
        raise ConfigError(f"steps must be between 1 and {max_steps} on this page (limits.max_steps), got {steps}")
    values = dict(schedule=schedule, steps=steps, sweet_spot=int(sweet_spot) if sweet_spot else None)
    values.update(cfg_weight=cfg_weight, cfg_schedule=cfg_schedule, temperature=temperature, precision=precision)
    try:
        return settings_from(values)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def class_ids_for(m: MaskGIT, class_name: str | None, n: int) -> torch.Tensor | None:
    """(n,) ids of the chosen class, or None for an unconditional model or choice."""
    if not m.class_names or class_name in (None, "", UNCONDITIONAL):
        return None
    return torch.full((n,), class_ids_from_names([class_name], m.class_names)[0])


def enlarge(image: np.ndarray, factor: int = DISPLAY) -> np.ndarray:
    """(H, W, C) -> (factor H, factor W, C) by repeating pixels, so that a browser shows them unsmoothed."""
    return image.repeat(factor, 0).repeat(factor, 1)


def as_hwc(images: torch.Tensor, nrow: int) -> np.ndarray:
    """(B, 3, S, S) uint8 -> one (H, W, 3) uint8 grid with white 2-px gaps."""
    grid = make_grid(to_float(images).add(1).div(2), nrow=nrow, padding=2, pad_value=1.0)
    return grid.mul(255).round().byte().permute(1, 2, 0).numpy()


def write_steps(masks: list[torch.Tensor], images: torch.Tensor, path: Path) -> tuple[np.ndarray, Path]:
    """The decoding-step strip as an (H, W, 3) array, and the animated GIF written beside its PNG."""
    frames = step_frames(masks, images)
    save_step_strip(frames, path)
    return to_uint8(make_grid(frames.clamp(-1, 1), nrow=len(frames), padding=2, pad_value=1.0)).permute(
        1, 2, 0
    ).numpy(), path.with_suffix(".gif")


@dataclass
class Generated:
    grid: np.ndarray  # (H, W, 3) uint8
    images: torch.Tensor  # (B, 3, S, S) uint8
    strip: np.ndarray  # (H, W, 3) uint8: token mask above predicted image, one column per step
    gif: Path
    seconds: float


def run_generate(
    session: Session,
    class_name: str | None,
    n: int,
    steps: int,
    schedule: str,
    sweet_spot: int | None,
    cfg_weight: float,
    cfg_schedule: str,
    temperature: float,
    seed: int,
    precision: str = "32",
    trace: int = 0,
) -> Generated:
    """Sample ``n`` images as ``python -m tinymaskgit.sample`` does (same seed and settings, same images)."""
    n = int(n)
    if not 1 <= n <= session.limits.max_samples:
        raise ConfigError(f"samples must be between 1 and {session.limits.max_samples} (limits.max_samples), got {n}")
    if not 0 <= int(trace) < n:
        raise ConfigError(f"the traced sample must be between 0 and {n - 1}, got {trace}")
    settings = page_settings(
        steps, schedule, sweet_spot, cfg_weight, cfg_schedule, temperature, precision, session.limits.max_steps
    )
    m = session.model
    t = time.perf_counter()
    res = generate(m, class_ids_for(m, class_name, n), n, settings, 64, int(seed), [int(trace)])
    seconds = time.perf_counter() - t
    stamp = time.strftime("%H%M%S") + f"_{time.perf_counter_ns() % 10**6:06d}"
    strip, gif = write_steps(
        res.step_masks[0], res.step_images[0], session.out_dir / "generate" / f"{slug(class_name or 'x')}_{stamp}.png"
    )
    return Generated(as_hwc(res.images, min(n, 8)), res.images, strip, gif, seconds)


# -- inpainting ---------------------------------------------------------------------------------------------


def fit_picture(image: Image.Image, size: int) -> tuple[torch.Tensor, str]:
    """Any picture -> (3, S, S) uint8: centre-cropped to a square, then resized; the note says what changed."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    note = ""
    if w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        rgb = rgb.crop((left, top, left + side, top + side))
        note = f"centre-cropped from {w}x{h} to {side}x{side}"
    if rgb.size != (size, size):
        note = (note + ", then " if note else "") + f"resized from {rgb.size[0]}x{rgb.size[1]} to {size}x{size}"
        rgb = rgb.resize((size, size), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1), note


def read_upload(path: str | Path, size: int) -> tuple[torch.Tensor, str]:
    """An uploaded file -> (3, S, S) uint8 and a note; a file that is not a picture raises DataError."""
    p = Path(path)
    try:
        with Image.open(p) as f:
            f.load()
            return fit_picture(f, size)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(
            f"{p.name} is not an image this page can read ({type(e).__name__}); upload a PNG or JPEG"
        ) from None


def canvas(image: torch.Tensor) -> dict[str, Any]:
    """A (3, S, S) uint8 image as the painting canvas's value: shown at D x S with nearest-neighbour pixels."""
    big = image.repeat_interleave(DISPLAY, 1).repeat_interleave(DISPLAY, 2).permute(1, 2, 0).numpy()  # (D*S, D*S, 3)
    return {"background": big, "layers": [], "composite": big}


def from_canvas(value: dict[str, Any] | None, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The painting canvas's value -> (3, S, S) uint8 image and (1, S, S) bool known pixels.

    A pixel is part of the hole when any of its D x D display block carries paint on a layer.
    """
    if not value or value.get("background") is None:
        raise DataError("no image on the canvas: pick a test image or upload one first")
    bg = np.asarray(value["background"])[..., :3].astype(np.uint8)  # (H, W, 3)
    h, w = bg.shape[:2]
    if h == w and h % size == 0:  # the canvas this page made: every (h / S)-th pixel is the image, exactly
        image = torch.from_numpy(bg[:: h // size, :: h // size].copy()).permute(2, 0, 1)
    else:
        image, _ = fit_picture(Image.fromarray(bg), size)
    painted = np.zeros((h, w), dtype=bool)
    for layer in value.get("layers") or []:
        a = np.asarray(layer)
        if a.shape[:2] == (h, w):
            painted |= a[..., 3] > 0 if a.ndim == 3 and a.shape[-1] == 4 else a.reshape(h, w, -1).any(-1)
    hole = torch.from_numpy(painted).float()[None, None]  # (1, 1, H, W)
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    hole = F.adaptive_max_pool2d(hole[..., top : top + side, left : left + side], size)[0]  # (1, S, S)
    return image, hole < 0.5


@dataclass
class Inpainted:
    masked: np.ndarray  # (S, S, 3) uint8: the input with its hole greyed
    token_mask: np.ndarray  # (S, S, 3) uint8: the tokens to generate in black
    strip: np.ndarray
    gif: Path
    result: np.ndarray  # (S, S, 3) uint8, known pixels pasted back
    png: Path
    seconds: float
    unknown_tokens: int


def run_inpaint(
    session: Session,
    image: torch.Tensor,
    known: torch.Tensor,
    steps: int,
    schedule: str,
    cfg_weight: float,
    temperature: float,
    seed: int,
    class_name: str | None = None,
    mask_threshold: float = 0.0,
    precision: str = "32",
) -> Inpainted:
    """Complete ``image`` (3, S, S) uint8 where ``known`` (1, S, S) is False, as ``python -m tinymaskgit.inpaint``."""
    if known.all():
        raise DataError("the mask is empty: paint the part of the image to regenerate with the brush")
    if not 0 <= float(mask_threshold) < 1:
        raise ConfigError(f"mask_threshold must be in [0, 1), got {mask_threshold}")
    settings = page_settings(
        steps, schedule, None, cfg_weight, "constant", temperature, precision, session.limits.max_steps
    )
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
    stamp = time.strftime("%H%M%S") + f"_{time.perf_counter_ns() % 10**6:06d}"
    folder = session.out_dir / "inpaint"
    strip, gif = write_steps(res.step_masks[0], res.step_images[0], folder / f"steps_{stamp}.png")
    png = folder / f"inpainted_{stamp}.png"
    save_png(res.images[0], png)
    grey = torch.where(known, image, torch.full_like(image, 128))
    tokens = to_uint8(mask_image(unknown.view(side, side), session.size))
    hwc = lambda x: x.permute(1, 2, 0).numpy()  # noqa: E731
    return Inpainted(hwc(grey), hwc(tokens), strip, gif, hwc(res.images[0]), png, seconds, int(unknown.sum()))


# -- comparing sampler settings ----------------------------------------------------------------------------


def newest_sweep(log_dir: Path) -> Path | None:
    """The newest folder under ``log_dir`` that holds a ``make fid-sweep`` table (fid_sweep.csv)."""
    found = sorted(log_dir.rglob("fid_sweep.csv"), key=lambda p: p.stat().st_mtime) if log_dir.is_dir() else []
    return found[-1].parent if found else None


def read_sweep(folder: str | Path) -> tuple[list[str], list[list[Any]], Path | None]:
    """A sweep folder's table (columns, rows sorted best first) and its plot, if written."""
    import csv

    d = Path(str(folder).strip()).expanduser()
    table = d / "fid_sweep.csv"
    if not table.is_file():
        raise DataError(f"{d} holds no fid_sweep.csv; give the folder of a `make fid-sweep` run (its sweep dir)")
    with table.open() as f:
        rows = list(csv.DictReader(f))
    columns = [
        "schedule",
        "steps",
        "sweet_spot",
        "cfg_weight",
        "metric",
        "value",
        "kid",
        "class_acc",
        "n_fake",
        "wall_s",
    ]
    rows.sort(key=lambda r: float(r["value"]) if r.get("value") else float("inf"))
    plot = d / "fid_sweep.png"
    return columns, [[shown_value(c, r.get(c, "")) for c in columns] for r in rows], plot if plot.is_file() else None


def shown_value(column: str, text: str) -> str:
    """A sweep cell as a person reads it: 4 significant digits, class accuracy in percent."""
    try:
        x = float(text)
    except ValueError:
        return text
    if column in ("steps", "n_fake"):
        return str(int(x))
    return f"{x:.1%}" if column == "class_acc" else f"{x:.4g}"


def sweep_grid(
    schedules: list[str], steps: list[int], cfg_weights: list[float], limits: Limits
) -> list[dict[str, Any]]:
    """Every combination of the chosen settings, refused when it exceeds ``limits.sweep_max_runs``."""
    if not schedules or not steps or not cfg_weights:
        raise ConfigError("pick at least one schedule, one T and one CFG weight")
    grid = [
        {"schedule": s, "steps": int(t), "cfg_weight": float(w)}
        for s, t, w in itertools.product(schedules, steps, cfg_weights)
    ]
    if len(grid) > limits.sweep_max_runs:
        raise ConfigError(
            f"{len(grid)} combinations asked, this page runs at most {limits.sweep_max_runs} "
            "(limits.sweep_max_runs); use `make fid-sweep` for a larger grid"
        )
    return grid


def run_sweep(
    session: Session,
    grid: list[dict[str, Any]],
    n_per_class: int,
    classifier_ckpt: str | Path | None,
    sweep_dir: Path,
    root_dir: Path,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Evaluate each combination of ``grid`` as ``make fid-sweep`` does; writes fid_sweep.{csv,md,png}.

    ``progress(done, total)`` is called before each combination and at the end.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf, open_dict

    from tinymaskgit.evaluate import evaluate
    from tinymaskgit.sweep import write_sweep

    if not 1 <= int(n_per_class) <= session.limits.sweep_max_per_class:
        raise ConfigError(f"samples per class must be between 1 and {session.limits.sweep_max_per_class}")
    if not classifier_ckpt:
        raise ConfigError(
            "no reference classifier found: train one (`make demo` does) or start the page with classifier_ckpt=..."
        )
    run_cfg = run_config(session.ckpt)
    if run_cfg is None or "data" not in run_cfg:
        raise ConfigError(f"no config.yaml beside {session.ckpt.parent}: the sweep needs the model's dataset")
    conf_dir = str(Path(__file__).resolve().parents[1] / "conf")
    for i, combo in enumerate(grid):
        if progress:
            progress(i, len(grid))
        overrides = [f"{k}={v}" for k, v in combo.items()]  # schedule=<name> picks the schedule group
        overrides += [
            "protocol=generation",
            f"ckpt={session.ckpt}",
            "eval.backend=classifier",
            f"eval.classifier_ckpt={classifier_ckpt}",
            f"n_per_class={int(n_per_class)}",
            "per_class=false",
            f"device={next(session.model.net.parameters()).device}",
            f"paths.root_dir={root_dir}",  # the reference-feature cache of the other entry points
            f"paths.output_dir={sweep_dir / str(i)}",
            f"out_dir={sweep_dir / str(i)}",
            "overwrite=true",
        ]
        if GlobalHydra.instance().is_initialized():  # inside the page's @hydra.main: the same conf/ is searched
            cfg = compose(config_name="evaluate", overrides=overrides)
        else:
            with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
                cfg = compose(config_name="evaluate", overrides=overrides)
        with open_dict(cfg):
            cfg.data = OmegaConf.merge(run_cfg.data, {})
        evaluate(cfg)
    if progress:
        progress(len(grid), len(grid))
    write_sweep(sweep_dir)
    return sweep_dir
