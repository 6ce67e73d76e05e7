"""The stage-2 LightningModule's pieces that need no Trainer: the training mask follows the schedule, the loss
covers the tokens it should."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tinymaskgit.lit.maskgit_module import MaskGITModule, training_mask
from tinymaskgit.models.transformer import MaskGITTransformer
from tinymaskgit.models.vqvae import VQVAE
from tinymaskgit.sampling.schedules import SCHEDULES, get_schedule

NAMES = sorted(SCHEDULES)


@pytest.mark.parametrize("name", NAMES)
def test_training_mask_has_the_count_gamma_asks_for(name: str) -> None:
    g = get_schedule(name)
    gen = torch.Generator().manual_seed(0)
    ref = torch.Generator().manual_seed(0)
    b, n = 256, 64
    mask = training_mask(g, b, n, torch.device("cpu"), gen)
    r = torch.rand(b, generator=ref)  # the same r the function drew
    want = torch.ceil(g(r) * n).clamp(1, n).long()
    assert torch.equal(mask.sum(1), want)  # masked (not kept) count equals ceil(gamma(r) N)
    # gamma near 1 for small r: mostly-masked samples must exist, fully-unmasked ones must not
    assert mask.sum(1).min() >= 1


def test_min_ratio_clips_the_masking_ratio_from_below() -> None:
    g = get_schedule("arccos")
    b, n = 512, 64
    plain = training_mask(g, b, n, torch.device("cpu"), torch.Generator().manual_seed(0))
    clipped = training_mask(g, b, n, torch.device("cpu"), torch.Generator().manual_seed(0), min_ratio=0.5)
    assert plain.sum(1).min() < 32  # the schedule alone draws lightly masked inputs
    assert clipped.sum(1).min() == 32  # ceil(0.5 * 64): none below the floor, and the floor itself is drawn
    above = plain.sum(1) >= 32
    assert torch.equal(clipped[above], plain[above])  # rows the floor does not touch stay as drawn


def small_module(**kwargs: object) -> MaskGITModule:
    """A stage-2 module on 16 tokens of 16 codes and 2 classes, in eval mode, seeded."""
    torch.manual_seed(0)
    net = MaskGITTransformer(codebook_size=16, num_tokens=16, num_classes=2, dim=32, depth=1, heads=4, mlp_dim=64)
    tokenizer = VQVAE(encoder_channels=[8, 8, 8, 8, 8], codebook_size=16, code_dim=8, latent_size=4)
    return MaskGITModule(net, tokenizer, torch.optim.AdamW, schedule="cosine", **kwargs).eval()


@pytest.mark.parametrize("loss_on_all", [False, True])
def test_loss_is_on_the_masked_tokens_or_on_all_of_them(loss_on_all: bool) -> None:
    module = small_module(loss_on_all=loss_on_all, label_smoothing=0.0)
    net = module.net
    module.log_dict = lambda *args, **kwargs: None  # type: ignore[method-assign]  # no Trainer to log to
    tokens, labels = torch.randint(0, 16, (8, 16)), torch.randint(0, 2, (8,))
    with torch.no_grad():
        loss = module._common_step((tokens, labels), "val", generator=torch.Generator().manual_seed(3))
        mask = training_mask(module.gamma, 8, 16, torch.device("cpu"), torch.Generator().manual_seed(3))  # (B, N)
        logits = net(tokens.masked_fill(mask, net.mask_token_id), labels)  # (B, N, K)
    per_token = F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none")  # (B, N)
    assert not mask.all()  # some tokens are kept, so the two losses differ
    want = per_token.mean() if loss_on_all else per_token[mask].mean()
    assert torch.allclose(loss, want, atol=1e-6)


def test_min_mask_ratio_applies_to_training_not_to_validation() -> None:
    module = small_module(min_mask_ratio=0.9)
    masks: list[torch.Tensor] = []
    module.net.forward = lambda inputs, class_ids: (  # type: ignore[method-assign]
        masks.append(inputs == module.net.mask_token_id) or torch.zeros(*inputs.shape, 16, requires_grad=True)
    )
    module.log_dict = lambda *args, **kwargs: None  # type: ignore[method-assign]
    tokens, labels = torch.randint(0, 16, (64, 16)), torch.randint(0, 2, (64,))
    module._common_step((tokens, labels), "train", generator=torch.Generator().manual_seed(1))
    assert masks[0].sum(1).min() >= 15  # ceil(0.9 * 16)
    masks.clear()
    module._common_step((tokens, labels), "val", generator=torch.Generator().manual_seed(1))
    assert masks[0].sum(1).min() < 15  # validation draws the schedule's ratios, comparable across floors
    with pytest.raises(ValueError, match="min_mask_ratio"):
        small_module(min_mask_ratio=1.0)


def test_validation_logs_the_masked_tokens_cross_entropy_of_both_cfg_branches() -> None:
    # the training loss covers every token with label smoothing; masked_ce is the plain masked-token CE, and the
    # unconditional branch (null class) is validated too
    module = small_module(loss_on_all=True, label_smoothing=0.1)
    net = module.net
    logged: dict[str, dict[str, torch.Tensor]] = {"val": {}, "train": {}}
    stage = "val"
    module.log_dict = lambda d, **kwargs: logged[stage].update(d)  # type: ignore[method-assign]
    tokens, labels = torch.randint(0, 16, (8, 16)), torch.randint(0, 2, (8,))
    with torch.no_grad():
        loss = module._common_step((tokens, labels), "val", generator=torch.Generator().manual_seed(3))
        stage = "train"
        module._common_step((tokens, labels), "train", generator=torch.Generator().manual_seed(3))
        mask = training_mask(module.gamma, 8, 16, torch.device("cpu"), torch.Generator().manual_seed(3))
        inputs = tokens.masked_fill(mask, net.mask_token_id)
        cond = F.cross_entropy(net(inputs, labels)[mask], tokens[mask])
        uncond_logits = net(inputs, torch.full_like(labels, net.null_class_id))[mask]
    val = logged["val"]
    assert torch.allclose(val["val/masked_ce"], cond, atol=1e-6) and not torch.allclose(loss, cond, atol=1e-3)
    assert torch.allclose(val["val/uncond_masked_ce"], F.cross_entropy(uncond_logits, tokens[mask]), atol=1e-6)
    assert not torch.allclose(val["val/uncond_masked_ce"], cond, atol=1e-4)  # the null class is a different input
    want_acc = (uncond_logits.argmax(-1) == tokens[mask]).float().mean()
    assert torch.allclose(val["val/uncond_masked_acc"], want_acc)
    assert "train/masked_ce" in logged["train"] and not any("uncond" in k for k in logged["train"])
