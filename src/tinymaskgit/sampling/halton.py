"""The Halton reveal order (Besnier et al., "Halton Scheduler for Masked Generative Image Transformers",
ICLR 2025): positions of the L x L token grid are decided in a fixed low-discrepancy 2-D order instead of by
confidence, so every step spreads its new tokens over the whole image rather than growing one region.

The order is the 2-D Halton sequence (bases 2 and 3) mapped to grid cells, each cell taken at its first
visit. Decoding with it still samples every token from the model; only *where* the next tokens go is fixed.
When inpainting, the order is restricted to the unknown positions (known ones are never revisited).
"""

from __future__ import annotations

from functools import lru_cache

import torch


def radical_inverse(i: int, base: int) -> float:
    """The i-th element (i >= 1) of the van der Corput sequence in ``base``."""
    out, f = 0.0, 1.0 / base
    while i > 0:
        out += f * (i % base)
        i //= base
        f /= base
    return out


@lru_cache(maxsize=16)
def halton_order(side: int) -> tuple[int, ...]:
    """Every cell of a ``side`` x ``side`` grid once, as row-major indices, in Halton (2, 3) order."""
    if side < 1:
        raise ValueError(f"the grid side must be >= 1, got {side}")
    seen: dict[int, None] = {}
    i = 1
    while len(seen) < side * side:
        x, y = radical_inverse(i, 2), radical_inverse(i, 3)
        seen.setdefault(int(y * side) * side + int(x * side), None)
        i += 1
    return tuple(seen)


def halton_priority(num_tokens: int, device: torch.device | None = None) -> torch.Tensor:
    """(N,) float priority of each row-major position: higher comes earlier (N must be a square)."""
    side = round(num_tokens**0.5)
    if side * side != num_tokens:
        raise ValueError(f"the Halton order needs a square token grid, got {num_tokens} tokens")
    order = torch.tensor(halton_order(side), device=device)
    prio = torch.empty(num_tokens, device=device)
    prio[order] = torch.arange(num_tokens, 0, -1, dtype=prio.dtype, device=device)  # first visited: N
    return prio
