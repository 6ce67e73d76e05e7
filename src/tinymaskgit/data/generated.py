"""A generated dataset that needs no download: the default of `make demo` and of the tests.

Ten classes a person tells apart at a glance (a shape and a colour family each); position, size, hue,
background and texture vary within a class. It is written to disk in the tiny-imagenet layout
(``root/tiny-imagenet``) plus an inpainting split with free-form masks in the cat-faces layout
(``root/inpaint``), so the real loaders read it. Everything is deterministic from the seed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from tinymaskgit.data.base import InpaintSet
from tinymaskgit.data.cat_faces import load_inpaint_pairs
from tinymaskgit.data.tiny_imagenet import TinyImageNetDataModule
from tinymaskgit.errors import DataError

# (wnid-like id, name, base hue in degrees, shape)
CLASSES = [
    ("g0000000", "red disc", 0, "disc"),
    ("g0000001", "green square", 120, "square"),
    ("g0000002", "blue triangle", 225, "triangle"),
    ("g0000003", "yellow ring", 55, "ring"),
    ("g0000004", "purple cross", 280, "cross"),
    ("g0000005", "orange stripes", 28, "stripes"),
    ("g0000006", "cyan checkerboard", 185, "checker"),
    ("g0000007", "white star", -1, "star"),
    ("g0000008", "pink diagonal bars", 330, "diagonal"),
    ("g0000009", "lime dots", 90, "dots"),
]
SCALE = 2  # draw at 2x and downsample for anti-aliased edges
MARKER = "generated.json"


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    """HSV (h in degrees) -> RGB bytes."""
    h = (h % 360) / 60.0
    c = v * s
    x = c * (1 - abs(h % 2 - 1))
    r, g, b = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(h) % 6]
    m = v - c
    return tuple(int(round(255 * (t + m))) for t in (r, g, b))  # type: ignore[return-value]


def draw_image(cls: int, rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """One (size, size, 3) uint8 image of class ``cls``."""
    _, _, hue, shape = CLASSES[cls]
    s = size * SCALE
    bg_h = rng.uniform(0, 360)
    bg = _hsv(bg_h, rng.uniform(0.1, 0.4), rng.uniform(0.1, 0.35))
    im = Image.new("RGB", (s, s), bg)
    d = ImageDraw.Draw(im)
    if hue < 0:
        fg = _hsv(0, 0.0, rng.uniform(0.85, 1.0))
    else:
        fg = _hsv(hue + rng.uniform(-12, 12), rng.uniform(0.65, 1.0), rng.uniform(0.75, 1.0))
    r = rng.uniform(0.22, 0.38) * s
    cx, cy = rng.uniform(r, s - r), rng.uniform(r, s - r)
    if shape == "disc":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif shape == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fg, width=int(r * rng.uniform(0.25, 0.4)))
    elif shape in ("square", "triangle", "star"):
        rot = rng.uniform(0, 2 * math.pi)
        if shape == "square":
            pts = [(r, a * math.pi / 2 + rot) for a in range(4)]
        elif shape == "triangle":
            pts = [(r * 1.15, a * 2 * math.pi / 3 + rot) for a in range(3)]
        else:
            pts = [(r * (1.0 if a % 2 == 0 else 0.45), a * math.pi / 5 + rot) for a in range(10)]
        d.polygon([(cx + rr * math.cos(a), cy + rr * math.sin(a)) for rr, a in pts], fill=fg)
    elif shape == "cross":
        w = r * rng.uniform(0.3, 0.45)
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=fg)
        d.rectangle([cx - w, cy - r, cx + w, cy + r], fill=fg)
    elif shape == "stripes":
        period = rng.uniform(0.12, 0.22) * s
        y = rng.uniform(0, period)
        while y < s:
            d.rectangle([0, y, s, y + period / 2], fill=fg)
            y += period
    elif shape == "checker":
        cell = rng.uniform(0.12, 0.2) * s
        ox, oy = rng.uniform(0, cell, 2)
        for i in range(-1, int(s / cell) + 2):
            for j in range(-1, int(s / cell) + 2):
                if (i + j) % 2 == 0:
                    x0, y0 = ox + i * cell, oy + j * cell
                    d.rectangle([x0, y0, x0 + cell, y0 + cell], fill=fg)
    elif shape == "diagonal":
        period = rng.uniform(0.15, 0.25) * s
        w = period * 0.45
        off = rng.uniform(0, period)
        for k in range(-int(2 * s / period) - 2, int(2 * s / period) + 2):
            x0 = off + k * period
            d.polygon([(x0, 0), (x0 + w, 0), (x0 + w + s, s), (x0 + s, s)], fill=fg)
    elif shape == "dots":
        for _ in range(int(rng.integers(5, 10))):
            rr = rng.uniform(0.05, 0.1) * s
            x, y = rng.uniform(rr, s - rr, 2)
            d.ellipse([x - rr, y - rr, x + rr, y + rr], fill=fg)
    im = im.resize((size, size), Image.Resampling.LANCZOS)
    arr = np.asarray(im, dtype=np.float64) + rng.normal(0, 4.0, (size, size, 3))  # faint sensor-like noise
    return np.clip(np.round(arr), 0, 255).astype(np.uint8)


def draw_mask(rng: np.random.Generator, size: int = 64, lo: float = 0.15, hi: float = 0.35) -> np.ndarray:
    """A free-form brush-stroke mask: (size, size) uint8, 0 = missing, 255 = known; 15-35% missing."""
    target = rng.uniform(lo, hi)
    while True:
        m = Image.new("L", (size, size), 255)
        d = ImageDraw.Draw(m)
        missing = 0.0
        while missing < target:
            x, y = rng.uniform(0, size, 2)
            width = int(rng.integers(4, 10))
            for _ in range(int(rng.integers(2, 6))):
                a = rng.uniform(0, 2 * math.pi)
                length = rng.uniform(6, 18)
                nx = float(np.clip(x + length * math.cos(a), 0, size - 1))
                ny = float(np.clip(y + length * math.sin(a), 0, size - 1))
                d.line([(x, y), (nx, ny)], fill=0, width=width)
                d.ellipse([nx - width / 2, ny - width / 2, nx + width / 2, ny + width / 2], fill=0)
                x, y = nx, ny
            missing = float((np.asarray(m) == 0).mean())
        if missing <= hi:
            return np.asarray(m, dtype=np.uint8).copy()


def generate(root: Path, seed: int = 0, train_per_class: int = 200, val_per_class: int = 20, inpaint: int = 50) -> None:
    """Write the dataset under ``root`` (refuses to touch a folder made with other settings)."""
    params = dict(seed=seed, train_per_class=train_per_class, val_per_class=val_per_class, inpaint=inpaint, version=1)
    marker = root / MARKER
    if marker.is_file():
        if json.loads(marker.read_text()) == params:
            return
        raise DataError(
            f"{root} holds generated data made with other settings ({marker}); "
            "set data.root to another folder or delete that one"
        )
    if root.exists() and any(root.iterdir()):
        raise DataError(f"{root} exists and is not generated data; set data.root to an empty or new folder")
    rng = np.random.default_rng(seed)
    tin = root / "tiny-imagenet"
    (tin / "val" / "images").mkdir(parents=True, exist_ok=True)
    (tin / "wnids.txt").write_text("".join(f"{w}\n" for w, *_ in CLASSES))
    (tin / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n, *_ in CLASSES))
    ann = []
    for c, (wnid, *_) in enumerate(CLASSES):
        folder = tin / "train" / wnid / "images"
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(train_per_class):
            Image.fromarray(draw_image(c, rng)).save(folder / f"{wnid}_{k}.JPEG", quality=95)
    k = 0
    for _ in range(val_per_class):
        for c, (wnid, *_) in enumerate(CLASSES):
            Image.fromarray(draw_image(c, rng)).save(tin / "val" / "images" / f"val_{k}.JPEG", quality=95)
            ann.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t63\t63\n")
            k += 1
    (tin / "val" / "val_annotations.txt").write_text("".join(ann))

    inp = root / "inpaint"
    for sub in ("train", "val", "masked_image", "mask64", "test_gt"):
        (inp / sub).mkdir(parents=True, exist_ok=True)
    n_classes = len(CLASSES)
    for split, n in (("train", train_per_class * n_classes // 4), ("val", val_per_class * n_classes // 4)):
        for i in range(n):
            img = draw_image(int(rng.integers(n_classes)), rng)
            Image.fromarray(img).save(inp / split / f"image_{i:05d}.png")
    for i in range(inpaint):
        gt = draw_image(int(rng.integers(n_classes)), rng)
        mask = draw_mask(rng)
        masked = gt.copy()
        masked[mask == 0] = 128
        Image.fromarray(gt).save(inp / "test_gt" / f"image_{i:03d}.png")
        Image.fromarray(masked).save(inp / "masked_image" / f"image_{i:03d}.png")
        Image.fromarray(mask, mode="L").save(inp / "mask64" / f"mask_{i:03d}.png")
    marker.write_text(json.dumps(params))


class GeneratedDataModule(TinyImageNetDataModule):
    """The generated shapes, read through the tiny-imagenet loader; generated on first use."""

    name = "generated"

    def __init__(
        self,
        root: str,
        seed: int = 0,
        train_per_class: int = 200,
        val_per_class: int = 20,
        inpaint: int = 50,
        **kwargs,
    ) -> None:
        self.base = Path(root).expanduser()
        super().__init__(root=str(self.base / "tiny-imagenet"), classes=[w for w, *_ in CLASSES], **kwargs)
        self.gen_args = dict(seed=seed, train_per_class=train_per_class, val_per_class=val_per_class, inpaint=inpaint)

    def check_layout(self) -> None:
        generate(self.base, **self.gen_args)  # type: ignore[arg-type]
        super().check_layout()

    def inpaint_split(self) -> InpaintSet:
        self.check_layout()
        inp = self.base / "inpaint"
        return load_inpaint_pairs(inp / "masked_image", inp / "mask64", self.image_size, inp / "test_gt")
