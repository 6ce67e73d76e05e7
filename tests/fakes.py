"""Test doubles: a tiny injected feature backend (a fixed random projection of 8x8-pooled pixels, no download),
slow training steps for kill tests, and the MaskGIT lab's course files (VQGAN.pt + VQGAN.yml) with random weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml

from tinymaskgit.data.images import to_float
from tinymaskgit.models.lab_vqgan import LabVQGAN, LabVQGANConfig


class TinyFeatures:
    name = "tiny"
    metric = "fd_tiny"
    weights_hash = "tiny0"

    def __init__(self, device: Any = "cpu", dim: int = 16) -> None:
        g = torch.Generator().manual_seed(0)
        self.proj = torch.randn(3 * 8 * 8, dim, generator=g, dtype=torch.float64)
        self.info: dict[str, Any] = {}
        self.calls = 0

    def features(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        pooled = F.adaptive_avg_pool2d(to_float(images), 8).flatten(1).double()  # (B, 192)
        return torch.tanh(pooled @ self.proj)

    def predict(self, images: torch.Tensor) -> torch.Tensor | None:
        return None


class TinyClassifier(TinyFeatures):
    """TinyFeatures that also classify: the class is the argmax of the first ten feature dimensions."""

    name = "tinyclf"
    metric = "fd_tinyclf"

    def predict(self, images: torch.Tensor) -> torch.Tensor | None:
        return self.features(images)[:, :10].argmax(-1)


class WeightRecorder:
    """A Lightning callback that keeps a copy of the transformer's raw weights after every optimizer step."""

    history: list[dict[str, torch.Tensor]] = []

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        import lightning as L

        class _Recorder(L.Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                cls.history.append({k: v.detach().clone() for k, v in pl_module.net.state_dict().items()})

        cls.history = []
        return _Recorder()


class SlowSteps:
    """A Lightning callback that sleeps after every training batch, so a test can kill the run mid-epoch."""

    def __new__(cls, seconds: float = 0.5) -> Any:
        import time

        import lightning as L

        class _Slow(L.Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                time.sleep(seconds)

        return _Slow()


class StopAtStep:
    """A Lightning callback that asks training to stop after optimizer step ``step``, mid-epoch, the way
    Lightning's Timer does when ``trainer.max_time`` runs out."""

    def __new__(cls, step: int) -> Any:
        import lightning as L

        class _Stop(L.Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                if trainer.global_step >= step:
                    trainer.should_stop = True

        return _Stop()


# the lab VQGAN's layout at small sizes (the lab's own: LabVQGANConfig())
SMALL = dict(
    enc_channels=[32, 32, 32, 64, 64, 64],
    dec_channels=[32, 32, 64, 64, 64],
    latent_dim=32,
    num_codebook_vectors=64,
    img_resolution=64,
    latent_resolution=16,
)


def course_files(folder: Path, **sizes) -> Path:
    """VQGAN.pt (plain state_dict, random weights) and VQGAN.yml ('model_param' as the lab's), in ``folder``."""
    torch.manual_seed(0)
    net = LabVQGAN(LabVQGANConfig(**sizes))
    with torch.no_grad():  # random but not degenerate: spread the codebook like trained codes
        net.codebook.embedding.weight.normal_()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), folder / "VQGAN.pt")
    params = {"image_channels": 3, "beta": 0.25, **sizes}
    (folder / "VQGAN.yml").write_text(yaml.safe_dump({"model_param": params}))
    return folder / "VQGAN.pt"
