"""Iterative decoding invariants."""

from __future__ import annotations

import pytest
import torch

from tinymaskgit.models.transformer import MaskGITTransformer
from tinymaskgit.sampling.decode import DecodeSettings, decode
from tinymaskgit.sampling.schedules import SCHEDULES, decided_counts, get_schedule


@pytest.fixture(scope="module")
def net() -> MaskGITTransformer:
    torch.manual_seed(0)
    return MaskGITTransformer(
        codebook_size=16, num_tokens=36, num_classes=3, dim=32, depth=2, heads=4, mlp_dim=64
    ).eval()


def inpaint_problem(b: int = 4, n: int = 36, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 16, (b, n), generator=g)
    unknown = torch.rand(b, n, generator=g) < torch.tensor([0.9, 0.5, 0.2, 0.05])[:b, None]
    return tokens, unknown


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("steps", [1, 5, 8])
def test_invariants(net: MaskGITTransformer, schedule: str, steps: int) -> None:
    tokens, unknown = inpaint_problem()
    s = DecodeSettings(schedule=schedule, steps=steps, cfg_weight=1.5)
    out = decode(net, tokens, unknown, torch.tensor([0, 1, 2, 0]), s, return_history=True)
    assert out.tokens.shape == tokens.shape
    assert (out.tokens < net.codebook_size).all()  # nothing masked at the end
    assert torch.equal(out.tokens[~unknown], tokens[~unknown])  # known tokens never change
    counts = decided_counts(get_schedule(schedule), steps, unknown.sum(1))
    prev_mask = unknown
    for k, (mask, pred) in enumerate(zip(out.masks, out.predictions)):
        decided = (unknown & ~mask).sum(1)
        assert torch.equal(decided, counts[k])  # the schedule counts the initially unknown tokens
        assert not (mask & ~prev_mask).any()  # decided tokens are never re-masked
        assert torch.equal(pred[~mask], out.tokens[~mask])  # what is decided is final
        prev_mask = mask
    for k in range(1, len(out.predictions)):  # a decided token keeps its value
        was_decided = ~out.masks[k - 1]
        assert torch.equal(out.predictions[k][was_decided], out.predictions[k - 1][was_decided])


def test_every_step_decides_at_least_one(net: MaskGITTransformer) -> None:
    tokens = torch.zeros(1, 36, dtype=torch.long)
    unknown = torch.zeros(1, 36, dtype=torch.bool)
    unknown[0, :10] = True
    out = decode(net, tokens, unknown, None, DecodeSettings(schedule="cosine", steps=12), return_history=True)
    remaining = [int(m.sum()) for m in out.masks]
    assert remaining == list(range(9, -1, -1))  # 10 unknown, 12 steps: one per step, stop when done


def test_sweet_spot_stops_early_and_fills(net: MaskGITTransformer) -> None:
    tokens = torch.zeros(2, 36, dtype=torch.long)
    unknown = torch.ones(2, 36, dtype=torch.bool)
    out = decode(net, tokens, unknown, torch.tensor([0, 1]), DecodeSettings(steps=8, sweet_spot=3), return_history=True)
    assert len(out.masks) == 3
    assert (out.tokens < 16).all()
    assert torch.equal(out.tokens, out.predictions[-1])


def test_same_seed_same_samples(net: MaskGITTransformer) -> None:
    tokens = torch.zeros(3, 36, dtype=torch.long)
    unknown = torch.ones(3, 36, dtype=torch.bool)
    labels = torch.tensor([0, 1, 2])
    s = DecodeSettings(steps=6)
    a = decode(net, tokens, unknown, labels, s, generator=torch.Generator().manual_seed(7)).tokens
    b = decode(net, tokens, unknown, labels, s, generator=torch.Generator().manual_seed(7)).tokens
    c = decode(net, tokens, unknown, labels, s, generator=torch.Generator().manual_seed(8)).tokens
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "flags",
    [dict(sample_tokens=False), dict(gumbel_on="prob"), dict(cfg_schedule="linear"), dict(precision="bf16")],
)
def test_lab_conventions_keep_invariants(net: MaskGITTransformer, flags: dict) -> None:
    tokens, unknown = inpaint_problem()
    out = decode(net, tokens, unknown, torch.tensor([0, 1, 2, 0]), DecodeSettings(steps=6, **flags))
    assert torch.equal(out.tokens[~unknown], tokens[~unknown]) and (out.tokens < 16).all()


def test_argmax_without_noise_is_deterministic(net: MaskGITTransformer) -> None:
    tokens = torch.zeros(2, 36, dtype=torch.long)
    unknown = torch.ones(2, 36, dtype=torch.bool)
    s = DecodeSettings(steps=4, sample_tokens=False, temperature=0.0)
    a = decode(net, tokens, unknown, torch.tensor([0, 1]), s).tokens
    assert torch.equal(a, decode(net, tokens, unknown, torch.tensor([0, 1]), s).tokens)


@pytest.mark.parametrize(
    "bad,message",
    [
        (dict(steps=0), "steps"),
        (dict(sweet_spot=9), "sweet_spot"),
        (dict(schedule="x"), "schedule"),
        (dict(gumbel_on="p"), "gumbel_on"),
        (dict(cfg_schedule="cos"), "cfg_schedule"),
        (dict(precision="16"), "precision"),
    ],
)
def test_bad_settings_are_named(net: MaskGITTransformer, bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode(
            net,
            torch.zeros(1, 36, dtype=torch.long),
            torch.ones(1, 36, dtype=torch.bool),
            None,
            DecodeSettings(**bad),
        )


def test_bf16_follows_float32_when_the_model_is_sure() -> None:
    """bf16 autocast changes the logits by rounding only: a peaked model decodes the same tokens."""
    torch.manual_seed(0)
    net = MaskGITTransformer(codebook_size=16, num_tokens=36, num_classes=3, dim=32, depth=2, heads=4, mlp_dim=64)
    net.eval()
    with torch.no_grad():
        net.head.weight.mul_(200)  # sharpen the predictions so that rounding cannot flip the argmax
    tokens = torch.zeros(2, 36, dtype=torch.long)
    unknown = torch.ones(2, 36, dtype=torch.bool)
    labels = torch.tensor([0, 1])
    base = dict(steps=4, sample_tokens=False, temperature=0.0)
    exact = decode(net, tokens, unknown, labels, DecodeSettings(**base)).tokens
    fast = decode(net, tokens, unknown, labels, DecodeSettings(precision="bf16", **base)).tokens
    assert (exact == fast).float().mean() > 0.9
