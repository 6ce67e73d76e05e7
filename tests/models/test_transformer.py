"""The MaskGIT transformer: its attention paths agree, the class token and null class, CFG, adaLN conditioning,
shape checks."""

from __future__ import annotations

import pytest
import torch

from tinymaskgit.models.config import as_dict
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


def small(cond: str = "adaln") -> MaskGITTransformer:
    return MaskGITTransformer(
        codebook_size=16, num_tokens=9, num_classes=3, dim=32, depth=2, heads=4, mlp_dim=64, dropout=0.0, cond=cond
    ).eval()


def test_adaln_starts_with_every_block_closed() -> None:
    """adaLN-Zero: at initialisation each block is the identity, so its attention and MLP weights do not matter."""
    torch.manual_seed(0)
    net = small()
    tokens = torch.randint(0, 17, (2, 9))
    before = net(tokens, torch.tensor([0, 1]))
    with torch.no_grad():
        for block in net.blocks:
            for p in [*block.attn.parameters(), *block.mlp.parameters()]:  # type: ignore[union-attr]
                p.add_(torch.randn_like(p))
    assert torch.equal(net(tokens, torch.tensor([0, 1])), before)
    token_net = small("token")
    token_net.load_state_dict({k: v for k, v in net.state_dict().items() if "modulation" not in k}, strict=False)
    assert not torch.allclose(token_net(tokens, torch.tensor([0, 1])), before)  # the token net's blocks are open


def test_adaln_modulates_every_block_by_the_class() -> None:
    torch.manual_seed(0)
    net = small()
    assert len(net.modulations()) == net.config.depth + 1
    seen: list[torch.Tensor] = []
    hooks = [b.register_forward_pre_hook(lambda _m, args: seen.append(args[1])) for b in net.blocks]
    tokens, labels = torch.randint(0, 17, (2, 9)), torch.tensor([1, 3])
    plain = net(tokens, labels)
    for h in hooks:
        h.remove()
    assert len(seen) == net.config.depth
    for cond in seen:  # every block gets the class embedding as its condition
        assert torch.equal(cond, net.class_emb(labels))
    with torch.no_grad():
        net.final_modulation.weight.normal_()  # type: ignore[union-attr]
    assert not torch.allclose(net(tokens, labels), plain)  # the final norm is modulated too
    block = net.blocks[0]
    with torch.no_grad():
        block.modulation.weight.normal_(std=0.5)  # type: ignore[union-attr]
        block.modulation.bias.normal_(std=0.5)  # type: ignore[union-attr]
    x = torch.randn(2, 10, 32)
    c0, c1 = net.class_emb(torch.tensor([0, 0])), net.class_emb(torch.tensor([1, 1]))
    assert not torch.allclose(block(x, c0), block(x, c1))  # the class sets the block's scale, shift and gate
    with pytest.raises(ValueError, match="needs the"):
        block(x)


def test_adaln_rebuilds_from_its_stored_config() -> None:
    torch.manual_seed(0)
    net = small()
    with torch.no_grad():
        for m in net.modulations():
            m.weight.normal_(std=0.1)
    again = MaskGITTransformer(**as_dict(net.config))
    again.load_state_dict(net.state_dict())  # strict: the same modules exist
    tokens = torch.randint(0, 17, (2, 9))
    assert torch.equal(again.eval()(tokens, torch.tensor([2, 3])), net(tokens, torch.tensor([2, 3])))
    old = {k: v for k, v in as_dict(small("token").config).items() if k != "cond"}  # a checkpoint from before cond
    assert MaskGITTransformer(**old).config.cond == "token"


def test_unknown_conditioning_is_refused() -> None:
    with pytest.raises(ValueError, match=r"cond must be one of \('token', 'adaln'\), got 'film'"):
        small("film")


def patched(patch: int = 2, num_tokens: int = 16) -> MaskGITTransformer:
    return MaskGITTransformer(
        codebook_size=16,
        num_tokens=num_tokens,
        num_classes=3,
        dim=32,
        depth=2,
        heads=4,
        mlp_dim=64,
        dropout=0.0,
        cond="adaln",
        patch=patch,
    ).eval()


def test_patch_folds_each_square_of_the_grid_into_one_position() -> None:
    net = patched()  # a 4x4 grid in 2x2 squares
    ids = torch.arange(16.0)[None, :, None]  # (1, N, 1): each token's row-major index as its feature
    folded = net._fold(ids)[0]
    assert folded.tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]
    assert torch.equal(net._unfold(net._fold(ids), 1), ids)


def test_patch_runs_the_blocks_on_a_quarter_of_the_positions_and_returns_every_token() -> None:
    torch.manual_seed(0)
    net = patched()
    lengths: list[int] = []
    net.blocks[0].register_forward_pre_hook(lambda _m, args: lengths.append(args[0].shape[1]))
    tokens = torch.randint(0, 17, (2, 16))
    logits = net.forward_with_cfg(tokens, torch.tensor([0, 2]), 3.0)
    assert logits.shape == (2, 16, 16)
    assert lengths == [1 + 4]  # the class token and four 2x2 squares, once for both CFG halves
    assert net.pos_emb.shape == (1, 5, 32) and net.head.out_features == 4 * 16


def test_patch_keeps_each_token_in_its_own_square() -> None:
    """A token changed inside one square changes the logits of the four tokens of that square through its own
    position's input; with the blocks closed (adaLN-Zero at initialisation) the other squares do not see it."""
    torch.manual_seed(0)
    net = patched()
    tokens = torch.randint(0, 16, (1, 16))
    before = net(tokens, torch.tensor([1]))
    changed = tokens.clone()
    changed[0, 6] = net.mask_token_id  # row 1, column 2: the square of tokens 2, 3, 6, 7
    diff = (net(changed, torch.tensor([1])) - before).abs().amax(-1)[0]
    assert set(torch.nonzero(diff > 0).flatten().tolist()) == {2, 3, 6, 7}


def test_patch_rebuilds_from_its_stored_config_and_old_configs_have_none() -> None:
    torch.manual_seed(0)
    net = patched()
    again = MaskGITTransformer(**as_dict(net.config))
    again.load_state_dict(net.state_dict())
    tokens = torch.randint(0, 17, (2, 16))
    assert torch.equal(again.eval()(tokens, torch.tensor([0, 1])), net(tokens, torch.tensor([0, 1])))
    old = {k: v for k, v in as_dict(small().config).items() if k != "patch"}  # a checkpoint from before patch
    assert MaskGITTransformer(**old).config.patch == 1


@pytest.mark.parametrize(
    "patch,num_tokens,message",
    [(3, 16, "patch=3 must divide .* has side 4"), (2, 12, "is not square"), (0, 16, r"positive integer .*got 0")],
)
def test_a_patch_that_does_not_fit_the_grid_is_refused(patch: int, num_tokens: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        patched(patch, num_tokens)
