"""Save a trained ``model=lab_vqgan`` tokenizer as the MaskGIT lab ships its VQGAN: ``VQGAN.pt`` (a plain
state_dict) and ``VQGAN.yml`` (its sizes under ``model_param``).

    python -m tinymaskgit.export_vqgan <stage=vqvae run>/checkpoints/last.ckpt OUT_DIR
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import torch
import yaml

from tinymaskgit.errors import TinyMaskGITError
from tinymaskgit.inference import load_tokenizer
from tinymaskgit.models.lab_vqgan import LabVQGAN


def export(ckpt: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir/VQGAN.pt`` and ``out_dir/VQGAN.yml`` from a lab-layout tokenizer checkpoint."""
    tok = load_tokenizer(ckpt)
    if not isinstance(tok, LabVQGAN):
        raise TinyMaskGITError(f"{ckpt} holds a VQ-VAE, not the lab's VQGAN layout; train it with model=lab_vqgan")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.clone() for k, v in tok.state_dict().items()}, out / "VQGAN.pt")
    params = {k: v for k, v in asdict(tok.config).items() if k != "arch"}
    (out / "VQGAN.yml").write_text(yaml.safe_dump({"model_param": params}, sort_keys=False))
    return out / "VQGAN.pt"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ckpt", help="a stage=vqvae checkpoint trained with model=lab_vqgan")
    p.add_argument("out_dir")
    a = p.parse_args(argv)
    try:
        print(f"wrote {export(a.ckpt, a.out_dir)} and VQGAN.yml beside it")
    except TinyMaskGITError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
