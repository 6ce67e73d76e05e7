"""Feature backends for the Fréchet distance, KID and class accuracy.

- ``inception``: the standard FID features, torch-fidelity's Inception-v3 (via torchmetrics), pool3 (2048).
  Numbers from it are called FID / KID.
- ``classifier``: the penultimate features (and predictions) of tinymaskgit's reference classifier, which
  needs no download. Numbers from it are called FD-classifier / KID-classifier and come with the
  classifier's held-out accuracy.

Every backend takes uint8 images (B, 3, S, S) and returns float64 features; its ``name`` and
``weights_hash`` travel with every number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch

from tinymaskgit.cache import hash_file
from tinymaskgit.data.images import to_float
from tinymaskgit.errors import CheckpointError
from tinymaskgit.models.classifier import ResNetClassifier

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"


class Backend(Protocol):
    """What the evaluation needs of a feature extractor."""

    name: str  # 'inception' | 'classifier' | ...
    metric: str  # what a Fréchet distance in these features is called ('fid', 'fd_classifier')
    weights_hash: str
    info: dict[str, Any]  # e.g. the classifier's held-out accuracy

    def features(self, images: torch.Tensor) -> torch.Tensor: ...

    def predict(self, images: torch.Tensor) -> torch.Tensor | None: ...


def _batched(fn, images: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    out = [fn(images[i : i + batch_size].to(device)).double().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.zeros(0)


def resolve_inception_weights(path: str | None) -> Path:
    """The Inception weights file: ``path`` if given, else the torch hub cache, downloading there if online."""
    if path:
        p = Path(path).expanduser()
        if not p.is_file():
            raise CheckpointError(f"eval.inception_weights={p} does not exist; it should be {INCEPTION_FILE}")
        return p
    cached = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if cached.is_file():
        return cached
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(INCEPTION_URL, str(cached), progress=False)
    except Exception as e:
        raise CheckpointError(
            f"the Inception weights {INCEPTION_FILE} are not in {cached.parent} and cannot be downloaded "
            f"({type(e).__name__}); download {INCEPTION_URL} to that folder or pass "
            f"eval.inception_weights=/path/to/{INCEPTION_FILE} (or use eval.backend=classifier)"
        ) from None
    return cached


class InceptionBackend:
    """torch-fidelity's Inception-v3 pool3 features (what torchmetrics' FID uses), on uint8 images."""

    name = "inception"
    metric = "fid"

    def __init__(self, weights: str | None = None, device: str | torch.device = "cpu", batch_size: int = 64) -> None:
        from torchmetrics.image.fid import NoTrainInceptionV3

        path = resolve_inception_weights(weights)
        self.weights_hash = hash_file(path)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.net = (
            NoTrainInceptionV3(
                name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(path)
            )
            .to(self.device)
            .eval()
        )
        self.info: dict[str, Any] = {"weights": path.name}

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, enabled=False):
            return _batched(lambda x: self.net(x).reshape(len(x), -1), images, self.batch_size, self.device)

    def predict(self, images: torch.Tensor) -> torch.Tensor | None:
        return None


class ClassifierBackend:
    """Penultimate features and predictions of a reference classifier (``inference.load_classifier``)."""

    name = "classifier"
    metric = "fd_classifier"

    def __init__(
        self,
        net: ResNetClassifier,
        meta: dict[str, Any],
        weights_hash: str,
        device: str | torch.device = "cpu",
        batch_size: int = 256,
    ) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.batch_size = batch_size
        self.weights_hash = weights_hash
        self.class_names = list(meta.get("class_names") or [])
        self.info = {"classifier_val_acc": meta.get("val_acc"), "classifier_dataset": meta.get("dataset")}

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return _batched(lambda x: self.net.features(to_float(x)), images, self.batch_size, self.device)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor | None:
        return _batched(lambda x: self.net(to_float(x)).argmax(-1), images, self.batch_size, self.device).long()
