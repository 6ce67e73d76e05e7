"""The MaskGIT transformer: its attention paths agree, the class token and null class, CFG, shape checks."""

from __future__ import annotations

import pytest
import torch

from tinymaskgit.models.transformer import MaskGITTransformer


def test_transformer_math_and_sdpa_agree() -> None:
    torch.manual_seed(0)
    net = MaskGITTransformer(
        codebook_size=16, num_tokens=9, num_classes=3, dim=32, depth=2, heads=4, mlp_dim=64, dropout=0.0
    ).eval()
    tokens = torch.randint(0, 17, (2, 9))
    a = net(tokens, torch.tensor([0, 1]))
    net.set_attn_impl("sdpa")
    assert torch.allclose(a, net(tokens, torch.tensor([0, 1])), atol=1e-5)


def test_cfg_weight_zero_is_the_conditional_model() -> None:
    torch.manual_seed(0)
    net = MaskGITTransformer(codebook_size=16, num_tokens=9, num_classes=3, dim=32, depth=2, heads=4, mlp_dim=64).eval()
    tokens = torch.full((2, 9), net.mask_token_id)
    labels = torch.tensor([0, 2])
    assert torch.allclose(net.forward_with_cfg(tokens, labels, 0.0), net(tokens, labels))
    w = 2.0
    cond, uncond = net(tokens, labels), net(tokens, torch.full_like(labels, net.null_class_id))
    assert torch.allclose(net.forward_with_cfg(tokens, labels, w), (1 + w) * cond - w * uncond, atol=1e-5)


def test_null_class_differs_from_real_classes() -> None:
    torch.manual_seed(0)
    net = MaskGITTransformer(codebook_size=16, num_tokens=9, num_classes=3, dim=32, depth=2, heads=4, mlp_dim=64).eval()
    tokens = torch.full((1, 9), net.mask_token_id)
    null = net(tokens, torch.tensor([net.null_class_id]))
    for c in range(3):
        assert not torch.allclose(net(tokens, torch.tensor([c])), null)
    assert net.class_emb.num_embeddings == 4 and net.tok_emb.num_embeddings == 17
    assert torch.equal(net(tokens), null)  # no class given = the null class


def test_wrong_token_count_is_refused() -> None:
    net = MaskGITTransformer(codebook_size=16, num_tokens=9, num_classes=0, dim=32, depth=1, heads=4, mlp_dim=64)
    with pytest.raises(ValueError, match="expected 9 tokens"):
        net(torch.zeros(1, 16, dtype=torch.long))
