"""notebooks/demo.ipynb runs top to bottom on tiny checkpoints made by the tests, so it cannot rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import GEN
from tinymaskgit.train import train

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "demo.ipynb"


@pytest.mark.slow
def test_demo_notebook_executes(
    make_cfg, maskgit_ckpt: Path, generated_root: Path, tmp_path: Path, monkeypatch
) -> None:
    train(make_cfg("stage=classifier", "debug=limit", "trainer.max_epochs=1", f"paths.output_dir={tmp_path / 'clf'}"))
    monkeypatch.setenv("TINYMASKGIT_MASKGIT_CKPT", str(maskgit_ckpt))
    monkeypatch.setenv("TINYMASKGIT_CLASSIFIER_CKPT", str(tmp_path / "clf" / "checkpoints" / "last.ckpt"))
    monkeypatch.setenv("TINYMASKGIT_DATA_ROOT", str(generated_root))
    monkeypatch.setenv("TINYMASKGIT_DATA_ARGS", ",".join(f"{k}={v}" for k, v in GEN.items()))
    monkeypatch.setenv("TINYMASKGIT_N_PER_CLASS", "2")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "fd_classifier = " in outputs and "classifier held-out accuracy" in outputs
