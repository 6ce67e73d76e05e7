"""The MaskGIT lab's VQGAN, in its exact parameter layout, so the course's ``VQGAN.pt`` loads as it is.

The lab hands every student a pretrained VQGAN (a plain ``state_dict`` of its ``VQGAN`` module, sizes in
``VQGAN.yml``) and forbids retraining it. Its layout follows dome272/VQGAN-pytorch (Esser et al. 2021):
- children ``encoder.model``, ``decoder.model`` (``nn.Sequential``), ``codebook.embedding``, and the 1x1
  ``quant_conv`` / ``post_quant_conv``;
- blocks: ``ResidualBlock`` (GroupNorm(32, eps 1e-6) + Swish + 3x3 conv, twice; a 1x1 ``channel_up`` when the
  width changes), ``NonLocalBlock`` (single-head attention over the positions, 1x1 q/k/v/proj_out),
  ``DownSampleBlock`` (pad right/bottom by 1, 3x3 conv stride 2), ``UpSampleBlock`` (nearest x2, 3x3 conv);
- encoder: conv_in, then for each of the ``len(enc_channels) - 1`` stages two residual blocks (attention
  after each where the current resolution is ``latent_resolution``) and a downsampling after stages 2 and 4;
  then residual, attention, residual, GroupNorm, Swish, conv to ``latent_dim``;
- decoder: conv_in, residual, attention, residual; then for each width of ``dec_channels`` from the last to the
  first, three residual blocks (attention at ``latent_resolution``) and an upsampling after stages 4 and 2;
  then GroupNorm and a conv to RGB (no Swish between them, no tanh: the lab's decoder as it is);
- codebook: nearest code by z^2 + e^2 - 2 z.e over the ``latent_dim`` channels, argmin (first on ties).
Images are in [-1, 1]; tokens are (B, L, L) with L = ``latent_resolution``.

Dimension legend: B batch, C channels, H W spatial, D latent_dim, K codebook size, L latent side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tinymaskgit.models.config import config_of
from tinymaskgit.models.quantizer import QuantizerOutput, all_reduce_sum, dead_codes, sample_rows

ARCH = "lab_vqgan"
DOWN_AT = (2, 4)  # encoder stages followed by a downsampling (the lab's fixed indices)
UP_AT = (4, 2)  # decoder stages followed by an upsampling


@dataclass
class LabVQGANConfig:
    """The keys of the lab's ``VQGAN.yml`` (``model_param``), with its values as defaults."""

    image_channels: int = 3
    enc_channels: list[int] = field(default_factory=lambda: [128, 128, 128, 256, 256, 512])
    dec_channels: list[int] = field(default_factory=lambda: [128, 128, 256, 256, 512])
    latent_dim: int = 256
    img_resolution: int = 64
    latent_resolution: int = 16
    num_codebook_vectors: int = 1024
    beta: float = 0.25
    arch: str = ARCH  # tells a checkpoint's tokenizer_config from a VQVAE's

    def __post_init__(self) -> None:
        self.enc_channels, self.dec_channels = list(self.enc_channels), list(self.dec_channels)
        if self.arch != ARCH:
            raise ValueError(f"arch must be {ARCH!r}, got {self.arch!r}")
        downs = sum(1 for i in range(len(self.enc_channels) - 1) if i in DOWN_AT)
        ups = sum(1 for i in range(len(self.dec_channels)) if i in UP_AT)
        if self.img_resolution != self.latent_resolution * 2**downs or downs != ups:
            raise ValueError(
                f"enc_channels of length {len(self.enc_channels)} downsample {downs}x and dec_channels of length "
                f"{len(self.dec_channels)} upsample {ups}x, which does not take img_resolution={self.img_resolution} "
                f"to latent_resolution={self.latent_resolution} and back"
            )
        for c in (*self.enc_channels, *self.dec_channels):
            if c % 32:
                raise ValueError(f"every channel count must be a multiple of 32 (GroupNorm(32)), got {c}")


# -- blocks (names as in the lab's checkpoint) ----------------------------------------------------------------
class GroupNorm(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gn = nn.GroupNorm(32, channels, eps=1e-6, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gn(x)


class Swish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            GroupNorm(c_in),
            Swish(),
            nn.Conv2d(c_in, c_out, 3, 1, 1),
            GroupNorm(c_out),
            Swish(),
            nn.Conv2d(c_out, c_out, 3, 1, 1),
        )
        self.channel_up = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.channel_up(x) if self.channel_up is not None else x
        return skip + self.block(x)


class NonLocalBlock(nn.Module):
    """Single-head self-attention over the H*W positions, scaled by C^-1/2, with a residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gn = GroupNorm(channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.gn(x)
        q = rearrange(self.q(y), "b c h w -> b (h w) c")
        k = rearrange(self.k(y), "b c h w -> b c (h w)")
        v = rearrange(self.v(y), "b c h w -> b c (h w)")
        attn = F.softmax(torch.bmm(q, k) * int(c) ** -0.5, dim=2)  # (B, HW queries, HW keys)
        out = torch.bmm(v, attn.transpose(1, 2))  # (B, C, HW)
        return x + self.proj_out(rearrange(out, "b c (h w) -> b c h w", h=h, w=w))


class DownSampleBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # (B, C, H/2, W/2)


class UpSampleBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0))  # (B, C, 2H, 2W), nearest


class Encoder(nn.Module):
    def __init__(self, c: LabVQGANConfig) -> None:
        super().__init__()
        ch, res = c.enc_channels, c.img_resolution
        layers: list[nn.Module] = [nn.Conv2d(c.image_channels, ch[0], 3, 1, 1)]
        for i in range(len(ch) - 1):
            width = ch[i]
            for _ in range(2):
                layers.append(ResidualBlock(width, ch[i + 1]))
                width = ch[i + 1]
                if res == c.latent_resolution:
                    layers.append(NonLocalBlock(width))
            if i in DOWN_AT:
                layers.append(DownSampleBlock(ch[i + 1]))
                res //= 2
        last = ch[-1]
        layers += [ResidualBlock(last, last), NonLocalBlock(last), ResidualBlock(last, last), GroupNorm(last), Swish()]
        layers.append(nn.Conv2d(last, c.latent_dim, 3, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class Decoder(nn.Module):
    def __init__(self, c: LabVQGANConfig) -> None:
        super().__init__()
        ch, res = c.dec_channels, c.latent_resolution
        top = ch[-1]
        layers: list[nn.Module] = [nn.Conv2d(c.latent_dim, top, 3, 1, 1), ResidualBlock(top, top)]
        layers += [NonLocalBlock(top), ResidualBlock(top, top)]
        width = top
        for i in reversed(range(len(ch))):
            for _ in range(3):
                layers.append(ResidualBlock(width, ch[i]))
                width = ch[i]
                if res == c.latent_resolution:
                    layers.append(NonLocalBlock(width))
            if i in UP_AT:
                layers.append(UpSampleBlock(width))
                res *= 2
        layers += [GroupNorm(width), nn.Conv2d(width, c.image_channels, 3, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z)


class Codebook(nn.Module):
    def __init__(self, c: LabVQGANConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(c.num_codebook_vectors, c.latent_dim)
        self.embedding.weight.data.uniform_(-1.0 / c.num_codebook_vectors, 1.0 / c.num_codebook_vectors)

    def indices(self, z: torch.Tensor) -> torch.Tensor:
        """(B, D, L, L) latents -> (B, L, L) ids of the nearest codes, with the lab's distance arithmetic."""
        b, _, h, w = z.shape
        flat = rearrange(z, "b d h w -> (b h w) d")
        e = self.embedding.weight  # (K, D)
        d = torch.sum(flat**2, dim=1, keepdim=True) + torch.sum(e**2, dim=1) - 2 * torch.matmul(flat, e.t())
        return d.argmin(dim=1).view(b, h, w)

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, L, L) ids -> (B, D, L, L) code vectors."""
        return rearrange(self.embedding(indices), "b h w d -> b d h w")


class LabVQGAN(nn.Module):
    """The lab's VQGAN with this package's tokenizer interface (``tokenize``, ``decode_indices``, ``forward``).

    Loaded from a course ``VQGAN.pt`` it is frozen (the lab forbids retraining it); ``model=lab_vqgan
    stage=vqvae`` trains one in the same layout, for working without the course file."""

    steps_unused: torch.Tensor

    def __init__(
        self,
        config: LabVQGANConfig | None = None,
        *,
        seed_codes: bool = False,
        restart_dead: bool = False,
        dead_after: int = 100,
        **kwargs: Any,
    ) -> None:
        """``LabVQGAN(LabVQGANConfig(...))`` or the ``VQGAN.yml`` keys as keywords.

        Training only (a loaded course model never trains; none of these changes the layout or the lookup):
        ``seed_codes`` sets the codes to random encoder outputs on the first training batch, while the codebook
        still holds the lab's initialisation (uniform in +-1/K), so that a fresh run does not collapse onto a
        few codes; ``restart_dead`` re-seeds codes no batch has picked for ``dead_after`` training steps."""
        super().__init__()
        c = self.config = config_of(LabVQGANConfig, config, kwargs)
        if dead_after < 1:
            raise ValueError(f"dead_after must be at least 1 step, got {dead_after}")
        self.seed_codes, self.restart_dead, self.dead_after = seed_codes, restart_dead, dead_after
        self._seeding_done = not seed_codes  # set once the codebook is seeded or found trained (a resumed run)
        self.image_size = c.img_resolution
        self.latent_size = c.latent_resolution
        self.codebook_size = c.num_codebook_vectors
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)
        self.codebook = Codebook(c)
        self.quant_conv = nn.Conv2d(c.latent_dim, c.latent_dim, 1)
        self.post_quant_conv = nn.Conv2d(c.latent_dim, c.latent_dim, 1)
        # not in the state_dict: VQGAN.pt keeps the course's keys exactly
        self.register_buffer("steps_unused", torch.zeros(c.num_codebook_vectors, dtype=torch.long), persistent=False)

    @property
    def num_tokens(self) -> int:
        return self.latent_size**2

    def encode(self, x: torch.Tensor) -> QuantizerOutput:
        """(B, 3, S, S) images in [-1, 1] -> straight-through code vectors, (B, L, L) ids and the lab's VQ loss
        mean((sg[z_q] - z)^2) + beta * mean((z_q - sg[z])^2) (its codebook's arithmetic, beta where it puts it)."""
        z = self.quant_conv(self.encoder(x))  # (B, D, L, L)
        if self.training and not self._seeding_done:
            if self._codebook_untrained():
                self._set_codes(torch.arange(self.codebook_size, device=z.device), z)
            self._seeding_done = True
        idx = self.codebook.indices(z)
        if self.training and self.restart_dead:
            self._restart_dead(idx, z)
        codes = self.codebook.codes(idx)
        commitment = torch.mean((codes.detach() - z) ** 2)
        codebook = torch.mean((codes - z.detach()) ** 2)
        z_q = z + (codes - z).detach()  # straight-through, as the lab's forward
        vq_loss = commitment + self.config.beta * codebook
        return QuantizerOutput(
            z_q=z_q, indices=idx, vq_loss=vq_loss, commitment_loss=commitment, codebook_loss=codebook
        )

    def _codebook_untrained(self) -> bool:
        """True while every code is still within the lab's initialisation range (a fresh run, not a resumed one)."""
        return bool(self.codebook.embedding.weight.abs().max() <= 1.0 / self.codebook_size)

    @torch.no_grad()
    def _set_codes(self, which: torch.Tensor, z: torch.Tensor) -> None:
        """Set the codes ``which`` to random latent vectors of this batch (rank 0's under DDP)."""
        flat = rearrange(z.detach().float(), "b d h w -> (b h w) d")
        self.codebook.embedding.weight[which] = sample_rows(flat, which.numel()).to(self.codebook.embedding.weight)
        self.steps_unused[which] = 0

    @torch.no_grad()
    def _restart_dead(self, idx: torch.Tensor, z: torch.Tensor) -> None:
        used = all_reduce_sum(torch.bincount(idx.flatten(), minlength=self.codebook_size).float()) > 0
        dead = dead_codes(self.steps_unused, used, self.dead_after)
        if dead.numel() > 0:
            self._set_codes(dead, z)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """(B, D, L, L) code vectors -> (B, 3, S, S) images (the decoder's raw output, as the lab's)."""
        return self.decoder(self.post_quant_conv(z_q))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, L, L) code ids -> (B, 3, S, S) images."""
        return self.decode(self.codebook.codes(indices))

    @torch.no_grad()
    def tokenize(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) images -> (B, L, L) code ids."""
        return self.encode(x).indices

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, QuantizerOutput]:
        q = self.encode(x)
        return self.decode(q.z_q), q
