"""The sample and inpaint entry points on a tiny trained checkpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

from tests.conftest import CONF_DIR, GEN, run_cli
from tinymaskgit.config import decode_settings
from tinymaskgit.data.generated import GeneratedDataModule
from tinymaskgit.data.images import to_float, to_uint8
from tinymaskgit.errors import CheckpointError, ConfigError, DataError
from tinymaskgit.inference import load_maskgit
from tinymaskgit.inpaint import run_inpaint
from tinymaskgit.sample import sample
from tinymaskgit.sampling.decode import DecodeSettings
from tinymaskgit.sampling.generate import inpaint, token_mask


@pytest.fixture
def entry_cfg(tmp_path: Path, generated_root: Path) -> Callable[..., DictConfig]:
    def _make(name: str, *overrides: str) -> DictConfig:
        base = [f"paths.root_dir={tmp_path}", f"out_dir={tmp_path / 'out'}", "device=cpu"]
        if name == "inpaint":
            base += [f"data.root={generated_root}", *(f"data.{k}={v}" for k, v in GEN.items())]
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose(config_name=name, overrides=[*base, *overrides])

    return _make


def test_sample_writes_pngs_grids_and_strips(entry_cfg, maskgit_ckpt: Path, tmp_path: Path) -> None:
    res = sample(
        entry_cfg(
            "sample",
            f"ckpt={maskgit_ckpt}",
            "classes=['red disc',3]",
            "n_per_class=3",
            "steps=4",
            "step_pictures=1",
        )
    )
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "red_disc").iterdir()) == [f"red_disc_{i:04d}.png" for i in range(3)]
    assert len(list((out / "yellow_ring").glob("*.png"))) == 3
    assert (out / "grid_red_disc.png").is_file() and (out / "grid.png").is_file()
    assert sorted(p.name for p in (out / "steps").iterdir()) == [
        "red_disc_0000.gif",
        "red_disc_0000.png",
        "yellow_ring_0000.gif",
        "yellow_ring_0000.png",
    ]
    with Image.open(out / "red_disc" / "red_disc_0000.png") as im:
        assert im.size == (64, 64) and im.mode == "RGB"
    with Image.open(out / "steps" / "red_disc_0000.gif") as gif:
        assert gif.n_frames >= 4
    assert len(res["files"]) == 6
    with Image.open(out / "grid.png") as grid:
        assert grid.size == (3 * 66 + 2, 2 * 66 + 2)  # a row per class


def test_overview_grid_shows_the_first_eight_of_each_class(entry_cfg, maskgit_ckpt: Path, tmp_path: Path) -> None:
    sample(entry_cfg("sample", f"ckpt={maskgit_ckpt}", "classes=[0,1]", "n_per_class=10", "steps=2"))
    out = tmp_path / "out"
    with Image.open(out / "grid.png") as grid:
        assert grid.size == (8 * 66 + 2, 2 * 66 + 2)
        cell = np.asarray(grid)[68:132, 2:66]  # row 2, column 1: the first sample of the second class
    first = np.asarray(Image.open(out / "green_square" / "green_square_0000.png"))
    assert np.abs(cell.astype(int) - first.astype(int)).max() <= 1  # save_grid goes through [0, 1] floats
    with Image.open(out / "grid_red_disc.png") as every:
        assert every.size == (8 * 66 + 2, 2 * 66 + 2)  # all 10 of the class, 8 a row


def test_same_seed_same_pngs(entry_cfg, maskgit_ckpt: Path, tmp_path: Path) -> None:
    a, b = (
        sample(
            entry_cfg(
                "sample", f"ckpt={maskgit_ckpt}", "classes=[0]", "n_per_class=2", "steps=3", f"out_dir={tmp_path / d}"
            )
        )
        for d in ("a", "b")
    )
    assert len(a["files"]) == len(b["files"]) == 2
    for pa, pb in zip(a["files"], b["files"]):
        assert np.array_equal(np.asarray(Image.open(pa)), np.asarray(Image.open(pb)))


def test_unknown_class_lists_valid_ones(entry_cfg, maskgit_ckpt: Path) -> None:
    with pytest.raises(ConfigError, match="unknown class 'teapot'; valid classes: red disc, green square"):
        sample(entry_cfg("sample", f"ckpt={maskgit_ckpt}", "classes=[teapot]"))


def test_existing_out_dir_is_not_overwritten(entry_cfg, maskgit_ckpt: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    keep = tmp_path / "out" / "mine.txt"
    keep.write_text("user data")
    with pytest.raises(ConfigError, match="overwrite=true"):
        sample(entry_cfg("sample", f"ckpt={maskgit_ckpt}", "n_per_class=1"))
    assert keep.read_text() == "user data"


def test_missing_and_wrong_checkpoints(entry_cfg, tokenizer_ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        sample(entry_cfg("sample", f"ckpt={tmp_path / 'x.ckpt'}"))
    with pytest.raises(CheckpointError, match="stage=vqvae checkpoint, but a stage=maskgit one is needed"):
        sample(entry_cfg("sample", f"ckpt={tokenizer_ckpt}"))


def test_bad_sampler_value_is_named(entry_cfg, maskgit_ckpt: Path) -> None:
    with pytest.raises(ConfigError, match="sweet_spot"):
        sample(entry_cfg("sample", f"ckpt={maskgit_ckpt}", "steps=4", "sweet_spot=6"))
    with pytest.raises(ConfigError, match="precision must be one of"):
        sample(entry_cfg("sample", f"ckpt={maskgit_ckpt}", "precision=16"))
    with pytest.raises(ConfigError, match=r"^sampler setting cfg_weight='strong': Value 'strong'"):
        sample(entry_cfg("sample", f"ckpt={maskgit_ckpt}", "cfg_weight=strong"))
    with pytest.raises(ConfigError, match=r"^sampler setting steps=2.5: "):
        run_inpaint(entry_cfg("inpaint", f"ckpt={maskgit_ckpt}", "steps=2.5"))


def test_bf16_sampling_writes_images(entry_cfg, maskgit_ckpt: Path) -> None:
    res = sample(entry_cfg("sample", f"ckpt={maskgit_ckpt}", "n_per_class=1", "steps=3", "precision=bf16"))
    assert res["files"]
    for path in res["files"]:
        with Image.open(path) as im:
            assert im.size == (64, 64) and im.mode == "RGB"


def test_inpaint_writes_completed_images_and_strip(entry_cfg, maskgit_ckpt: Path, tmp_path: Path) -> None:
    res = run_inpaint(entry_cfg("inpaint", f"ckpt={maskgit_ckpt}", "steps=4", "step_strips=[0,2]"))
    out = tmp_path / "out"
    names = sorted(p.name for p in (out / "completed").iterdir())
    assert names == [f"image_{i:03d}.png" for i in range(GEN["inpaint"])]
    assert sorted(p.name for p in (out / "steps").iterdir()) == [
        "image_000.gif",
        "image_000.png",
        "image_002.gif",
        "image_002.png",
    ]
    pairs = res["pairs"]
    completed = torch.stack(
        [torch.from_numpy(np.array(Image.open(out / "completed" / n))).permute(2, 0, 1) for n in names]
    )
    known = pairs.masks.expand_as(pairs.masked)
    assert torch.equal(completed[known], pairs.masked[known])  # pasted back, lossless PNG
    assert not torch.equal(completed[~known], pairs.masked[~known])  # the grey holes were filled


def test_inpaint_keeps_known_tokens(maskgit_ckpt: Path, generated_root: Path) -> None:
    m = load_maskgit(str(maskgit_ckpt))
    pairs = GeneratedDataModule(root=str(generated_root), **GEN).inpaint_split()
    res = inpaint(m, pairs.masked, pairs.masks, DecodeSettings(steps=4), paste_known=False, batch_size=4)
    given = m.tokenizer.tokenize(to_float(pairs.masked)).flatten(1)
    unknown = token_mask(pairs.masks, 8)
    assert unknown.any() and (~unknown).any()
    assert torch.equal(res.tokens[~unknown], given[~unknown])  # tokens of known patches never change
    assert (res.tokens < m.net.codebook_size).all()


def test_reencode_rounds_blend_the_hole_and_keep_the_tokens(maskgit_ckpt: Path, generated_root: Path) -> None:
    m = load_maskgit(str(maskgit_ckpt))
    pairs = GeneratedDataModule(root=str(generated_root), **GEN).inpaint_split()
    masked, known = pairs.masked, pairs.masks.expand_as(pairs.masked)
    run = lambda rounds, paste: inpaint(  # noqa: E731
        m, masked, pairs.masks, DecodeSettings(steps=4, reencode=rounds), paste_known=paste, batch_size=4, seed=1
    )
    plain, twice = run(0, False), run(2, False)
    assert torch.equal(plain.tokens, twice.tokens)  # the transformer's decoding is the same
    expected = plain.images
    for _ in range(2):  # by hand: paste the known pixels, encode, decode
        expected = to_uint8(m.tokenizer(to_float(torch.where(known, masked, expected)))[0])
    assert torch.equal(twice.images, expected) and not torch.equal(twice.images, plain.images)
    pasted = run(2, True).images
    assert torch.equal(pasted[known], masked[known]) and torch.equal(pasted[~known], expected[~known])


@pytest.mark.parametrize("sampler,rounds", [("default", 2), ("lab", 0)])
def test_inpaint_entry_point_reencodes_by_the_sampler_config(
    entry_cfg, maskgit_ckpt: Path, sampler: str, rounds: int
) -> None:
    cfg = entry_cfg("inpaint", f"ckpt={maskgit_ckpt}", f"sampler={sampler}", "steps=2", "step_strips=[]", "limit=2")
    res = run_inpaint(cfg)
    m = load_maskgit(str(maskgit_ckpt))
    pairs = res["pairs"]
    settings = replace(decode_settings(cfg), reencode=rounds)  # the config's sampler, the rounds fixed here
    again = inpaint(m, pairs.masked[:2], pairs.masks[:2], settings, batch_size=cfg.batch_size, seed=cfg.seed)
    assert torch.equal(res["result"].images, again.images)


def test_token_mask_any_pixel_and_threshold() -> None:
    known = torch.ones(1, 1, 64, 64, dtype=torch.bool)
    known[0, 0, 0, 0] = False  # one pixel of token (0, 0)
    known[0, 0, 8:16, 8:12] = False  # half of token (1, 1)
    assert token_mask(known, 8).view(8, 8).nonzero().tolist() == [[0, 0], [1, 1]]
    assert token_mask(known, 8, threshold=0.25).view(8, 8).nonzero().tolist() == [[1, 1]]


def test_inpaint_any_folder_and_mask_errors(
    entry_cfg, maskgit_ckpt: Path, generated_root: Path, tmp_path: Path
) -> None:
    import shutil

    imgs, masks = tmp_path / "imgs", tmp_path / "masks"
    shutil.copytree(generated_root / "inpaint" / "masked_image", imgs)
    shutil.copytree(generated_root / "inpaint" / "mask64", masks)
    res = run_inpaint(
        entry_cfg(
            "inpaint",
            f"ckpt={maskgit_ckpt}",
            f"images_dir={imgs}",
            f"masks_dir={masks}",
            "limit=2",
            "steps=2",
            "step_strips=[]",
        )
    )
    assert len(res["files"]) == 2
    Image.new("L", (32, 32), 255).save(masks / "mask_001.png")
    with pytest.raises(DataError, match="mask_001.png is 32x32 but image .*image_001.png"):
        run_inpaint(
            entry_cfg(
                "inpaint",
                f"ckpt={maskgit_ckpt}",
                f"images_dir={imgs}",
                f"masks_dir={masks}",
                f"out_dir={tmp_path / 'o2'}",
            )
        )


@pytest.mark.slow
def test_cli_sample_error_is_one_line(maskgit_ckpt: Path, tmp_path: Path) -> None:
    res = run_cli(["tinymaskgit.sample", f"ckpt={maskgit_ckpt}", "classes=[nope]", "device=cpu"], cwd=tmp_path)
    assert res.returncode == 2
    assert [line for line in res.stderr.splitlines() if line.startswith("error:")][0].startswith(
        "error: unknown class 'nope'; valid classes:"
    )
