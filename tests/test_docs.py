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


# -- every command the docs show composes, and every make target they name exists ---------------------------
ENTRY = re.compile(r"python -m tinymaskgit\.(\w+)((?:[^\n`|]|\\\n)*)")
CONFIG_OF = {"train": "train", "sample": "sample", "inpaint": "inpaint", "evaluate": "evaluate", "app": "app"}
MAKE = re.compile(r"`make ([a-z][\w-]*)|^\s*make ([a-z][\w-]*)", re.M)


def shown_commands(text: str) -> list[tuple[str, list[str]]]:
    """(entry point, overrides) of every ``python -m tinymaskgit.<entry> ...`` in ``text``; placeholders such
    as ``<stage-2 ckpt>`` and shell variables become a dummy path, shell comments and Hydra's own flags go; a
    multirun (``-m``) gives its first job (the first value of each ``key=a,b,c`` sweep)."""
    import shlex

    out = []
    text = re.sub(r"<[^>\n]*>", "/tmp/x", text.replace("\\\n", " "))
    for entry, rest in ENTRY.findall(text):
        if entry not in CONFIG_OF:
            continue
        rest = re.sub(r"\$\{?\w+\}?", "/tmp/x", rest.split("#")[0]).replace('"', "").replace("\\", "")
        words = shlex.split(rest)
        args = [
            a for a in words if "=" in a and not a.lstrip("+").startswith(("hydra.", "-")) and not a.endswith("=...")
        ]
        if "-m" in words or "--multirun" in words:
            args = [re.sub(r"=([^\[(,][^,]*),.*", r"=\1", a) for a in args]
        out.append((entry, args))
    return out


def test_shown_commands_finds_overrides() -> None:
    text = "```\npython -m tinymaskgit.sample ckpt=<a ckpt> n_per_class=4 \\\n  steps=$T  # note\n```"
    assert shown_commands(text) == [("sample", ["ckpt=/tmp/x", "n_per_class=4", "steps=/tmp/x"])]
    sweep = "python -m tinymaskgit.inpaint -m ckpt=<c> schedule=cosine,linear steps=8,12 step_strips=[0,1]"
    assert shown_commands(sweep) == [("inpaint", ["ckpt=/tmp/x", "schedule=cosine", "steps=8", "step_strips=[0,1]"])]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_shown_command_composes(page: Path) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from tests.conftest import CONF_DIR

    failures = []
    for entry, args in shown_commands(page.read_text()):
        try:
            with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
                compose(config_name=CONFIG_OF[entry], overrides=args)
        except HydraException as e:
            failures.append(f"{entry} {' '.join(args)}: {str(e).splitlines()[0]}")
    assert not failures, "\n".join(failures)


def test_every_named_make_target_exists() -> None:
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = {a or b for page in PAGES for a, b in MAKE.findall(page.read_text())}
    assert named and not named - targets, f"make targets named in the docs but missing: {named - targets}"
