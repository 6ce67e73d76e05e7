"""Multi-head self-attention written out (Vaswani et al. 2017): Q/K/V projections, heads, softmax, output.

Dimension legend: B batch, T sequence length, C model width, nh heads, hs = C / nh head size.
``attn_impl='math'`` computes softmax(Q K^T / sqrt(hs)) V explicitly; ``'sdpa'`` routes the same product
through ``F.scaled_dot_product_attention`` (fused kernels on GPU); both share the projections.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

ATTN_IMPLS = ("math", "sdpa")


class MultiHeadSelfAttention(nn.Module):
    """Bidirectional (unmasked) multi-head self-attention."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, attn_impl: str = "math") -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} is not divisible by {heads} heads")
        if attn_impl not in ATTN_IMPLS:
            raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}")
        self.heads = heads
        self.head_dim = dim // heads
        self.attn_impl = attn_impl
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = rearrange(self.q_proj(x), "b t (nh hs) -> b nh t hs", nh=self.heads)  # (B, nh, T, hs)
        k = rearrange(self.k_proj(x), "b t (nh hs) -> b nh t hs", nh=self.heads)
        v = rearrange(self.v_proj(x), "b t (nh hs) -> b nh t hs", nh=self.heads)
        if self.attn_impl == "sdpa":
            p = self.dropout if self.training else 0.0
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # (B, nh, T, hs)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, nh, T, T)
            weights = self.attn_drop(scores.softmax(dim=-1))
            out = weights @ v  # (B, nh, T, hs)
        return self.out_proj(rearrange(out, "b nh t hs -> b t (nh hs)"))  # (B, T, C)
