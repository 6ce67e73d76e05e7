"""Fetch tiny-imagenet-200 and keep a class subset: ``python -m tinymaskgit.data.download --root data``.

Downloads the official zip (online), then extracts only the chosen classes' training images, the
validation images of those classes with their annotations, wnids.txt (the chosen classes) and words.txt,
into ``<root>/tiny-imagenet-200``. An existing folder is never overwritten.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tinymaskgit.data.tiny_imagenet import TINY_IMAGENET_10
from tinymaskgit.errors import DataError

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


def extract_subset(zip_path: Path, dest: Path, wnids: list[str]) -> int:
    """Extract the classes ``wnids`` from the official zip into ``dest``; returns the number of images."""
    if dest.exists():
        raise DataError(f"{dest} already exists; remove it or choose another --root")
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    keep = set(wnids)
    n = 0
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        prefix = names[0].split("/")[0] + "/"
        ann_name = prefix + "val/val_annotations.txt"
        ann_lines = zf.read(ann_name).decode().splitlines()
        val_keep = {line.split("\t")[0] for line in ann_lines if line.split("\t")[1] in keep}
        for name in names:
            rel = name[len(prefix) :]
            parts = rel.split("/")
            wanted = (
                (parts[0] == "train" and len(parts) > 1 and parts[1] in keep)
                or (parts[:2] == ["val", "images"] and parts[-1] in val_keep)
                or rel == "words.txt"
            )
            if not wanted or name.endswith("/"):
                continue
            out = tmp / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(name) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            n += rel.lower().endswith(".jpeg")
    (tmp / "val").mkdir(parents=True, exist_ok=True)
    (tmp / "val" / "val_annotations.txt").write_text(
        "".join(line + "\n" for line in ann_lines if line.split("\t")[1] in keep)
    )
    (tmp / "wnids.txt").write_text("".join(w + "\n" for w in wnids))
    tmp.rename(dest)
    return n


def download(url: str, to: Path) -> None:
    """Download ``url`` to the file ``to`` with a simple progress line."""

    def hook(blocks: int, block_size: int, total: int) -> None:
        if total > 0:
            print(
                f"\r{min(100, blocks * block_size * 100 // total):3d}% of {total >> 20} MiB",
                end="",
                flush=True,
            )

    try:
        urllib.request.urlretrieve(url, to, reporthook=hook)
    except OSError as e:
        raise DataError(f"cannot download {url}: {e}; are you online? Or download it by hand and pass --zip") from e
    print()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data", help="folder that receives tiny-imagenet-200/")
    p.add_argument("--classes", nargs="+", default=TINY_IMAGENET_10, help="wnids to keep")
    p.add_argument("--url", default=URL)
    p.add_argument("--zip", default=None, help="an already downloaded tiny-imagenet-200.zip")
    args = p.parse_args(argv)
    dest = Path(args.root) / "tiny-imagenet-200"
    try:
        if dest.exists():
            print(f"{dest} exists; nothing to do")
            return
        if args.zip:
            n = extract_subset(Path(args.zip), dest, args.classes)
        else:
            with tempfile.TemporaryDirectory() as d:
                z = Path(d) / "tiny-imagenet-200.zip"
                download(args.url, z)
                n = extract_subset(z, dest, args.classes)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {n} images of {len(args.classes)} classes to {dest}")


if __name__ == "__main__":
    main()
