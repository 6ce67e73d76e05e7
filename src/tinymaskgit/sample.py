"""Generate images per class: ``python -m tinymaskgit.sample ckpt=... classes=[teapot,goldfish] n_per_class=16``.

Writes ``<out_dir>/<class>/<class>_NNNN.png`` (one lossless PNG per sample), ``grid_<class>.png`` per class,
``grid.png`` (a row of the first 8 per class) and, for the first ``step_pictures`` samples of each class, a
strip of every decoding step with an animated GIF under ``steps/``.
"""

from __future__ import annotations

import logging

import hydra
import torch
from omegaconf import DictConfig

from tinymaskgit.cli import friendly_errors, prepare_out_dir, resolve_device
from tinymaskgit.config import decode_settings, require_positive_int
from tinymaskgit.data.images import to_float
from tinymaskgit.inference import load_maskgit
from tinymaskgit.naming import class_ids_from_names, slug
from tinymaskgit.pictures import save_grid, save_png, save_step_strip, step_frames
from tinymaskgit.sampling.generate import generate

log = logging.getLogger(__name__)


def sample(cfg: DictConfig) -> dict[str, object]:
    """Run the generation the config asks for; returns the output folder and what was written."""
    for key in ("n_per_class", "batch_size"):
        require_positive_int(cfg, key)
    settings = decode_settings(cfg)
    device = resolve_device(cfg.device)
    m = load_maskgit(cfg.ckpt, device)
    ids = class_ids_from_names(list(cfg.classes) if cfg.classes is not None else None, m.class_names)
    out = prepare_out_dir(cfg.out_dir, cfg.overwrite)
    per = cfg.n_per_class
    groups = [(i, m.class_names[i]) for i in ids] if ids else [(None, "samples")]
    class_ids = torch.tensor([i for i, _ in groups for _ in range(per)]) if ids else None
    trace = [g * per + j for g in range(len(groups)) for j in range(min(cfg.step_pictures, per))]
    res = generate(m, class_ids, per * len(groups), settings, cfg.batch_size, cfg.seed, trace)

    files = []
    for g, (_, name) in enumerate(groups):
        folder = out / slug(name)
        folder.mkdir(exist_ok=True)
        for j in range(per):
            path = folder / f"{slug(name)}_{j:04d}.png"
            save_png(res.images[g * per + j], path)
            files.append(path)
        save_grid(to_float(res.images[g * per : (g + 1) * per]), out / f"grid_{slug(name)}.png", nrow=min(per, 8))
    cols = min(per, 8)  # grid.png: the first 8 samples of each class, a row per class (all in grid_<class>.png)
    firsts = res.images.view(len(groups), per, *res.images.shape[1:])[:, :cols].flatten(0, 1)
    save_grid(to_float(firsts), out / "grid.png", nrow=cols)
    strips = []
    for t, masks, images in zip(trace, res.step_masks, res.step_images):
        g, j = divmod(t, per)
        path = out / "steps" / f"{slug(groups[g][1])}_{j:04d}.png"
        save_step_strip(step_frames(masks, images), path)
        strips.append(path)
    log.info("wrote %d samples of %d classes to %s", len(files), len(groups), out)
    return {"out_dir": out, "files": files, "strips": strips}


@hydra.main(version_base="1.3", config_path="conf", config_name="sample")
@friendly_errors
def main(cfg: DictConfig) -> None:
    res = sample(cfg)
    print(f"samples in {res['out_dir']}")


if __name__ == "__main__":
    main()
