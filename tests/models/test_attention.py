"""Hand-written attention against PyTorch's fused kernel."""

from __future__ import annotations

import torch

from tinymaskgit.models.attention import MultiHeadSelfAttention
from tinymaskgit.models.transformer import MaskGITTransformer


def test_math_and_sdpa_agree() -> None:
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(64, 8, dropout=0.0, attn_impl="math").eval()
    x = torch.randn(3, 17, 64)
    a = attn(x)
    attn.attn_impl = "sdpa"
    assert torch.allclose(a, attn(x), atol=1e-5)


def test_matches_the_formula_with_one_head() -> None:
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(8, 1).eval()
    x = torch.randn(1, 5, 8)
    q, k, v = attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)
    ref = attn.out_proj(torch.softmax(q @ k.transpose(1, 2) / 8**0.5, -1) @ v)
    assert torch.allclose(attn(x), ref, atol=1e-6)


def test_no_nn_multihead_attention_is_used() -> None:
    net = MaskGITTransformer(codebook_size=16, num_tokens=4, num_classes=3, dim=32, depth=2, heads=4, mlp_dim=64)
    assert not any(isinstance(m, torch.nn.MultiheadAttention) for m in net.modules())
