"""Vector quantizer for the VQ-VAE (van den Oord et al., 2017, "Neural Discrete Representation Learning").

Dimension legend: B batch, D code dimension, H/W latent grid, N = B*H*W flattened vectors, K codebook size.

Loss convention (the paper's): ``vq_loss = codebook_loss + beta * commitment_loss`` where
``codebook_loss = ||sg[z_e] - e||^2`` moves the codes and ``commitment_loss = ||z_e - sg[e]||^2`` keeps the
encoder close to its codes; beta weighs the encoder term only. With ``ema=True`` the codebook is updated by
exponential moving averages of the assigned encoder outputs instead of by the codebook loss (which is then 0).
The forward pass returns the straight-through estimate ``z_e + sg[z_q - z_e]``, so the decoder's gradient
reaches the encoder unchanged. Quantization always runs in float32, outside autocast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tinymaskgit.models.config import config_of


@dataclass
class QuantizerOutput:
    """What the quantizer returns for a batch of latents."""

    z_q: torch.Tensor  # (B, D, H, W) straight-through quantized latents
    indices: torch.Tensor  # (B, H, W) code ids, int64
    vq_loss: torch.Tensor  # scalar: codebook_loss + beta * commitment_loss
    commitment_loss: torch.Tensor  # scalar, before beta
    codebook_loss: torch.Tensor  # scalar (0 with EMA updates)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over the processes in place (itself outside DDP)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
    return t


def sample_rows(flat: torch.Tensor, n: int, jitter: bool = True) -> torch.Tensor:
    """``n`` random rows of the (N, D) ``flat``, rank 0's under DDP so that every process gets the same; with
    ``jitter`` each gets noise of 1e-3 of their spread, since identical codes would tie forever."""
    picks = flat[torch.randint(0, flat.shape[0], (n,), device=flat.device)]
    if jitter:
        picks = picks + 1e-3 * picks.std() * torch.randn_like(picks)
    if dist.is_available() and dist.is_initialized():
        dist.broadcast(picks, src=0)
    return picks


def dead_codes(steps_unused: torch.Tensor, used: torch.Tensor, dead_after: int) -> torch.Tensor:
    """Count one more step for every code not in ``used`` (bool, (K,)), reset the used ones in place, and return
    the ids of the codes unused for ``dead_after`` steps."""
    steps_unused.add_(1).masked_fill_(used, 0)
    return (steps_unused >= dead_after).nonzero().squeeze(1)


def codebook_stats(counts: torch.Tensor) -> tuple[float, float]:
    """Usage (% of codes used at least once) and perplexity exp(H(p)) of a vector of code counts."""
    counts = counts.double()
    total = counts.sum()
    if total == 0:
        return 0.0, 0.0
    p = counts / total
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    return float((counts > 0).double().mean() * 100.0), float(entropy.exp())


@dataclass
class QuantizerConfig:
    """The vector quantizer's settings (the VQ-VAE config carries the same fields)."""

    codebook_size: int = 512  # K codes
    code_dim: int = 64  # D, the size of each code
    beta: float = 0.25  # commitment weight on the encoder term
    ema: bool = False  # EMA codebook updates instead of the codebook loss
    ema_decay: float = 0.99
    l2_norm: bool = False  # cosine-similarity lookup on l2-normalised codes
    restart_dead: bool = False  # re-seed codes unused for ``dead_after`` steps from encoder outputs
    dead_after: int = 100
    init_from_data: bool = True  # seed the codes with the encoder outputs of the first batch


class VectorQuantizer(nn.Module):
    """Nearest-neighbour codebook lookup with straight-through gradients.

    Args:
        codebook_size: K, the number of codes (at least 2).
        code_dim: D, the dimension of each code.
        beta: weight of the commitment (encoder) term.
        ema: update codes by exponential moving averages instead of by gradient.
        ema_decay: decay of those averages.
        l2_norm: compare and return l2-normalised vectors (cosine similarity lookup, as in ViT-VQGAN).
        restart_dead: replace codes unused for ``dead_after`` training steps by random encoder outputs.
        dead_after: steps without use before a code is restarted.
        init_from_data: on the first training batch, set the codes to random encoder outputs, so they start
            where the encoder's outputs are instead of near 0 (otherwise few codes are ever picked).
    """

    ema_cluster_size: torch.Tensor
    ema_embed_sum: torch.Tensor
    steps_unused: torch.Tensor
    initialized: torch.Tensor

    def __init__(self, config: QuantizerConfig | None = None, **kwargs: Any) -> None:
        """``VectorQuantizer(QuantizerConfig(...))`` or the same fields as keywords."""
        super().__init__()
        c = self.config = config_of(QuantizerConfig, config, kwargs)
        if c.codebook_size < 2:
            raise ValueError(f"codebook_size must be at least 2, got {c.codebook_size}")
        self.codebook_size, self.code_dim, self.beta = c.codebook_size, c.code_dim, c.beta
        self.ema, self.ema_decay, self.l2_norm = c.ema, c.ema_decay, c.l2_norm
        self.restart_dead, self.dead_after, self.init_from_data = c.restart_dead, c.dead_after, c.init_from_data
        codebook_size, code_dim = c.codebook_size, c.code_dim
        self.embedding = nn.Embedding(codebook_size, code_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / codebook_size, 1.0 / codebook_size)
        if c.ema:
            self.embedding.weight.requires_grad_(False)
            # every code starts as the mean of one pseudo-vector (itself): sum / size = the initial weight, so an
            # unused code decays in both and stays put (a zero size would divide its sum by ~1e-5)
            self.register_buffer("ema_cluster_size", torch.ones(codebook_size))
            self.register_buffer("ema_embed_sum", self.embedding.weight.detach().clone())
        self.register_buffer("steps_unused", torch.zeros(codebook_size, dtype=torch.long))
        self.register_buffer("initialized", torch.tensor(not c.init_from_data))

    def codebook(self) -> torch.Tensor:
        """The (K, D) code vectors as the lookup sees them."""
        w = self.embedding.weight
        return F.normalize(w, dim=-1) if self.l2_norm else w

    def codes_from_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, H, W) code ids -> (B, D, H, W) code vectors."""
        return rearrange(F.embedding(indices, self.codebook()), "b h w d -> b d h w")

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, D) vectors -> (N,) ids of the nearest codes in squared Euclidean distance."""
        cb = self.codebook()
        dist2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ cb.t() + cb.pow(2).sum(1)[None]  # (N, K)
        return dist2.argmin(dim=1)

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        """Quantize (B, D, H, W) encoder outputs."""
        b, _, h, w = z.shape
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            if self.l2_norm:
                z = F.normalize(z, dim=1)
            flat = rearrange(z, "b d h w -> (b h w) d")  # (N, D)
            if self.training and not bool(self.initialized):
                self._init_codes(flat.detach())
            indices = self.nearest(flat)  # (N,)
            z_q_flat = F.embedding(indices, self.codebook())  # (N, D)

            if self.training:
                self._update(flat.detach(), indices)

            commitment = F.mse_loss(flat, z_q_flat.detach())
            codebook = z.new_zeros(()) if self.ema else F.mse_loss(z_q_flat, flat.detach())
            z_q = rearrange(z_q_flat, "(b h w) d -> b d h w", b=b, h=h, w=w)
            z_q = z + (z_q - z).detach()
        return QuantizerOutput(
            z_q=z_q,
            indices=indices.view(b, h, w),
            vq_loss=codebook + self.beta * commitment,
            commitment_loss=commitment,
            codebook_loss=codebook,
        )

    @torch.no_grad()
    def _init_codes(self, flat: torch.Tensor) -> None:
        """Seed every code with a random encoder output of this batch (rank 0's under DDP)."""
        picks = sample_rows(flat, self.codebook_size)
        self.embedding.weight.copy_(picks)
        if self.ema:
            self.ema_embed_sum.copy_(picks)
            self.ema_cluster_size.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, indices: torch.Tensor) -> None:
        """EMA codebook update and dead-code restarts (synchronised across processes under DDP)."""
        onehot_counts = all_reduce_sum(torch.bincount(indices, minlength=self.codebook_size).float())
        if self.ema:
            embed_sum = torch.zeros_like(self.ema_embed_sum).index_add_(0, indices, flat)
            embed_sum = all_reduce_sum(embed_sum)
            self.ema_cluster_size.mul_(self.ema_decay).add_(onehot_counts, alpha=1 - self.ema_decay)
            self.ema_embed_sum.mul_(self.ema_decay).add_(embed_sum, alpha=1 - self.ema_decay)
            n = self.ema_cluster_size.sum()
            # Laplace smoothing keeps rarely used codes from dividing by ~0.
            size = (self.ema_cluster_size + 1e-5) / (n + self.codebook_size * 1e-5) * n
            self.embedding.weight.copy_(self.ema_embed_sum / size[:, None])
        if self.restart_dead:
            dead = dead_codes(self.steps_unused, onehot_counts > 0, self.dead_after)
            if dead.numel() > 0:
                picks = sample_rows(flat, dead.numel(), jitter=False)
                self.embedding.weight[dead] = picks
                if self.ema:
                    self.ema_embed_sum[dead] = picks
                    self.ema_cluster_size[dead] = 1.0
                self.steps_unused[dead] = 0
