"""Finite scalar quantization (Mentzer et al., 2023, "Finite Scalar Quantization: VQ-VAE Made Simple").

Dimension legend: B batch, D code dimension (the encoder's and decoder's side), d = len(levels) quantized
channels, H/W latent grid.

A 1x1 projection takes the encoder's D channels to d, each channel is bounded to ``levels[i]`` values by a
shifted tanh and rounded with a straight-through gradient, and a 1x1 projection takes the result back to D.
The implicit codebook is the grid of all level combinations, ``prod(levels)`` codes, so there is no codebook to
learn, no commitment loss and no dead code to restart. A code's id is its digits in a mixed radix, the first
channel the least significant. Quantization always runs in float32, outside autocast, as the VQ's does.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from tinymaskgit.models.quantizer import QuantizerOutput


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer in the forward pass, identity in the backward pass."""
    return x + (x.round() - x).detach()


class FiniteScalarQuantizer(nn.Module):
    """Per-channel rounding to a fixed grid of ``prod(levels)`` codes.

    Args:
        levels: values per quantized channel, each at least 2 (the paper's choice for 2^9 codes: [8, 8, 8]).
        code_dim: D, the channels of the encoder's output and the decoder's input.
    """

    basis: torch.Tensor
    level_counts: torch.Tensor

    def __init__(self, levels: list[int], code_dim: int) -> None:
        super().__init__()
        if not levels or any(int(n) < 2 for n in levels):
            raise ValueError(f"fsq_levels must be a non-empty list of integers >= 2, got {levels}")
        self.levels = [int(n) for n in levels]
        self.codebook_size = math.prod(self.levels)
        d = len(self.levels)
        self.project_in = nn.Conv2d(code_dim, d, 1)
        self.project_out = nn.Conv2d(d, code_dim, 1)
        # derived from ``levels``, so not saved: (d,) mixed-radix place values and values per channel
        self.register_buffer("basis", torch.cumprod(torch.tensor([1] + self.levels[:-1]), 0), persistent=False)
        self.register_buffer("level_counts", torch.tensor(self.levels, dtype=torch.float32), persistent=False)

    def _bound(self, z: torch.Tensor) -> torch.Tensor:
        """(B, d, H, W) -> the same, channel i squashed so that rounding gives levels[i] values."""
        levels = self.level_counts[None, :, None, None]
        half = (levels - 1) * (1 - 1e-3) / 2
        offset = torch.where(levels % 2 == 0, 0.5, 0.0)  # an even count has no value at 0: shift by half a step
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def _scale(self) -> torch.Tensor:
        """(1, d, 1, 1) half-widths: the rounded values divided by them lie in [-1, 1]."""
        return (self.level_counts // 2)[None, :, None, None]

    def codes_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, H, W) code ids -> (B, D, H, W) code vectors, as the decoder receives them."""
        digits = (indices[..., None] // self.basis) % self.level_counts.long()  # (B, H, W, d)
        grid = rearrange(digits.float(), "b h w d -> b d h w")
        with torch.autocast(device_type=indices.device.type, enabled=False):
            return self.project_out((grid - self._scale()) / self._scale())

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize (B, D, H, W) encoder outputs."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = self.project_in(z.float())  # (B, d, H, W)
            rounded = round_ste(self._bound(z))  # integers in [-half_width, levels - 1 - half_width]
            digits = (rounded + self._scale()).round().long()  # (B, d, H, W), in [0, levels)
            indices = (digits * self.basis[None, :, None, None]).sum(1)  # (B, H, W)
            z_q = self.project_out(rounded / self._scale())  # (B, D, H, W)
        zero = z_q.new_zeros(())
        return QuantizerOutput(z_q=z_q, indices=indices, vq_loss=zero, commitment_loss=zero, codebook_loss=zero)
