"""The README and docs/ point at files and sections that exist: a moved picture or a renamed heading fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the headings of ``page``: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


def broken_links(page: Path) -> list[str]:
    """The relative links of ``page`` whose file, or whose heading in a Markdown file, does not exist."""
    broken = []
    for link in LINK.findall(page.read_text()):
        if link.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists() or (anchor and target.suffix == ".md" and anchor not in anchors(target)):
            broken.append(link)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page: Path) -> None:
    broken = broken_links(page)
    assert not broken, f"{page.name} links to nothing at: {broken}"


def test_broken_links_finds_missing_files_and_headings(tmp_path: Path) -> None:
    (tmp_path / "there.png").write_bytes(b"")
    (tmp_path / "other.md").write_text("## The recipes, measured\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Top\n![a](there.png) [b](gone.png) [c](#top) [d](#nowhere) [e](https://x.org/y)\n"
        "[f](other.md#the-recipes-measured) [g](other.md#on-a-gpu)\n"
    )
    assert broken_links(page) == ["gone.png", "#nowhere", "other.md#on-a-gpu"]
