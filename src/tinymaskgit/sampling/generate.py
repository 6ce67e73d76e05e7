"""Generation and inpainting with a trained MaskGIT: batched on the device, pixels decoded once at the end.

Dimension legend: B batch, S image size, L latent grid, N = L*L tokens, T steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

from tinymaskgit.data.images import to_float, to_uint8
from tinymaskgit.models.tokenizer import Tokenizer
from tinymaskgit.models.transformer import MaskGITTransformer
from tinymaskgit.sampling.decode import DecodeSettings, decode


class MaskGIT(Protocol):
    """What sampling needs of a trained model (``inference.MaskGIT`` is one): a transformer and its tokenizer."""

    net: MaskGITTransformer
    tokenizer: Tokenizer


@dataclass
class Result:
    """Generated (or completed) images, and the decoding history of the traced ones."""

    images: torch.Tensor  # (B, 3, S, S) uint8
    tokens: torch.Tensor  # (B, N) the final token ids
    step_masks: list[list[torch.Tensor]] = field(default_factory=list)  # per traced image: T x (L, L) bool
    step_images: list[torch.Tensor] = field(default_factory=list)  # per traced image: (T, 3, S, S) in [-1, 1]


@torch.no_grad()
def decode_batches(
    m: MaskGIT,
    tokens: torch.Tensor,
    unknown: torch.Tensor,
    class_ids: torch.Tensor | None,
    settings: DecodeSettings,
    batch_size: int,
    seed: int,
    trace: list[int] | None = None,
) -> Result:
    """Decode (B, N) ``tokens`` at their ``unknown`` positions in batches, then decode pixels once.

    ``trace`` lists the rows whose every decoding step is kept and rendered to pixels.
    """
    device = next(m.net.parameters()).device
    side = m.tokenizer.latent_size
    gen = torch.Generator(device=device).manual_seed(seed)
    result = Result(images=torch.empty(0, dtype=torch.uint8), tokens=torch.empty(0, dtype=torch.long))
    chunks, token_chunks = [], []
    traced = set(trace or [])
    for start in range(0, len(tokens), batch_size):
        t = tokens[start : start + batch_size].to(device)
        b = len(t)
        ids = class_ids[start : start + b].to(device) if class_ids is not None else None
        rows = [r - start for r in sorted(traced) if start <= r < start + b]
        out = decode(m.net, t, unknown[start : start + b].to(device), ids, settings, gen, bool(rows))
        chunks.append(to_uint8(m.tokenizer.decode_indices(out.tokens.view(b, side, side))).cpu())
        token_chunks.append(out.tokens.cpu())
        for r in rows:
            result.step_masks.append([mk[r].view(side, side).cpu() for mk in out.masks])
            preds = torch.stack([p[r] for p in out.predictions]).view(-1, side, side)  # (T, L, L)
            result.step_images.append(m.tokenizer.decode_indices(preds).float().cpu())
    result.images = torch.cat(chunks)
    result.tokens = torch.cat(token_chunks)
    return result


def generate(
    m: MaskGIT,
    class_ids: torch.Tensor | None,
    n: int,
    settings: DecodeSettings,
    batch_size: int = 64,
    seed: int = 0,
    trace: list[int] | None = None,
) -> Result:
    """Sample ``n`` images; ``class_ids`` is (n,) or None (the null class: unconditional)."""
    tokens = torch.zeros(n, m.net.num_tokens, dtype=torch.long)
    return decode_batches(
        m, tokens, torch.ones_like(tokens, dtype=torch.bool), class_ids, settings, batch_size, seed, trace
    )


def token_mask(pixel_known: torch.Tensor, latent_size: int, threshold: float = 0.0) -> torch.Tensor:
    """(B, 1, S, S) bool known-pixel mask -> (B, N) bool unknown tokens.

    A token is unknown when the fraction of missing pixels in its patch exceeds ``threshold`` (0: any).
    """
    frac = F.adaptive_avg_pool2d((~pixel_known).float(), latent_size)  # (B, 1, L, L); S is a multiple of L
    return (frac > threshold).flatten(1)


@torch.no_grad()
def reencode(
    tokenizer: Tokenizer, images: torch.Tensor, masked: torch.Tensor, known: torch.Tensor, rounds: int, batch_size: int
) -> torch.Tensor:
    """``rounds`` times: paste the ``known`` pixels of ``masked`` into ``images``, encode and decode the result.

    The transformer completes tokens that were encoded from the masked image, whose hole the encoder sees
    (its convolutions and attention reach across it), so the decoded hole does not meet the known pixels
    around it. The pasted completion, encoded again, has real context on every side of the hole, and its
    decoding fills the hole to match. Returns (B, 3, S, S) uint8 images (known pixels not pasted back).
    """
    device = next(tokenizer.parameters()).device
    known = known.expand_as(masked)
    for _ in range(rounds):
        pasted = torch.where(known, masked, images)
        images = torch.cat(
            [
                to_uint8(tokenizer(to_float(pasted[i : i + batch_size].to(device)))[0]).cpu()
                for i in range(0, len(pasted), batch_size)
            ]
        )
    return images


@torch.no_grad()
def inpaint(
    m: MaskGIT,
    masked: torch.Tensor,
    known: torch.Tensor,
    settings: DecodeSettings,
    class_ids: torch.Tensor | None = None,
    threshold: float = 0.0,
    paste_known: bool = True,
    batch_size: int = 64,
    seed: int = 0,
    trace: list[int] | None = None,
) -> Result:
    """Complete (B, 3, S, S) uint8 ``masked`` images whose (B, 1, S, S) bool ``known`` pixels are given.

    The transformer decodes the unknown tokens; then ``settings.reencode`` rounds of :func:`reencode` blend
    the hole with its surroundings, and ``paste_known`` copies the known pixels back. ``Result.tokens`` are
    the transformer's tokens (known ones unchanged); ``Result.images`` include the re-encoding.
    """
    device = next(m.net.parameters()).device
    tokens = torch.cat(
        [
            m.tokenizer.tokenize(to_float(masked[i : i + batch_size].to(device))).flatten(1).cpu()
            for i in range(0, len(masked), batch_size)
        ]
    )  # (B, N)
    unknown = token_mask(known, m.tokenizer.latent_size, threshold)
    result = decode_batches(m, tokens, unknown, class_ids, settings, batch_size, seed, trace)
    if settings.reencode:
        result.images = reencode(m.tokenizer, result.images, masked, known, settings.reencode, batch_size)
    if paste_known:
        result.images = torch.where(known.expand_as(masked), masked, result.images)
    return result
