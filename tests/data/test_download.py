"""The tiny-imagenet download path, run offline on a zip built from generated data."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tinymaskgit.data.download import main
from tinymaskgit.data.generated import CLASSES
from tinymaskgit.data.tiny_imagenet import TinyImageNetDataModule


def make_zip(src: Path, dst: Path) -> Path:
    with zipfile.ZipFile(dst, "w") as zf:
        for p in sorted(src.rglob("*")):
            zf.write(p, "tiny-imagenet-200/" + str(p.relative_to(src)))
    return dst


@pytest.mark.parametrize("via", ["url", "zip"])
def test_download_extracts_chosen_classes(generated_root: Path, tmp_path: Path, via: str) -> None:
    z = make_zip(generated_root / "tiny-imagenet", tmp_path / "t.zip")
    keep = [CLASSES[1][0], CLASSES[4][0]]
    args = ["--root", str(tmp_path / "out"), "--classes", *keep]
    main([*args, "--url", z.as_uri()] if via == "url" else [*args, "--zip", str(z)])
    root = tmp_path / "out" / "tiny-imagenet-200"
    assert sorted(p.name for p in (root / "train").iterdir()) == sorted(keep)
    dm = TinyImageNetDataModule(root=str(root), classes=keep)
    assert dm.class_names == ["green square", "purple cross"]
    assert len(dm.dataset("val")) == 2 * 2 and set(dm.dataset("val").labels.tolist()) == {0, 1}


def test_download_offline_fails_cleanly(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--root", str(tmp_path), "--url", (tmp_path / "missing.zip").as_uri()])
    assert info.value.code == 2
    assert "cannot download" in capsys.readouterr().err
    assert not (tmp_path / "tiny-imagenet-200").exists()
