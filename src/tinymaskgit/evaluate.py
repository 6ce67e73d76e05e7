"""Evaluate by Fréchet distance / KID: ``python -m tinymaskgit.evaluate protocol=generation ckpt=...``.

Protocols:
- ``reconstruction``: the tokenizer's reconstructions of ``split`` vs the originals (overall and per class), plus
  the reference classifier's accuracy on the reconstructions and on the originals.
- ``generation``: ``n_per_class`` samples per class vs the ``reference_split`` images (overall and per
  class), plus the reference classifier's accuracy on the samples.
- ``inpainting``: the completed inpainting test images vs their ground truth (FD and KID), with the MaskGIT
  lab's grading band beside an Inception FID.
Each row names its backend's metric (``fid`` for Inception, ``fd_classifier`` for the classifier) and
carries its provenance (checkpoint hash, backend weights hash, N, reference split, sampler settings,
seed, wall time). Every row also holds precision, recall, density and coverage in the same features
(``eval.prdc``; ``metrics/prdc.py``): FD alone cannot tell a varied set from one template per class. With
``eval.classifier_ckpt`` beside the Inception backend, the reference classifier adds class accuracy and its
own FD as extra columns (never the criterion: a template per class raises both).
Results go to ``<out_dir>/results.json`` and ``results.md``.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from tinymaskgit.cache import hash_file
from tinymaskgit.cli import friendly_errors, prepare_out_dir, resolve_device
from tinymaskgit.config import decode_settings, require_positive_int
from tinymaskgit.data.images import to_float, to_uint8
from tinymaskgit.errors import ConfigError
from tinymaskgit.inference import classifier_backend, load_maskgit, load_tokenizer, read_checkpoint
from tinymaskgit.metrics.features import Backend, InceptionBackend
from tinymaskgit.metrics.fid import Stats, bootstrap_fd, fd_to, kid
from tinymaskgit.metrics.prdc import PRDC_KEYS, prdc
from tinymaskgit.metrics.psnr import psnr
from tinymaskgit.metrics.reference import cached_features

log = logging.getLogger(__name__)
PROTOCOLS = ("reconstruction", "generation", "inpainting")
# the MaskGIT lab's grading of inpainting FID (747 results against test_gt, pytorch-fid): full marks at <= 40
LAB_FULL_MARKS_FID = 40.0


def lab_band(fid: float) -> str:
    """Where an inpainting FID stands against the lab's full-marks line."""
    if fid <= LAB_FULL_MARKS_FID:
        return f"lab: full marks (FID <= {LAB_FULL_MARKS_FID:g})"
    return f"lab: above the full-marks line (FID <= {LAB_FULL_MARKS_FID:g}) by {fid - LAB_FULL_MARKS_FID:.1f}"


def build_backend(e: DictConfig, device: torch.device) -> Backend:
    """``eval.backend``: 'inception', 'classifier', or the import path of a Backend class (for tests)."""
    if e.backend == "inception":
        return InceptionBackend(e.inception_weights, device)
    if e.backend == "classifier":
        if not e.classifier_ckpt:
            raise ConfigError(
                "eval.backend=classifier needs eval.classifier_ckpt=/path/to/a stage=classifier checkpoint "
                "(train one with `python -m tinymaskgit.train stage=classifier data=...`)"
            )
        return classifier_backend(e.classifier_ckpt, device)
    if "." in str(e.backend):
        module, _, cls = str(e.backend).rpartition(".")
        return getattr(importlib.import_module(module), cls)(device=device)
    raise ConfigError(f"eval.backend={e.backend!r} is unknown; choose inception or classifier")


def build_judge(e: DictConfig, backend: Backend, device: torch.device) -> Backend | None:
    """The reference classifier for the extra columns (class accuracy, its FD), when the main backend is not it."""
    if e.classifier_ckpt and e.backend != "classifier":
        return classifier_backend(e.classifier_ckpt, device)
    return None


def extra_columns(judge: Backend | None, fake_images: torch.Tensor, real: np.ndarray | None) -> dict[str, Any]:
    """The reference classifier's FD of the fake images to ``real`` (its features of the reference)."""
    if judge is None or real is None or len(fake_images) < 2:
        return {}
    return {judge.metric: fd_to(judge.features(fake_images).numpy(), Stats.of(real))}


def score(
    backend: Backend, fake: np.ndarray, real: np.ndarray, e: DictConfig, bootstrap: int, seed: int
) -> dict[str, Any]:
    """FD, KID and (optionally) a bootstrap interval of fake vs real features, named by the backend."""
    m = backend.metric
    real_stats = Stats.of(real)
    row: dict[str, Any] = {"metric": m, "value": fd_to(fake, real_stats)}
    kid_mean, kid_std = kid(fake, real, e.kid_subsets, e.kid_subset_size, seed)
    row["kid_metric"] = "kid" if m == "fid" else f"kid_{backend.name}"
    row["kid"], row["kid_std"] = kid_mean, kid_std
    if bootstrap:
        row["ci95_lo"], row["ci95_hi"] = bootstrap_fd(fake, real_stats, bootstrap, seed)
    if e.prdc and len(fake) > e.prdc_k and len(real) > max(e.prdc_k, e.dc_k):
        row.update(prdc(real, fake, e.prdc_k, e.dc_k).as_dict())
    return row


@torch.no_grad()
def reconstruct(tok: torch.nn.Module, images: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """(B, 3, S, S) uint8 images through the tokenizer and back, in batches; uint8 on the CPU."""
    out = [
        to_uint8(tok(to_float(images[i : i + batch_size]).to(device))[0]).cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out)


def reconstruction(
    cfg: DictConfig, backend: Backend, judge: Backend | None, device: torch.device, seed: int
) -> list[dict[str, Any]]:
    dm = instantiate(cfg.data)
    split = dm.dataset(cfg.split)
    images, labels = split.images, split.labels
    fake_images = reconstruct(load_tokenizer(cfg.ckpt, device, stage=None), images, cfg.batch_size, device)
    if cfg.get("save_images"):
        save_by_class(fake_images, labels, list(dm.class_names), Path(cfg.images_dir))
    real = cached_features(backend, images, cfg.eval.cache_dir, dm.name, cfg.split)
    fake = backend.features(fake_images).numpy()
    judge_real = cached_features(judge, images, cfg.eval.cache_dir, dm.name, cfg.split) if judge else None
    row = score(backend, fake, real, cfg.eval, cfg.bootstrap, seed)
    row.update(
        n_fake=len(fake_images),
        n_real=len(images),
        reference=f"{dm.name}/{cfg.split}",
        class_name="all",
        psnr=float(psnr(to_float(fake_images), to_float(images))),
        **extra_columns(judge, fake_images, judge_real),
    )
    # how much of the class the tokenizer keeps: the classifier on the reconstructions and on the originals
    # (the ceiling that samples decoded by the same tokenizer are judged against); 1.0 per image recognised
    hits: tuple[torch.Tensor, torch.Tensor] | None = None
    clf = judge or backend
    if dm.num_classes:
        preds, preds_real = clf.predict(fake_images), clf.predict(images)
        if preds is not None and preds_real is not None:
            hits = (preds == labels).float(), (preds_real == labels).float()
            row.update(class_acc=float(hits[0].mean()), class_acc_real=float(hits[1].mean()))
    rows = [row]
    for c, name in enumerate(dm.class_names if cfg.per_class and dm.num_classes else []):
        sel = (labels == c).numpy()
        if sel.sum() < 2:
            continue
        r = score(backend, fake[sel], real[sel], cfg.eval, 0, seed)
        r.update(
            n_fake=int(sel.sum()),
            n_real=int(sel.sum()),
            reference=f"{dm.name}/{cfg.split}/{name}",
            class_name=name,
            psnr=float(psnr(to_float(fake_images[sel]), to_float(images[sel]))),
            **extra_columns(judge, fake_images[torch.from_numpy(sel)], None if judge_real is None else judge_real[sel]),
        )
        if hits is not None:
            r.update(class_acc=float(hits[0][sel].mean()), class_acc_real=float(hits[1][sel].mean()))
        rows.append(r)
    return rows


def save_by_class(images: torch.Tensor, labels: torch.Tensor, names: list[str], folder: Path) -> None:
    """Write each (3, S, S) uint8 image to ``folder/<class>/<class>_NNNN.png`` (NNNN counts within the class)."""
    from tinymaskgit.naming import slug
    from tinymaskgit.pictures import save_png

    seen: dict[int, int] = {}
    for img, y in zip(images, labels.tolist()):
        name = slug(names[y]) if names else "images"
        k = seen[y] = seen.get(y, -1) + 1
        (folder / name).mkdir(parents=True, exist_ok=True)
        save_png(img, folder / name / f"{name}_{k:04d}.png")


def generation(
    cfg: DictConfig, backend: Backend, judge: Backend | None, device: torch.device, seed: int
) -> list[dict[str, Any]]:
    from tinymaskgit.sampling.generate import generate

    require_positive_int(cfg, "n_per_class")
    m = load_maskgit(cfg.ckpt, device)
    dm = instantiate(cfg.data)
    ref = dm.dataset(cfg.reference_split)
    k = m.net.num_classes
    if k and k != dm.num_classes:
        raise ConfigError(f"the model has {k} classes but data={dm.name} has {dm.num_classes}; pick its data")
    n = cfg.n_per_class * max(k, 1)
    labels = torch.arange(k).repeat_interleave(cfg.n_per_class) if k else None
    res = generate(m, labels, n, decode_settings(cfg), cfg.batch_size, seed)
    fake = backend.features(res.images).numpy()
    real = cached_features(backend, ref.images, cfg.eval.cache_dir, dm.name, cfg.reference_split)
    judge_real = cached_features(judge, ref.images, cfg.eval.cache_dir, dm.name, cfg.reference_split) if judge else None
    row = score(backend, fake, real, cfg.eval, cfg.bootstrap, seed)
    row.update(n_fake=n, n_real=len(ref), reference=f"{dm.name}/{cfg.reference_split}", class_name="all")
    row.update(extra_columns(judge, res.images, judge_real))
    preds = (judge or backend).predict(res.images)
    if preds is not None and labels is not None:
        row["class_acc"] = float((preds == labels).float().mean())
    rows = [row]
    if cfg.per_class and k:
        for c in range(k):
            sel = slice(c * cfg.n_per_class, (c + 1) * cfg.n_per_class)
            in_c = (ref.labels == c).numpy()
            real_c = real[in_c]
            if cfg.n_per_class < 2 or len(real_c) < 2:
                continue
            r = score(backend, fake[sel], real_c, cfg.eval, 0, seed)
            r.update(
                n_fake=cfg.n_per_class,
                n_real=len(real_c),
                class_name=m.class_names[c],
                reference=f"{dm.name}/{cfg.reference_split}/{m.class_names[c]}",
                **extra_columns(judge, res.images[sel], None if judge_real is None else judge_real[in_c]),
            )
            if preds is not None:
                r["class_acc"] = float((preds[sel] == c).float().mean())
            rows.append(r)
    return rows


def read_results(folder: Path, names: list[str], size: int) -> torch.Tensor:
    """(N, 3, S, S) uint8: the image of each name in ``folder`` (an inpainting run's ``completed/``)."""
    from tinymaskgit.data.images import read_rgb

    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ConfigError(
            f"results_dir={folder} lacks {len(missing)} of the {len(names)} test images (first: {missing[0]}); "
            "point it at the folder the inpainting wrote (its completed/)"
        )
    return torch.stack([read_rgb(folder / n, size) for n in names])


def inpainting(
    cfg: DictConfig, backend: Backend, judge: Backend | None, device: torch.device, seed: int
) -> list[dict[str, Any]]:
    from tinymaskgit.sampling.generate import inpaint

    dm = instantiate(cfg.data)
    pairs = dm.inpaint_split()
    if pairs.ground_truth is None:
        raise ConfigError(f"data={dm.name} ships no inpainting ground truth (test_gt/ or test_gt.csv)")
    if cfg.results_dir:  # score images inpainted earlier (e.g. the lab's results folder)
        images = read_results(Path(cfg.results_dir).expanduser(), list(pairs.names), pairs.ground_truth.shape[-1])
    else:
        m = load_maskgit(cfg.ckpt, device)
        images = inpaint(
            m,
            pairs.masked,
            pairs.masks,
            decode_settings(cfg),
            None,
            cfg.mask_threshold,
            cfg.paste_known,
            cfg.batch_size,
            seed,
        ).images
    real = cached_features(backend, pairs.ground_truth, cfg.eval.cache_dir, dm.name, "test_gt")
    row = score(backend, backend.features(images).numpy(), real, cfg.eval, cfg.bootstrap, seed)
    row.update(n_fake=len(images), n_real=len(real), reference=f"{dm.name}/test_gt")
    if judge is not None:
        judge_real = cached_features(judge, pairs.ground_truth, cfg.eval.cache_dir, dm.name, "test_gt")
        row.update(extra_columns(judge, images, judge_real))
    if row["metric"] == "fid":
        row["lab_grade"] = lab_band(row["value"])
    return [row]


def evaluate(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run ``cfg.protocol`` for each seed; returns the result rows (also written to out_dir)."""
    if cfg.protocol not in PROTOCOLS:
        raise ConfigError(f"protocol={cfg.protocol!r} is unknown; choose one of {', '.join(PROTOCOLS)}")
    require_positive_int(cfg, "batch_size")
    device = resolve_device(cfg.device)
    seeds = list(cfg.seeds) if cfg.seeds else [cfg.seed]
    no_ckpt = OmegaConf.is_missing(cfg, "ckpt")
    if cfg.protocol == "inpainting" and cfg.results_dir and no_ckpt:
        ckpt_hash = None
    else:
        ckpt_hash = hash_file(cfg.ckpt) if Path(cfg.ckpt).is_file() else None
        read_checkpoint(cfg.ckpt)  # a clear error for a missing or foreign file, before any work
    backend = build_backend(cfg.eval, device)
    judge = build_judge(cfg.eval, backend, device)
    out = prepare_out_dir(cfg.out_dir, cfg.overwrite)
    run = {"reconstruction": reconstruction, "generation": generation, "inpainting": inpainting}[cfg.protocol]
    sampler = asdict(decode_settings(cfg))  # provenance: every sampler setting of the rows
    # 'precision' in a result row is the metric (fidelity); the sampler's arithmetic is 'compute_precision'
    sampler["compute_precision"] = sampler.pop("precision")
    rows = []
    for seed in seeds:
        t = time.perf_counter()
        new = run(cfg, backend, judge, device, seed)
        wall = time.perf_counter() - t
        for r in new:
            r.update(
                protocol=cfg.protocol,
                seed=seed,
                wall_s=round(wall, 2),
                backend=backend.name,
                backend_weights=backend.weights_hash,
                ckpt=None if no_ckpt else str(cfg.ckpt),
                ckpt_hash=ckpt_hash,
                **backend.info,
                **(judge.info if judge is not None else {}),
                **(sampler if cfg.protocol != "reconstruction" else {}),
            )
        rows += new
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    (out / "results.md").write_text(markdown(rows))
    OmegaConf.save(cfg, out / "evaluate_config.yaml", resolve=True)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """A results table: one line per row, the metric named by its backend."""
    head = "| protocol | class | metric | value | KID | precision | recall | density | coverage | N gen / ref "
    head += "| reference | seed | extra |\n" + "|---" * 13 + "|\n"
    lines = []
    for r in rows:
        extra = []
        if "lab_grade" in r:
            extra.append(r["lab_grade"])
        extra += [
            f"{k} {v:.3g}" for k, v in r.items() if k.startswith("fd_") and k != r["metric"] and isinstance(v, float)
        ]
        if "ci95_lo" in r:
            extra.append(f"95% CI [{r['ci95_lo']:.2f}, {r['ci95_hi']:.2f}]")
        if "class_acc" in r:
            real_acc = f" (originals {r['class_acc_real']:.1%})" if "class_acc_real" in r else ""
            extra.append(f"class acc {r['class_acc']:.1%}{real_acc}")
        if "psnr" in r:
            extra.append(f"PSNR {r['psnr']:.2f} dB")
        if r.get("classifier_val_acc") is not None:
            extra.append(f"classifier held-out acc {r['classifier_val_acc']:.1%}")
        spread = "(whole sets)" if r["kid_std"] is None else f"± {r['kid_std']:.2g}"
        kid_txt = f"{r['kid_metric']} {r['kid']:.3g} {spread}"
        lines.append(
            f"| {r['protocol']} | {r.get('class_name', 'all')} | {r['metric']} | {r['value']:.3g} | {kid_txt} | "
            + " | ".join(f"{r[k]:.3f}" if k in r else "" for k in PRDC_KEYS)
            + f" | {r['n_fake']} / {r['n_real']} | {r['reference']} | {r['seed']} | {'; '.join(extra)} |"
        )
    return head + "\n".join(lines) + "\n"


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
@friendly_errors
def main(cfg: DictConfig) -> float:
    rows = evaluate(cfg)
    print(markdown(rows))
    return float(np.mean([r["value"] for r in rows if r.get("class_name", "all") == "all"]))


if __name__ == "__main__":
    main()
