"""Folders from a real user, inpainted with ``images_dir=... masks_dir=...``: odd image modes, JPEG masks,
masks that hide nothing or everything, names that do not pair, spaces and non-ASCII in paths, and an
interrupted run. Each works or stops with one ``error:`` line naming the file, and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

from tests.conftest import CONF_DIR, run_cli
from tinymaskgit.errors import DataError
from tinymaskgit.inpaint import run_inpaint
from tinymaskgit.sample import sample


def picture(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((64, 64, 3), dtype=np.uint8)
    img[:] = rng.integers(0, 255, 3)
    img[16:48, 16:48] = rng.integers(0, 255, 3)
    return img


def hole(kind: str) -> np.ndarray:
    """A 64x64 mask: 255 = known pixel, 0 = missing."""
    m = np.full((64, 64), 255, dtype=np.uint8)
    if kind == "box":
        m[20:40, 10:50] = 0
    elif kind == "all":
        m[:] = 0
    return m


@pytest.fixture
def inpaint_cfg(tmp_path: Path, maskgit_ckpt: Path) -> Callable[..., DictConfig]:
    def _make(images: Path, masks: Path, *overrides: str) -> DictConfig:
        base = [
            f"ckpt={maskgit_ckpt}",
            f"images_dir='{images}'",  # quoted, as on a command line: the paths may hold spaces
            f"masks_dir='{masks}'",
            f"out_dir='{tmp_path / 'out'}'",
            f"paths.root_dir={tmp_path}",
            "device=cpu",
            "steps=2",
            "step_strips=[]",
        ]
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose(config_name="inpaint", overrides=[*base, *overrides])

    return _make


def folders(root: Path) -> tuple[Path, Path]:
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    return images, masks


def test_rgba_palette_and_jpeg_masks_work(inpaint_cfg, tmp_path: Path) -> None:
    images, masks = folders(tmp_path / "user")
    rgba = np.concatenate([picture(0), np.full((64, 64, 1), 200, np.uint8)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(images / "image_000.png")
    Image.fromarray(picture(1)).convert("P", palette=Image.Palette.ADAPTIVE).save(images / "image_001.png")
    Image.fromarray(picture(2)).save(images / "image_002.png")
    for i in range(3):  # JPEG masks: values near, not at, 0 and 255; the threshold is 128
        Image.fromarray(hole("box")).save(masks / f"mask_{i:03d}.jpg", quality=70)
    res = run_inpaint(inpaint_cfg(images, masks))
    assert [p.name for p in res["files"]] == ["image_000.png", "image_001.png", "image_002.png"]
    assert torch.equal(res["pairs"].masks[0, 0], torch.from_numpy(hole("box") >= 128))
    for path in res["files"]:
        with Image.open(path) as im:
            assert im.mode == "RGB" and im.size == (64, 64)
    known = torch.from_numpy(hole("box") > 0)
    out = np.asarray(Image.open(res["files"][2]))
    assert np.array_equal(out[known.numpy()], picture(2)[known.numpy()])  # known pixels pasted back


def test_masks_that_hide_nothing_or_everything(inpaint_cfg, tmp_path: Path) -> None:
    images, masks = folders(tmp_path / "user")
    for i, kind in enumerate(["none", "all"]):
        Image.fromarray(picture(i)).save(images / f"image_{i:03d}.png")
        Image.fromarray(hole(kind)).save(masks / f"mask_{i:03d}.png")
    res = run_inpaint(inpaint_cfg(images, masks))
    nothing_hidden = np.asarray(Image.open(res["files"][0]))
    assert np.array_equal(nothing_hidden, picture(0))  # nothing to inpaint: the image itself
    assert res["result"].tokens.shape == (2, 64) and (res["result"].tokens < 32).all()


def test_spaces_and_non_ascii_in_paths(inpaint_cfg, tmp_path: Path) -> None:
    images, masks = folders(tmp_path / "mes données" / "chat 猫")
    Image.fromarray(picture(3)).save(images / "portrait été.png")
    Image.fromarray(hole("box")).save(masks / "portrait été.png")  # pairs by the same name
    res = run_inpaint(inpaint_cfg(images, masks, f"out_dir='{tmp_path / 'sortie à moi'}'"))
    assert [p.name for p in res["files"]] == ["portrait été.png"] and res["files"][0].is_file()


@pytest.mark.parametrize(
    "layout,message",
    [
        ("mask missing", r"image .*image_001\.png has no mask: expected .*mask_001\.png"),
        ("image missing", r"mask .*mask_002\.png has no image: expected .*image_002\.png"),
        ("not an image", r"cannot read image .*image_001\.png"),
        ("wrong size", r"image_001\.png is 48x48, expected 64x64"),
    ],
)
def test_unpaired_or_bad_files_name_the_file_and_write_nothing(
    inpaint_cfg, tmp_path: Path, layout: str, message: str
) -> None:
    images, masks = folders(tmp_path / "user")
    for i in range(2):
        Image.fromarray(picture(i)).save(images / f"image_{i:03d}.png")
        Image.fromarray(hole("box")).save(masks / f"mask_{i:03d}.png")
    if layout == "mask missing":
        (masks / "mask_001.png").unlink()
    elif layout == "image missing":
        Image.fromarray(hole("box")).save(masks / "mask_002.png")
    elif layout == "not an image":
        (images / "image_001.png").write_text("this is not a png")
    else:
        Image.fromarray(picture(1)[:48, :48]).save(images / "image_001.png")
    with pytest.raises(DataError, match=message):
        run_inpaint(inpaint_cfg(images, masks))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_cli_error_is_one_line_and_writes_nothing(maskgit_ckpt: Path, tmp_path: Path) -> None:
    images, masks = folders(tmp_path / "user")
    Image.fromarray(picture(0)).save(images / "image_000.png")
    res = run_cli(
        ["tinymaskgit.inpaint", f"ckpt={maskgit_ckpt}", f"images_dir={images}", f"masks_dir={masks}", "device=cpu"],
        cwd=tmp_path,
    )
    assert res.returncode == 2
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "image_000.png has no mask" in errors[0] and "Traceback" not in res.stderr
    assert not (tmp_path / "logs" / "inpaint").exists() or not any((tmp_path / "logs" / "inpaint").rglob("*.png"))


def test_interrupted_sample_leaves_no_half_written_png(tmp_path: Path, maskgit_ckpt: Path, monkeypatch) -> None:
    """The third PNG write dies halfway: the two before it are whole, and no partial file is left behind."""
    real_save = Image.Image.save
    calls = {"n": 0}

    def dying_save(self, fp, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            Path(fp).write_bytes(b"\x89PNG\r\n\x1a\n half")
            raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", dying_save)
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            config_name="sample",
            overrides=[f"ckpt={maskgit_ckpt}", f"out_dir={tmp_path / 'out'}", "device=cpu", "n_per_class=2", "steps=2"],
        )
    with pytest.raises(KeyboardInterrupt):
        sample(cfg)
    files = sorted((tmp_path / "out").rglob("*"))
    pngs = [p for p in files if p.is_file()]
    assert len(pngs) == 2 and all(p.suffix == ".png" for p in pngs)  # no temporary or partial file
    for p in pngs:
        with Image.open(p) as im:
            im.load()
