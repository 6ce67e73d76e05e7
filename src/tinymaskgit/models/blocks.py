"""Convolutional building blocks shared by the VQ-VAE encoder, decoder and the reference classifier.

Dimension legend: B batch, C channels, H/W height/width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

NORMS = ("group", "channel")


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of each position separately (no statistics shared across positions)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.movedim(1, -1), x.shape[1:2], self.weight, self.bias, self.eps)  # (B, H, W, C)
        return x.movedim(-1, 1)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 32 groups that divide the channel count."""
    groups = min(32, channels)
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels, eps=1e-6)


def make_norm(channels: int, norm: str = "group") -> nn.Module:
    """The feature-map normalisation ``norm``.

    'group' (VQGAN's GroupNorm) normalises each group over all positions, so one strong local activation can
    rescale the whole map; 'channel' normalises each position over its channels alone, which removes the
    incentive for such spikes (the "droplet" artefact of Karras et al. 2020, sec. 2).
    """
    if norm == "group":
        return group_norm(channels)
    if norm == "channel":
        return ChannelNorm(channels)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


class ResBlock(nn.Module):
    """Pre-activation residual block: (norm, SiLU, conv3x3) twice, 1x1 skip when widths differ."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0, norm: str = "group") -> None:
        super().__init__()
        self.block = nn.Sequential(
            make_norm(in_channels, norm),
            nn.SiLU(),
            nn.Conv2d(in_channels, out_channels, 3, padding=1),
            make_norm(out_channels, norm),
            nn.SiLU(),
            nn.Dropout(dropout),
            nn.Conv2d(out_channels, out_channels, 3, padding=1),
        )
        self.skip = nn.Identity() if in_channels == out_channels else nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.block(x)


class AttnBlock(nn.Module):
    """Single-head spatial self-attention over the H*W positions of a feature map, with a residual."""

    def __init__(self, channels: int, norm: str = "group") -> None:
        super().__init__()
        self.norm = make_norm(channels, norm)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=1)
        q, k, v = (rearrange(t, "b c h w -> b 1 (h w) c") for t in (q, k, v))  # (B, 1, HW, C)
        out = F.scaled_dot_product_attention(q, k, v)
        out = rearrange(out, "b 1 (h w) c -> b c h w", h=h, w=w)
        return x + self.proj(out)


class Downsample(nn.Module):
    """Halve H and W with a stride-2 3x3 convolution (asymmetric padding as in VQGAN)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    """Double H and W: nearest-neighbour upsampling followed by a 3x3 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def res_attn_stack(widths: list[int], min_blocks: int = 2, norm: str = "group") -> nn.Sequential:
    """ResNet blocks through ``widths`` (each entry a block's output width) with attention between every two.

    ``widths[0]`` is the input width. At least ``min_blocks`` ResNet blocks are built (extra ones keep the
    last width), so the stack always holds an attention layer.
    """
    outs = list(widths[1:])
    while len(outs) < min_blocks:
        outs.append(outs[-1] if outs else widths[0])
    layers: list[nn.Module] = []
    prev = widths[0]
    for i, out in enumerate(outs):
        if i > 0:
            layers.append(AttnBlock(prev, norm))
        layers.append(ResBlock(prev, out, norm=norm))
        prev = out
    return nn.Sequential(*layers)
