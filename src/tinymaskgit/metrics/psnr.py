"""Peak signal-to-noise ratio of reconstructions."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of (B, 3, S, S) images in [-1, 1] (data range 2), per image, averaged over the batch
    (torchmetrics' PSNR over the image dimensions; an exact reconstruction gives inf)."""
    return peak_signal_noise_ratio(x.float(), y.float(), data_range=2.0, reduction="elementwise_mean", dim=(1, 2, 3))
