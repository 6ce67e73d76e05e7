"""The MaskGIT transformer (Chang et al. 2022): a bidirectional encoder that predicts masked visual tokens.

Dimension legend: B batch, N tokens per image (L*L), K codebook size, C width.
Vocabulary: the K codebook ids plus one mask token, ``mask_token_id = K``. The class condition is a class
token prepended to the sequence, from its own table of ``num_classes + 1`` entries; the last entry,
``null_class_id = num_classes``, is the "no class" used for classifier-free guidance and for
unconditional models (``num_classes = 0``). With ``cond='adaln'`` the class embedding also sets a scale,
shift and gate for every block's two branches and the final norm (DiT's adaLN-Zero, Peebles & Xie 2023:
the modulation starts at zero, so every block starts as the identity). Output: logits over the K codes at
every image position.

Token patches (``patch = p > 1``): each p x p square of the L x L token grid is one position of the sequence,
as DiT patchifies its latent. The p*p token embeddings of a square are concatenated and projected to the width,
and the head predicts the p*p tokens of each position from its output (p*p*K logits, unfolded back to the
grid). Masking and decoding stay per token; the attention runs over N / p^2 positions instead of N, which
makes a 16x16 grid cost about what an 8x8 one does.

CFG convention: ``logits = (1 + w) * cond - w * uncond``; w = 0 is the plain conditional model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tinymaskgit.models.attention import MultiHeadSelfAttention
from tinymaskgit.models.config import config_of


class MLP(nn.Module):
    """Position-wise feed-forward: Linear, GELU, Linear."""

    def __init__(self, dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


CONDS = ("token", "adaln")


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(B, S, C) normalised activations scaled by (1 + scale) and shifted, per image: shift, scale (B, 1, C)."""
    return torch.addcmul(shift, x, 1 + scale)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x)).

    ``adaln``: the norms lose their own affine parameters; a (B, C) condition sets each branch's shift and scale
    after its norm and a gate on its output, from one zero-initialised linear layer (adaLN-Zero).
    """

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float, attn_impl: str, adaln: bool = False) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, elementwise_affine=not adaln)
        self.attn = MultiHeadSelfAttention(dim, heads, dropout, attn_impl)
        self.drop = nn.Dropout(dropout)
        self.ln2 = nn.LayerNorm(dim, elementwise_affine=not adaln)
        self.mlp = MLP(dim, mlp_dim, dropout)
        self.modulation = nn.Linear(dim, 6 * dim) if adaln else None

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        if self.modulation is None:
            x = x + self.drop(self.attn(self.ln1(x)))
            return x + self.mlp(self.ln2(x))
        if cond is None:
            raise ValueError("an adaln block needs the (B, C) condition")
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(cond))[:, None].chunk(6, dim=-1)
        x = torch.addcmul(x, gate1, self.drop(self.attn(modulate(self.ln1(x), shift1, scale1))))
        return torch.addcmul(x, gate2, self.mlp(modulate(self.ln2(x), shift2, scale2)))


@dataclass
class TransformerConfig:
    """The transformer's settings; ``codebook_size`` and ``num_tokens`` come from the tokenizer."""

    codebook_size: int  # K, the tokenizer's number of codes
    num_tokens: int  # N, tokens per image (the tokenizer's latent_size ** 2)
    num_classes: int = 0  # 0: an unconditional model
    dim: int = 256
    depth: int = 4
    heads: int = 8
    mlp_dim: int = 1024
    dropout: float = 0.1
    attn_impl: str = "math"  # 'math' (written out) | 'sdpa' (PyTorch's fused kernel), same result
    cond: str = "token"  # 'token': the class token alone | 'adaln': it also modulates every block (adaLN-Zero)
    patch: int = 1  # p: each p x p square of tokens is one sequence position (1: one token a position)


def check_patch(patch: object) -> None:
    """Raise ValueError unless ``patch`` is a positive integer (the config check before training uses it too)."""
    if isinstance(patch, bool) or not isinstance(patch, int) or patch < 1:
        raise ValueError(f"patch must be a positive integer (1: one token a position), got {patch!r}")


def grid_side(num_tokens: int, patch: int) -> int:
    """The side L of the L x L token grid, checked to split into ``patch`` x ``patch`` squares (any ``num_tokens``
    goes with ``patch=1``, which needs no grid)."""
    check_patch(patch)
    side = round(num_tokens**0.5)
    if patch > 1 and (side * side != num_tokens or side % patch):
        raise ValueError(
            f"patch={patch} must divide the side of a square token grid, and num_tokens={num_tokens} "
            f"{'is not square' if side * side != num_tokens else f'has side {side}'}; pick a patch that divides it"
        )
    return side


class MaskGITTransformer(nn.Module):
    """Bidirectional transformer over token grids: ``MaskGITTransformer(TransformerConfig(...))`` or its fields
    as keywords; ``MaskGITTransformer(**as_dict(net.config))`` rebuilds it."""

    def __init__(self, config: TransformerConfig | None = None, **kwargs: Any) -> None:
        super().__init__()
        c = self.config = config_of(TransformerConfig, config, kwargs)
        codebook_size, num_tokens, num_classes, dim = c.codebook_size, c.num_tokens, c.num_classes, c.dim
        if c.cond not in CONDS:
            raise ValueError(f"cond must be one of {CONDS}, got {c.cond!r}")
        adaln = c.cond == "adaln"
        self.side, self.patch = grid_side(num_tokens, c.patch), c.patch
        positions, per_position = num_tokens // c.patch**2, c.patch**2
        self.codebook_size = codebook_size
        self.num_tokens = num_tokens
        self.num_classes = num_classes
        self.mask_token_id = codebook_size
        self.null_class_id = num_classes
        self.tok_emb = nn.Embedding(codebook_size + 1, dim)  # + mask token
        # patch > 1: the p*p embeddings of a square, concatenated, to one position of the width
        self.patch_in = nn.Linear(per_position * dim, dim) if per_position > 1 else None
        self.class_emb = nn.Embedding(num_classes + 1, dim)  # + null class
        self.pos_emb = nn.Parameter(torch.zeros(1, positions + 1, dim))  # + class token
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            Block(dim, c.heads, c.mlp_dim, c.dropout, c.attn_impl, adaln) for _ in range(c.depth)
        )
        self.ln_f = nn.LayerNorm(dim, elementwise_affine=not adaln)
        self.final_modulation = nn.Linear(dim, 2 * dim) if adaln else None  # shift, scale of the final norm
        self.head = nn.Linear(dim, per_position * codebook_size)
        self.apply(self._init_weights)
        nn.init.trunc_normal_(self.pos_emb, std=0.02)
        for m in self.modulations():  # adaLN-Zero: no modulation, closed gates at the start
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def modulations(self) -> list[nn.Linear]:
        """The adaLN layers (none with ``cond='token'``)."""
        layers = [b.modulation for b in self.blocks] + [self.final_modulation]  # type: ignore[union-attr]
        return [m for m in layers if isinstance(m, nn.Linear)]

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.trunc_normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def set_attn_impl(self, attn_impl: str) -> None:
        """Switch every attention layer between 'math' and 'sdpa' (weights unchanged)."""
        for block in self.blocks:
            block.attn.attn_impl = attn_impl  # type: ignore[union-attr]
        self.config.attn_impl = attn_impl

    def forward(self, tokens: torch.Tensor, class_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N) token ids (mask_token_id where masked), (B,) class ids or None -> (B, N, K) logits."""
        b, n = tokens.shape
        if n != self.num_tokens:
            raise ValueError(f"expected {self.num_tokens} tokens per image, got {n}")
        if class_ids is None:
            class_ids = torch.full((b,), self.null_class_id, dtype=torch.long, device=tokens.device)
        cls = self.class_emb(class_ids)  # (B, C)
        x = self.tok_emb(tokens)  # (B, N, C)
        if self.patch_in is not None:
            x = self.patch_in(self._fold(x))  # (B, N / p^2, C)
        x = torch.cat([cls[:, None], x], dim=1)  # (B, 1 + N / p^2, C)
        x = self.drop(x + self.pos_emb)
        cond = cls if self.final_modulation is not None else None
        for block in self.blocks:
            x = block(x, cond)
        x = self.ln_f(x[:, 1:])
        if self.final_modulation is not None:
            shift, scale = self.final_modulation(F.silu(cls))[:, None].chunk(2, dim=-1)
            x = modulate(x, shift, scale)
        logits = self.head(x)  # (B, N / p^2, p^2 K)
        return logits if self.patch_in is None else self._unfold(logits, self.codebook_size)  # (B, N, K)

    def _fold(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, D) per token, row-major over the grid -> (B, N / p^2, p^2 D): each p x p square, its rows in order."""
        b, _, d = x.shape
        s, p = self.side // self.patch, self.patch
        x = x.view(b, s, p, s, p, d).permute(0, 1, 3, 2, 4, 5)  # (B, row, col, dy, dx, D)
        return x.reshape(b, s * s, p * p * d)

    def _unfold(self, x: torch.Tensor, d: int) -> torch.Tensor:
        """The inverse of ``_fold``: (B, N / p^2, p^2 D) -> (B, N, D) row-major over the grid."""
        b = x.shape[0]
        s, p = self.side // self.patch, self.patch
        x = x.view(b, s, s, p, p, d).permute(0, 1, 3, 2, 4, 5)  # (B, row, dy, col, dx, D)
        return x.reshape(b, s * s * p * p, d)

    def forward_with_cfg(self, tokens: torch.Tensor, class_ids: torch.Tensor, cfg_weight: float) -> torch.Tensor:
        """Guided logits (1 + w) * cond - w * uncond, both halves in one batched forward."""
        return self.guided_and_conditional(tokens, class_ids, cfg_weight)[0]

    def guided_and_conditional(
        self, tokens: torch.Tensor, class_ids: torch.Tensor, cfg_weight: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(guided, conditional) logits, each (B, N, K); one forward when w = 0 (both are the same tensor)."""
        if cfg_weight == 0:
            logits = self(tokens, class_ids)
            return logits, logits
        null = torch.full_like(class_ids, self.null_class_id)
        both = self(torch.cat([tokens, tokens]), torch.cat([class_ids, null]))  # (2B, N, K)
        cond, uncond = both.float().chunk(2)  # combine in float32 even under autocast
        return (1 + cfg_weight) * cond - cfg_weight * uncond, cond
