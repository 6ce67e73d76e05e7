"""The import rules of docs/architecture.md: a layer uses the layers below it, never one above."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import python_output

SRC = Path(__file__).resolve().parents[1] / "src" / "tinymaskgit"
# rank of each top-level module or package of tinymaskgit: it may import ranks <= its own
LAYERS = {
    **dict.fromkeys(["errors", "cache", "pictures", "precision", "models", "data"], 0),  # foundations
    **dict.fromkeys(["sampling", "metrics"], 1),  # algorithms
    "inference": 2,  # trained models from checkpoint files
    **dict.fromkeys(["lit", "callbacks", "loggers"], 3),  # training
    **dict.fromkeys(
        [
            "stages",
            "train",
            "sample",
            "inpaint",
            "evaluate",
            "sweep",
            "recipe",
            "export_vqgan",
            "cli",
            "config",
            "naming",
            "app",
        ],
        4,
    ),
}
NAMES = {0: "foundations", 1: "algorithms", 2: "inference", 3: "training", 4: "entry points"}


def component(module: str) -> str:
    return module.split(".")[1] if module.startswith("tinymaskgit.") else ""


def imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names]
    return found


def modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)


def test_every_module_has_a_layer() -> None:
    missing = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in modules()} - set(LAYERS)
    assert not missing, f"give these a layer in LAYERS and docs/architecture.md: {sorted(missing)}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_climbs(path: Path) -> None:
    mine = LAYERS[path.relative_to(SRC).parts[0].removesuffix(".py")]
    for module in imports(path):
        other = component(module)
        if other:
            assert LAYERS[other] <= mine, (
                f"{path.relative_to(SRC)} ({NAMES[mine]}) imports {module} ({NAMES[LAYERS[other]]}), a layer above it"
            )


def test_sampling_and_evaluating_a_checkpoint_needs_neither_lightning_nor_hydra() -> None:
    code = (
        "import sys, tinymaskgit.inference, tinymaskgit.sampling.generate, tinymaskgit.metrics.fid, "
        "tinymaskgit.metrics.features, tinymaskgit.pictures; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'hydra')))"
    )
    assert python_output(code) == "[]"
