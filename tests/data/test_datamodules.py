"""DataModules on generated data: counts, class ids, mask pairing, and every bad-input message."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import GEN
from tinymaskgit.data.cat_faces import CatFacesDataModule, load_inpaint_pairs
from tinymaskgit.data.generated import CLASSES, GeneratedDataModule, generate
from tinymaskgit.data.images import to_float, to_uint8
from tinymaskgit.data.tiny_imagenet import TinyImageNetDataModule
from tinymaskgit.errors import ConfigError, DataError


def snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in sorted(root.rglob("*"))}


@pytest.fixture
def tin(generated_root: Path, tmp_path: Path) -> Path:
    """A writable copy of the generated tiny-imagenet layout."""
    dst = tmp_path / "tin"
    shutil.copytree(generated_root / "tiny-imagenet", dst)
    return dst


@pytest.fixture
def cats(generated_root: Path, tmp_path: Path) -> Path:
    """A writable copy of the generated cat-faces layout."""
    dst = tmp_path / "cats"
    shutil.copytree(generated_root / "inpaint", dst)
    return dst


def test_generated_counts_and_class_ids(generated_root: Path) -> None:
    dm = GeneratedDataModule(root=str(generated_root), batch_size=4, **GEN)
    train, val = dm.dataset("train"), dm.dataset("val")
    assert len(train) == 10 * GEN["train_per_class"] and len(val) == 10 * GEN["val_per_class"]
    assert torch.bincount(train.labels).tolist() == [GEN["train_per_class"]] * 10
    assert torch.bincount(val.labels).tolist() == [GEN["val_per_class"]] * 10
    assert dm.num_classes == 10 and dm.class_names == [n for _, n, *_ in CLASSES]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 64, 64) and x.dtype == torch.float32 and y.dtype == torch.long
    assert x.min() >= -1 and x.max() <= 1


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate(a, seed=3, train_per_class=2, val_per_class=1, inpaint=2)
    generate(b, seed=3, train_per_class=2, val_per_class=1, inpaint=2)
    for pa in sorted(a.rglob("*.png")):
        assert np.array_equal(np.asarray(Image.open(pa)), np.asarray(Image.open(b / pa.relative_to(a))))


def test_generated_refuses_other_settings(generated_root: Path) -> None:
    with pytest.raises(DataError, match="other settings"):
        generate(generated_root, seed=1, train_per_class=6, val_per_class=2, inpaint=6)


def test_tiny_imagenet_reads_subset_and_names(tin: Path) -> None:
    wnids = [CLASSES[3][0], CLASSES[7][0]]
    dm = TinyImageNetDataModule(root=str(tin), classes=wnids, batch_size=2)
    assert dm.class_names == ["yellow ring", "white star"]
    train, val = dm.dataset("train"), dm.dataset("val")
    assert len(train) == 2 * GEN["train_per_class"] and set(train.labels.tolist()) == {0, 1}
    assert len(val) == 2 * GEN["val_per_class"]


def test_greyscale_becomes_rgb(tin: Path) -> None:
    path = next((tin / "train" / CLASSES[0][0] / "images").iterdir())
    Image.open(path).convert("L").save(path, format="JPEG")
    dm = TinyImageNetDataModule(root=str(tin), classes=[CLASSES[0][0]])
    assert dm.dataset("train").images.shape[1] == 3


def test_loader_writes_nothing(tin: Path) -> None:
    before = snapshot(tin)
    TinyImageNetDataModule(root=str(tin), classes=[CLASSES[0][0]]).setup()
    assert snapshot(tin) == before


def test_missing_root_names_path_and_make_target(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="make data-tiny-imagenet") as info:
        TinyImageNetDataModule(root=str(tmp_path / "nowhere")).setup()
    assert str(tmp_path / "nowhere") in str(info.value)


def test_missing_split_names_it(tin: Path) -> None:
    shutil.rmtree(tin / "val")
    with pytest.raises(DataError, match=r"val"):
        TinyImageNetDataModule(root=str(tin), classes=[CLASSES[0][0]]).setup()


def test_unknown_class_is_named(tin: Path) -> None:
    with pytest.raises(DataError, match="n99999999"):
        TinyImageNetDataModule(root=str(tin), classes=["n99999999"]).setup()


def test_corrupt_image_named_or_skipped(tin: Path) -> None:
    bad = tin / "train" / CLASSES[1][0] / "images" / f"{CLASSES[1][0]}_0.JPEG"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=bad.name):
        TinyImageNetDataModule(root=str(tin), classes=[CLASSES[1][0]]).setup()
    dm = TinyImageNetDataModule(root=str(tin), classes=[CLASSES[1][0]], skip_corrupt=True)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        dm.setup()
    assert len(dm.dataset("train")) == GEN["train_per_class"] - 1


def test_wrong_size_is_an_error_unless_resize(tin: Path) -> None:
    path = tin / "train" / CLASSES[2][0] / "images" / f"{CLASSES[2][0]}_1.JPEG"
    Image.open(path).resize((48, 48)).save(path, format="JPEG")
    with pytest.raises(DataError, match=r"48x48, expected 64x64.*data.resize=true"):
        TinyImageNetDataModule(root=str(tin), classes=[CLASSES[2][0]]).setup()
    dm = TinyImageNetDataModule(root=str(tin), classes=[CLASSES[2][0]], resize=True)
    assert dm.dataset("train").images.shape[-2:] == (64, 64)


def test_bad_batch_size_names_key(tin: Path) -> None:
    with pytest.raises(ConfigError, match="data.batch_size"):
        TinyImageNetDataModule(root=str(tin), batch_size=-2)


def test_cat_faces_splits_and_inpaint_pairs(cats: Path) -> None:
    dm = CatFacesDataModule(root=str(cats), batch_size=4)
    assert dm.num_classes == 0
    assert set(dm.dataset("train").labels.tolist()) == {0}
    s = dm.inpaint_split()
    assert len(s.names) == GEN["inpaint"] and s.names[0] == "image_000.png"
    assert s.masked.shape == (GEN["inpaint"], 3, 64, 64) and s.masks.dtype == torch.bool
    assert s.ground_truth is not None
    missing = ~s.masks.expand_as(s.masked)
    # holes are painted grey in the masked image; the known pixels equal the ground truth
    assert (s.masked[missing] == 128).all()
    assert torch.equal(s.masked[~missing], s.ground_truth[~missing])
    frac = (~s.masks).float().mean((1, 2, 3))
    assert (frac >= 0.15).all() and (frac <= 0.35).all()


def test_cat_faces_ground_truth_from_lab_csv(cats: Path) -> None:
    gt = load_inpaint_pairs(cats / "masked_image", cats / "mask64", gt=cats / "test_gt").ground_truth
    assert gt is not None
    rows = gt.permute(0, 2, 3, 1).reshape(len(gt), -1).numpy()
    header = ",".join(f"p{i}" for i in range(rows.shape[1]))
    np.savetxt(cats / "test_gt.csv", rows, fmt="%d", delimiter=",", header=header, comments="")
    shutil.rmtree(cats / "test_gt")
    from_csv = CatFacesDataModule(root=str(cats)).inpaint_split().ground_truth
    assert from_csv is not None and torch.equal(from_csv, gt)


def test_mask_without_image_names_both(cats: Path) -> None:
    (cats / "masked_image" / "image_002.png").unlink()
    with pytest.raises(DataError, match=r"mask_002\.png has no image: expected .*image_002\.png"):
        CatFacesDataModule(root=str(cats)).inpaint_split()


def test_image_without_mask_names_both(cats: Path) -> None:
    (cats / "mask64" / "mask_001.png").unlink()
    with pytest.raises(DataError, match=r"image_001\.png has no mask: expected .*mask_001\.png"):
        CatFacesDataModule(root=str(cats)).inpaint_split()


def test_mask_of_wrong_size_names_both(cats: Path) -> None:
    Image.new("L", (32, 32), 255).save(cats / "mask64" / "mask_003.png")
    with pytest.raises(DataError, match=r"mask_003\.png is 32x32 but image .*image_003\.png"):
        CatFacesDataModule(root=str(cats)).inpaint_split()


def test_cat_faces_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cat-faces root"):
        CatFacesDataModule(root=str(tmp_path / "none")).setup()


def test_uint8_round_trip_rounds() -> None:
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16).expand(1, 3, 16, 16)
    assert torch.equal(to_uint8(to_float(x)), x)
    # 0.6 of a level above 10 rounds up to 11 (truncation would give 10)
    assert to_uint8(torch.tensor([(10.6 / 127.5) - 1.0])).item() == 11
