"""Inpaint images from a pixel mask: ``python -m tinymaskgit.inpaint ckpt=... data=cat_faces``.

Reads the data's inpainting split (or any ``images_dir`` + ``masks_dir`` of pairs), turns each 64x64 pixel
mask into a token mask, decodes, and writes the completed images under their own file names in
``<out_dir>/completed/``; for the images listed in ``step_strips``, a strip of every decoding step (latent
mask above predicted image) and an animated GIF in ``<out_dir>/steps/``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from tinymaskgit.cli import friendly_errors, prepare_out_dir, resolve_device
from tinymaskgit.config import decode_settings, require_positive_int
from tinymaskgit.data.base import InpaintSet
from tinymaskgit.data.cat_faces import load_inpaint_pairs
from tinymaskgit.errors import ConfigError, DataError
from tinymaskgit.inference import load_maskgit
from tinymaskgit.naming import class_ids_from_names
from tinymaskgit.pictures import save_png, save_step_strip, step_frames
from tinymaskgit.sampling.generate import inpaint as inpaint_images

log = logging.getLogger(__name__)


def load_pairs(cfg: DictConfig, image_size: int) -> InpaintSet:
    """The images to inpaint: ``images_dir`` + ``masks_dir`` when given, else the data's test split."""
    if (cfg.images_dir is None) != (cfg.masks_dir is None):
        raise ConfigError("images_dir and masks_dir go together; give both or neither")
    if cfg.images_dir is not None:
        return load_inpaint_pairs(Path(cfg.images_dir).expanduser(), Path(cfg.masks_dir).expanduser(), image_size)
    return instantiate(cfg.data).inpaint_split()


def run_inpaint(cfg: DictConfig) -> dict[str, object]:
    """Inpaint what the config names; returns the output folder and the files written."""
    require_positive_int(cfg, "batch_size")
    if not 0 <= cfg.mask_threshold < 1:
        raise ConfigError(f"mask_threshold must be in [0, 1), got {cfg.mask_threshold}")
    settings = decode_settings(cfg)
    device = resolve_device(cfg.device)
    m = load_maskgit(cfg.ckpt, device)
    pairs = load_pairs(cfg, m.tokenizer.image_size)
    if pairs.masked.shape[-1] != m.tokenizer.image_size:
        raise DataError(f"images are {pairs.masked.shape[-1]}px but the model makes {m.tokenizer.image_size}px")
    n = len(pairs.names) if cfg.limit is None else min(cfg.limit, len(pairs.names))
    class_ids = None
    if cfg.class_id is not None:
        class_ids = torch.full((n,), class_ids_from_names([cfg.class_id], m.class_names)[0])
    trace = [i for i in cfg.step_strips if 0 <= i < n]
    out = prepare_out_dir(cfg.out_dir, cfg.overwrite)
    res = inpaint_images(
        m,
        pairs.masked[:n],
        pairs.masks[:n],
        settings,
        class_ids,
        cfg.mask_threshold,
        cfg.paste_known,
        cfg.batch_size,
        cfg.seed,
        trace,
    )
    (out / "completed").mkdir(exist_ok=True)
    files = []
    for name, img in zip(pairs.names[:n], res.images):
        path = out / "completed" / name
        save_png(img, path)
        files.append(path)
    strips = []
    for i, masks, images in zip(trace, res.step_masks, res.step_images):
        path = out / "steps" / pairs.names[i]
        save_step_strip(step_frames(masks, images), path)
        strips.append(path)
    log.info("inpainted %d images into %s", n, out / "completed")
    return {"out_dir": out, "files": files, "strips": strips, "result": res, "pairs": pairs}


@hydra.main(version_base="1.3", config_path="conf", config_name="inpaint")
@friendly_errors
def main(cfg: DictConfig) -> None:
    res = run_inpaint(cfg)
    print(f"completed images in {res['out_dir']}/completed")


if __name__ == "__main__":
    main()
