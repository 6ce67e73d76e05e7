"""Serve the page: ``python -m tinymaskgit.app ckpt=... port=7860`` (``make app ARGS=...``)."""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path

import hydra
from omegaconf import DictConfig

from tinymaskgit.cli import friendly_errors, resolve_device
from tinymaskgit.config import decode_settings, require_positive_int
from tinymaskgit.errors import ConfigError

log = logging.getLogger(__name__)


def import_gradio() -> None:
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise ConfigError('the page needs Gradio: pip install -e ".[app]" (make install brings it)') from None


def serve(cfg: DictConfig, block: bool = True) -> object:
    """Load the model named by ``cfg.ckpt`` (or the newest under ``cfg.log_dir``) once and serve the page."""
    import_gradio()
    from tinymaskgit.app import handlers as h
    from tinymaskgit.app.page import CSS, build

    for key in [*(f"limits.{f.name}" for f in fields(h.Limits)), "concurrency", "port"]:
        require_positive_int(cfg, key)
    defaults = decode_settings(cfg)  # a bad sampler value stops here, before the model is loaded
    limits = h.Limits(**cfg.limits)
    log_dir = Path(cfg.log_dir).expanduser()
    ckpt = Path(cfg.ckpt).expanduser() if cfg.ckpt else h.newest_checkpoint(log_dir, "maskgit")
    session = None
    if ckpt is not None:
        log.info("loading %s", ckpt)
        session = h.Session.load(ckpt, resolve_device(cfg.device), limits, Path(cfg.out_dir))
        session.defaults, session.seed = defaults, int(cfg.seed)
    else:
        log.warning("no stage-2 checkpoint under %s; the page says how to train one", log_dir)
    clf = Path(cfg.classifier_ckpt).expanduser() if cfg.classifier_ckpt else h.newest_checkpoint(log_dir, "classifier")
    page = build(session, log_dir, clf, Path(cfg.paths.root_dir))
    page.queue(default_concurrency_limit=cfg.concurrency, max_size=cfg.queue_size)
    allowed = [str(Path(cfg.out_dir).resolve()), str(log_dir.resolve())]
    try:
        page.launch(
            server_name=cfg.host,
            server_port=cfg.port,
            prevent_thread_lock=not block,
            allowed_paths=allowed,
            css=CSS,
            quiet=True,
            footer_links=[],
        )
    except OSError as e:
        raise ConfigError(f"cannot serve on {cfg.host}:{cfg.port} ({e}); pass another port=...") from None
    print(f"tinymaskgit page on http://{cfg.host}:{cfg.port} (Ctrl+C stops it)", flush=True)
    return page


@hydra.main(version_base="1.3", config_path="../conf", config_name="app")
@friendly_errors
def main(cfg: DictConfig) -> None:
    serve(cfg)


if __name__ == "__main__":
    main()
