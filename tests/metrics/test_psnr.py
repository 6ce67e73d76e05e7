"""PSNR of images in [-1, 1]: per image, then averaged."""

from __future__ import annotations

import math

import pytest
import torch

from tinymaskgit.metrics.psnr import psnr


def test_psnr_is_the_mean_of_per_image_values() -> None:
    x = torch.zeros(2, 3, 8, 8)
    y = x.clone()
    y[0] += 0.1  # mse 0.01: 10 log10(4 / 0.01) = 26.02 dB
    y[1] += 0.2  # mse 0.04: 20.00 dB
    per_image = [10 * math.log10(4 / 0.01), 10 * math.log10(4 / 0.04)]
    assert float(psnr(y, x)) == pytest.approx(sum(per_image) / 2, rel=1e-5)
    assert float(psnr(y, x)) != pytest.approx(10 * math.log10(4 / 0.025), rel=1e-3)  # not the PSNR of the pooled MSE
