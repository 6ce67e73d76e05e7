"""tiny-imagenet-200 in its standard folder layout, restricted to a list of classes (wnids).

root/wnids.txt                      one wnid per line
root/words.txt                      wnid<TAB>comma-separated names
root/train/<wnid>/images/*.JPEG     training images
root/val/images/*.JPEG + root/val/val_annotations.txt  (file<TAB>wnid<TAB>box...)
"""

from __future__ import annotations

from pathlib import Path

import torch

from tinymaskgit.data.base import ImageDataModule
from tinymaskgit.data.images import load_images
from tinymaskgit.errors import ConfigError, DataError

# The 10 classes of the Tiny MaskGIT report.
TINY_IMAGENET_10 = [
    "n02124075",  # Egyptian cat
    "n02509815",  # lesser panda
    "n02106662",  # German shepherd
    "n02132136",  # brown bear
    "n01443537",  # goldfish
    "n04398044",  # teapot
    "n07747607",  # orange
    "n04399382",  # teddy bear
    "n04356056",  # sunglasses
    "n04285008",  # sports car
]

FETCH_HINT = "run `make data-tiny-imagenet` (online) or set data.root to a tiny-imagenet-200 folder"
IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}


def read_class_names(root: Path, wnids: list[str]) -> list[str]:
    """First name of each wnid in words.txt (e.g. 'n04398044' -> 'teapot'); the wnid itself if absent."""
    words = root / "words.txt"
    names: dict[str, str] = {}
    if words.is_file():
        for line in words.read_text(encoding="utf-8").splitlines():
            wnid, _, text = line.partition("\t")
            if wnid in wnids:
                names[wnid] = text.split(",")[0].strip()
    return [names.get(w, w) for w in wnids]


def list_train(root: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    """Training files and class ids, sorted for determinism."""
    paths: list[Path] = []
    labels: list[int] = []
    for c, wnid in enumerate(wnids):
        folder = root / "train" / wnid / "images"
        if not folder.is_dir():
            raise DataError(f"missing class folder {folder} (expected train/<wnid>/images/*.JPEG); {FETCH_HINT}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        labels += [c] * len(files)
    return paths, labels


def list_val(root: Path, wnids: list[str]) -> tuple[list[Path], list[int]]:
    """Validation files of the chosen classes from val/val_annotations.txt."""
    ann = root / "val" / "val_annotations.txt"
    if not ann.is_file():
        raise DataError(f"missing {ann} (expected val/images/*.JPEG + val/val_annotations.txt); {FETCH_HINT}")
    index = {w: i for i, w in enumerate(wnids)}
    paths: list[Path] = []
    labels: list[int] = []
    for line in sorted(ann.read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1] in index:
            paths.append(root / "val" / "images" / parts[0])
            labels.append(index[parts[1]])
    return paths, labels


class TinyImageNetDataModule(ImageDataModule):
    """A class subset of tiny-imagenet-200 (default: the 10 classes of the Tiny MaskGIT report)."""

    name = "tiny_imagenet10"

    def __init__(self, root: str, classes: list[str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.root = Path(root).expanduser()
        self.wnids = list(classes) if classes else list(TINY_IMAGENET_10)
        if len(set(self.wnids)) != len(self.wnids):
            raise ConfigError(f"data.classes lists a class twice: {self.wnids}")
        self.num_classes = len(self.wnids)
        self._names: list[str] | None = None

    @property
    def class_names(self) -> list[str]:  # type: ignore[override]
        if self._names is None:
            self.check_layout()
            self._names = read_class_names(self.root, self.wnids)
        return self._names

    def check_layout(self) -> None:
        """Raise a DataError naming the expected path when the root or a split is missing."""
        if not self.root.is_dir():
            raise DataError(f"tiny-imagenet root {self.root} does not exist; {FETCH_HINT}")
        if not (self.root / "train").is_dir():
            raise DataError(f"missing split folder {self.root / 'train'}; {FETCH_HINT}")
        if not (self.root / "val").is_dir():
            raise DataError(f"missing split folder {self.root / 'val'}; {FETCH_HINT}")
        wnids_file = self.root / "wnids.txt"
        if wnids_file.is_file():
            known = set(wnids_file.read_text().split())
            missing = [w for w in self.wnids if w not in known]
            if missing:
                raise DataError(f"classes {missing} are not listed in {wnids_file}; check data.classes")

    def prepare_data(self) -> None:
        self.check_layout()

    def load_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_layout()
        paths, labels = (list_train if split == "train" else list_val)(self.root, self.wnids)
        if not paths:
            raise DataError(f"no images of classes {self.wnids} in {self.root / split}; {FETCH_HINT}")
        images, kept = load_images(paths, self.image_size, self.resize, self.skip_corrupt)
        return images, torch.tensor([labels[i] for i in kept], dtype=torch.long)
