"""VQ-VAE tokenizer: convolutional encoder, vector quantizer, decoder with a tanh output in [-1, 1].

References: van den Oord et al. 2017 (VQ-VAE); Esser et al. 2021 (VQGAN, the encoder/decoder layout).
Dimension legend: B batch, C channels, S image size, L latent grid size (S / 2**num_down), D code dim.

Encoder: conv_in -> num_down x (ResBlock, stride-2 conv) -> ResBlocks at the latent grid with an attention
layer between every two of them -> norm, SiLU, conv to D. The decoder mirrors it with nearest-neighbour
upsampling and ends in tanh. The quantizer between them is a learned codebook (``quantizer='vq'``) or finite
scalar quantization (``'fsq'``, models/fsq.py, ``prod(fsq_levels)`` implicit codes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

from tinymaskgit.models.blocks import Downsample, ResBlock, Upsample, make_norm, res_attn_stack
from tinymaskgit.models.config import config_of
from tinymaskgit.models.fsq import FiniteScalarQuantizer
from tinymaskgit.models.quantizer import QuantizerConfig, QuantizerOutput, VectorQuantizer


def num_downsamples(image_size: int, latent_size: int) -> int:
    """How many factor-2 downsamplings take ``image_size`` to ``latent_size`` (raises if not a power of 2)."""
    if latent_size <= 0 or image_size % latent_size:
        raise ValueError(f"image_size {image_size} is not divisible by latent_size {latent_size}")
    factor = image_size // latent_size
    n = int(round(math.log2(factor)))
    if 2**n != factor:
        raise ValueError(f"downsampling factor image_size/latent_size = {factor} must be a power of 2")
    return n


QUANTIZERS = ("vq", "fsq")


def check_quantizer(quantizer: str, fsq_levels: list[int] | None, codebook_size: int, prefix: str = "") -> None:
    """Raise ValueError, naming the keys with ``prefix``, unless the quantizer settings fit together."""
    if quantizer not in QUANTIZERS:
        raise ValueError(f"{prefix}quantizer must be one of {', '.join(QUANTIZERS)}, got {quantizer!r}")
    if quantizer != "fsq":
        return
    if not fsq_levels:
        raise ValueError(f"{prefix}quantizer=fsq needs {prefix}fsq_levels, e.g. [8,8,8] for 512 codes")
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 2 for n in fsq_levels):
        raise ValueError(f"{prefix}fsq_levels must be integers >= 2, got {list(fsq_levels)}")
    codes = math.prod(fsq_levels)
    if codes != codebook_size:
        raise ValueError(
            f"{prefix}fsq_levels {list(fsq_levels)} give {codes} codes but {prefix}codebook_size is {codebook_size}: "
            f"set {prefix}codebook_size={codes}"
        )


class Encoder(nn.Module):
    """(B, 3, S, S) image -> (B, D, L, L) continuous latents."""

    def __init__(
        self, in_channels: int, channels: list[int], num_down: int, code_dim: int, norm: str = "group"
    ) -> None:
        super().__init__()
        if len(channels) < num_down + 1:
            raise ValueError(f"encoder needs at least {num_down + 1} channel widths, got {channels}")
        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        down: list[nn.Module] = []
        for i in range(num_down):
            down += [ResBlock(channels[i], channels[i + 1], norm=norm), Downsample(channels[i + 1])]
        self.down = nn.Sequential(*down)
        self.mid = res_attn_stack(channels[num_down:], norm=norm)
        width = channels[-1]
        self.out = nn.Sequential(make_norm(width, norm), nn.SiLU(), nn.Conv2d(width, code_dim, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.mid(self.down(self.conv_in(x))))


class Decoder(nn.Module):
    """(B, D, L, L) quantized latents -> (B, 3, S, S) image in [-1, 1].

    ``channels`` is listed from the image side (like the encoder's), so the decoder walks it backwards.
    """

    def __init__(self, out_channels: int, channels: list[int], num_up: int, code_dim: int, norm: str = "group") -> None:
        super().__init__()
        if len(channels) < num_up + 1:
            raise ValueError(f"decoder needs at least {num_up + 1} channel widths, got {channels}")
        widths = channels[::-1]  # latent side first
        n_mid = len(widths) - num_up
        self.conv_in = nn.Conv2d(code_dim, widths[0], 3, padding=1)
        self.mid = res_attn_stack(widths[:n_mid], norm=norm)
        up: list[nn.Module] = []
        for i in range(n_mid - 1, len(widths) - 1):
            up += [Upsample(widths[i]), ResBlock(widths[i], widths[i + 1], norm=norm)]
        self.up = nn.Sequential(*up)
        width = widths[-1]
        self.out = nn.Sequential(make_norm(width, norm), nn.SiLU(), nn.Conv2d(width, out_channels, 3, padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.up(self.mid(self.conv_in(z)))))


@dataclass
class VQVAEConfig(QuantizerConfig):
    """The tokenizer's settings: the quantizer's fields plus the geometry of the encoder and decoder."""

    image_size: int = 64  # S
    latent_size: int = 8  # L; S / L must be a power of 2
    in_channels: int = 3
    encoder_channels: list[int] = field(default_factory=lambda: [32, 64, 64, 128])  # conv_in, then per block
    decoder_channels: list[int] | None = None  # listed from the image side; None mirrors the encoder's
    norm: str = "group"  # 'group' (VQGAN's GroupNorm) | 'channel' (per-position, no droplets)
    quantizer: str = "vq"  # 'vq' (a learned codebook) | 'fsq' (finite scalar quantization, no codebook)
    fsq_levels: list[int] | None = None  # 'fsq': values per quantized channel; their product is codebook_size

    def __post_init__(self) -> None:
        self.encoder_channels = list(self.encoder_channels)
        self.decoder_channels = list(self.decoder_channels or self.encoder_channels)
        if self.fsq_levels is not None:
            self.fsq_levels = list(self.fsq_levels)
        check_quantizer(self.quantizer, self.fsq_levels, self.codebook_size)


class VQVAE(nn.Module):
    """Encoder + vector quantizer + decoder. ``VQVAE(VQVAEConfig(...))`` or the config's fields as keywords;
    a checkpoint stores ``as_dict(net.config)`` and rebuilds the same network with ``VQVAE(**config)``."""

    def __init__(self, config: VQVAEConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        c = self.config = config_of(VQVAEConfig, config, kwargs)
        assert c.decoder_channels is not None
        n = num_downsamples(c.image_size, c.latent_size)
        self.image_size = c.image_size
        self.latent_size = c.latent_size
        self.codebook_size = c.codebook_size
        self.encoder = Encoder(c.in_channels, c.encoder_channels, n, c.code_dim, c.norm)
        self.quantizer: VectorQuantizer | FiniteScalarQuantizer
        if c.quantizer == "fsq":
            assert c.fsq_levels is not None
            self.quantizer = FiniteScalarQuantizer(c.fsq_levels, c.code_dim)
        else:
            quantizer = {f.name: getattr(c, f.name) for f in fields(QuantizerConfig)}
            self.quantizer = VectorQuantizer(QuantizerConfig(**quantizer))
        self.decoder = Decoder(c.in_channels, c.decoder_channels, n, c.code_dim, c.norm)

    @property
    def num_tokens(self) -> int:
        """Tokens per image, L*L."""
        return self.latent_size**2

    def encode(self, x: torch.Tensor) -> QuantizerOutput:
        """(B, 3, S, S) images in [-1, 1] -> quantizer output with (B, L, L) indices."""
        return self.quantizer(self.encoder(x))

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """(B, D, L, L) code vectors -> (B, 3, S, S) images."""
        return self.decoder(z_q)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, L, L) code ids -> (B, 3, S, S) images."""
        return self.decode(self.quantizer.codes_from_indices(indices))

    @torch.no_grad()
    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images -> (B, L, L) code ids."""
        return self.encode(x).indices

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput]:
        """Reconstruct ``x``; returns (reconstruction, quantizer output)."""
        q = self.encode(x)
        return self.decode(q.z_q), q
