"""The page's handlers as plain functions (no server): shapes, seeds, the CLI's images, bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

from tests.conftest import CONF_DIR, python_output
from tinymaskgit.app import handlers as h
from tinymaskgit.errors import ConfigError, DataError
from tinymaskgit.sample import sample

ARGS = dict(steps=4, schedule="arccos", sweet_spot=0, cfg_weight=1.0, cfg_schedule="constant", temperature=4.5)
SETTINGS = h.page_settings(ARGS, max_steps=8)
INPAINT = h.page_settings(dict(steps=4, schedule="arccos", cfg_weight=0.0, temperature=4.5), max_steps=8)


@pytest.fixture(scope="module")
def session(maskgit_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> h.Session:
    return h.Session.load(
        maskgit_ckpt, "cpu", h.Limits(max_samples=6, max_steps=8, gallery=5), tmp_path_factory.mktemp("app")
    )


def test_session_offers_the_checkpoints_classes_and_test_images(session: h.Session) -> None:
    assert session.class_choices == session.model.class_names and len(session.class_choices) == 10
    assert session.gallery.shape == (5, 3, 64, 64) and session.gallery.dtype == torch.uint8
    assert len(session.captions) == 5 and "validation images of generated" in session.gallery_note


def test_generate_gives_the_same_images_as_the_sample_cli(
    session: h.Session, maskgit_ckpt: Path, tmp_path: Path
) -> None:
    r = h.run_generate(session, "yellow ring", 3, SETTINGS, seed=7, trace=2)
    assert r.images.shape == (3, 3, 64, 64) and r.grid.shape == (68, 200, 3)
    assert r.strip.shape[2] == 3 and r.strip.shape[1] == 4 * 66 + 2 and r.gif.is_file()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            config_name="sample",
            overrides=[
                f"ckpt={maskgit_ckpt}",
                "classes=['yellow ring']",
                "n_per_class=3",
                "steps=4",
                "seed=7",
                "device=cpu",
                f"paths.root_dir={tmp_path}",
                f"out_dir={tmp_path / 'cli'}",
            ],
        )
    files = sample(cfg)["files"]
    cli = torch.stack([torch.from_numpy(np.asarray(Image.open(f))).permute(2, 0, 1) for f in files])
    assert torch.equal(cli, r.images)
    again = h.run_generate(session, "yellow ring", 3, SETTINGS, seed=7, trace=0)
    other = h.run_generate(session, "yellow ring", 3, SETTINGS, seed=8, trace=0)
    assert torch.equal(again.images, r.images) and not torch.equal(other.images, r.images)


def test_generate_refuses_requests_beyond_the_limits(session: h.Session) -> None:
    with pytest.raises(ConfigError, match="limits.max_samples"):
        h.run_generate(session, "red disc", 7, SETTINGS, seed=0)
    with pytest.raises(ConfigError, match="limits.max_steps"):
        h.page_settings({**ARGS, "steps": 9}, max_steps=8)
    with pytest.raises(ConfigError, match="unknown class 'zebra'"):
        h.run_generate(session, "zebra", 2, SETTINGS, seed=0)
    with pytest.raises(ConfigError, match="sweet_spot"):
        h.page_settings({**ARGS, "sweet_spot": 6}, max_steps=8)
    with pytest.raises(ConfigError, match="token_temperature"):
        h.page_settings({**ARGS, "token_temperature": 0.0}, max_steps=8)


def test_page_top_k_of_zero_draws_from_every_code() -> None:
    assert h.page_settings({**ARGS, "top_k": 0.0}, max_steps=8).top_k is None  # a Number widget gives floats
    s = h.page_settings({**ARGS, "top_k": 5.0, "token_temperature": 0.8}, max_steps=8)
    assert (s.top_k, s.token_temperature) == (5, 0.8)


def painted_canvas(image: torch.Tensor, rows: slice, cols: slice) -> dict:
    """The editor's value after a stroke covering display pixels ``rows`` x ``cols``."""
    value = h.canvas(image)
    layer = np.zeros((*value["background"].shape[:2], 4), dtype=np.uint8)
    layer[rows, cols] = (255, 0, 255, 255)
    return {**value, "layers": [layer]}


def test_canvas_round_trip_and_the_painted_hole(session: h.Session) -> None:
    image = session.gallery[0]
    value = h.canvas(image)
    assert value["background"].shape == (256, 256, 3)
    back, known = h.from_canvas(value, 64)
    assert torch.equal(back, image) and known.all()
    _, known = h.from_canvas(painted_canvas(image, slice(40, 81), slice(0, 256)), 64)
    # display rows 40..80 touch image rows 10..20: any touched pixel is part of the hole
    assert (~known[0]).nonzero()[:, 0].unique().tolist() == list(range(10, 21))
    with pytest.raises(DataError, match="no image on the canvas"):
        h.from_canvas(None, 64)


def test_inpaint_keeps_the_known_pixels_and_obeys_the_seed(session: h.Session) -> None:
    image = session.gallery[1]
    img, known = h.from_canvas(painted_canvas(image, slice(64, 160), slice(64, 160)), 64)
    r = h.run_inpaint(session, img, known, INPAINT, seed=3)
    result = torch.from_numpy(r.result).permute(2, 0, 1)
    assert result.shape == (3, 64, 64)
    assert torch.equal(result[known.expand(3, -1, -1)], image[known.expand(3, -1, -1)])
    assert r.unknown_tokens == 9 and r.png.is_file()  # rows/cols 16..39 cover 3 x 3 patches of 8 pixels
    assert (r.token_mask == 0).all(-1).sum() == 9 * 64  # the generated tokens are drawn black
    again = h.run_inpaint(session, img, known, INPAINT, seed=3)
    assert np.array_equal(again.result, r.result)
    with pytest.raises(DataError, match="the mask is empty"):
        h.run_inpaint(session, img, torch.ones_like(known), INPAINT, 0)


def test_uploads_are_fitted_to_the_model_size_and_bad_files_get_a_message(tmp_path: Path) -> None:
    wide = tmp_path / "wide photo.png"
    Image.new("RGBA", (100, 80), (10, 200, 30, 128)).save(wide)
    image, note = h.read_upload(wide, 64)
    assert image.shape == (3, 64, 64) and image.dtype == torch.uint8
    assert note == "centre-cropped from 100x80 to 80x80, then resized from 80x80 to 64x64"
    exact = tmp_path / "exact.jpg"
    Image.new("RGB", (64, 64), (1, 2, 3)).save(exact)
    assert h.read_upload(exact, 64)[1] == ""
    junk = tmp_path / "notes.txt"
    junk.write_text("not a picture")
    with pytest.raises(DataError, match="notes.txt is not an image this page can read"):
        h.read_upload(junk, 64)


def test_sweep_table_is_read_best_first_and_a_missing_one_is_explained(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="holds no fid_sweep.csv"):
        h.read_sweep(tmp_path)
    with (tmp_path / "fid_sweep.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["schedule", "steps", "cfg_weight", "value"])
        w.writeheader()
        w.writerows(
            [
                {"schedule": "cosine", "steps": 8, "cfg_weight": 0, "value": 30.5},
                {"schedule": "arccos", "steps": 8, "cfg_weight": 2, "value": 12.25},
            ]
        )
    columns, rows, plot = h.read_sweep(tmp_path)
    assert columns[:4] == ["schedule", "steps", "sweet_spot", "cfg_weight"] and plot is None
    assert [r[0] for r in rows] == ["arccos", "cosine"]
    assert h.newest_sweep(tmp_path.parent) == tmp_path


def test_sweep_grid_is_bounded() -> None:
    limits = h.Limits(sweep_max_runs=4)
    assert len(h.sweep_grid(["arccos", "cosine"], [4, 8], [0.0], limits)) == 4
    with pytest.raises(ConfigError, match="at most 4"):
        h.sweep_grid(["arccos", "cosine"], [4, 8], [0.0, 2.0], limits)
    with pytest.raises(ConfigError, match="pick at least one"):
        h.sweep_grid([], [4], [0.0], limits)


def test_newest_checkpoint_picks_the_stage(maskgit_ckpt: Path, tokenizer_ckpt: Path, tmp_path: Path) -> None:
    assert h.newest_checkpoint(maskgit_ckpt.parents[2], "maskgit") == maskgit_ckpt
    assert h.newest_checkpoint(tokenizer_ckpt.parents[2], "maskgit") is None
    assert h.newest_checkpoint(tmp_path / "nothing", "maskgit") is None


def test_the_package_imports_without_gradio_and_the_page_says_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['gradio'] = None\n"
        "import tinymaskgit.app.handlers, tinymaskgit.sample\n"
        "from tinymaskgit.app.__main__ import import_gradio\n"
        "try:\n    import_gradio()\nexcept Exception as e:\n    print(type(e).__name__, e)\n"
    )
    assert python_output(code) == 'ConfigError the page needs Gradio: pip install -e ".[app]" (make install brings it)'
