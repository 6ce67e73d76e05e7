"""Vector quantizer invariants."""

from __future__ import annotations

import math

import pytest
import torch

from tinymaskgit.models.quantizer import VectorQuantizer, codebook_stats


@pytest.mark.parametrize("l2_norm", [False, True])
@pytest.mark.parametrize("ema", [False, True])
def test_indices_to_codes_round_trip(ema: bool, l2_norm: bool) -> None:
    torch.manual_seed(0)
    q = VectorQuantizer(codebook_size=16, code_dim=4, ema=ema, l2_norm=l2_norm).eval()
    z = torch.randn(2, 4, 3, 3)
    out = q(z)
    assert out.indices.shape == (2, 3, 3) and out.indices.dtype == torch.long
    assert torch.allclose(out.z_q, q.codes_from_indices(out.indices), atol=1e-6)
    # re-quantizing a code returns its own id
    assert torch.equal(q(q.codes_from_indices(out.indices)).indices, out.indices)


def test_nearest_code_is_chosen() -> None:
    q = VectorQuantizer(codebook_size=3, code_dim=2).eval()
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]]))
    z = torch.tensor([[0.9, 1.2], [-1.5, 0.1], [0.1, -0.1]]).t().reshape(1, 2, 1, 3)
    assert q(z).indices.flatten().tolist() == [1, 2, 0]


def test_straight_through_gradient_reaches_encoder() -> None:
    torch.manual_seed(0)
    enc = torch.nn.Conv2d(3, 4, 1)
    q = VectorQuantizer(codebook_size=8, code_dim=4)
    x = torch.randn(2, 3, 4, 4)
    out = q(enc(x))
    out.z_q.sum().backward()
    assert enc.weight.grad is not None and enc.weight.grad.abs().sum() > 0
    # the straight-through estimator passes the decoder's gradient unchanged: d(sum z_q)/dz = 1
    z = torch.randn(1, 4, 2, 2, requires_grad=True)
    q(z).z_q.sum().backward()
    assert torch.allclose(z.grad, torch.ones_like(z))


def test_loss_convention_beta_weighs_commitment_only() -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 4, 3, 3)
    q = VectorQuantizer(codebook_size=8, code_dim=4, beta=0.25).eval()
    out = q(z)
    assert torch.allclose(out.vq_loss, out.codebook_loss + 0.25 * out.commitment_loss)
    assert torch.allclose(out.codebook_loss, out.commitment_loss)  # same distance, different stop-gradient
    assert VectorQuantizer(codebook_size=8, code_dim=4, ema=True).eval()(z).codebook_loss == 0


def test_ema_moves_codes_towards_assigned_mean() -> None:
    torch.manual_seed(0)
    q = VectorQuantizer(codebook_size=2, code_dim=2, ema=True, ema_decay=0.5, init_from_data=False)
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
        q.ema_embed_sum.copy_(q.embedding.weight)
    z = torch.full((1, 2, 1, 4), 2.0)  # all four vectors at (2, 2): nearest code 0
    before = q.embedding.weight[0].clone()
    q.train()(z)
    after = q.embedding.weight[0]
    assert (after - 2.0).abs().sum() < (before - 2.0).abs().sum()
    assert torch.allclose(q.embedding.weight[1], torch.tensor([10.0, 10.0]), atol=1e-3)


def test_dead_codes_are_restarted_from_encoder_outputs() -> None:
    torch.manual_seed(0)
    q = VectorQuantizer(codebook_size=4, code_dim=2, restart_dead=True, dead_after=2, init_from_data=False)
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [100.0, 100.0], [200.0, 0.0], [0.0, 300.0]]))
    z = torch.randn(1, 2, 4, 4) * 0.1  # always nearest to code 0
    for _ in range(2):
        q.train()(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    for k in (1, 2, 3):
        assert (flat - q.embedding.weight[k]).abs().sum(1).min() < 1e-6


def test_usage_and_perplexity_on_known_assignment() -> None:
    usage, perplexity = codebook_stats(torch.tensor([5, 5, 0, 0]))
    assert usage == 50.0 and math.isclose(perplexity, 2.0)
    usage, perplexity = codebook_stats(torch.tensor([1, 1, 1, 1, 1, 1, 1, 1]))
    assert usage == 100.0 and math.isclose(perplexity, 8.0)
    assert codebook_stats(torch.tensor([0, 7, 0]))[1] == pytest.approx(1.0)


def test_codebook_size_below_two_is_refused() -> None:
    with pytest.raises(ValueError, match="codebook_size"):
        VectorQuantizer(codebook_size=1, code_dim=4)


def test_first_training_batch_seeds_the_codes() -> None:
    torch.manual_seed(0)
    q = VectorQuantizer(codebook_size=8, code_dim=2)
    z = torch.randn(1, 2, 4, 4) * 5 + 20
    q.train()(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    dist = torch.cdist(q.embedding.weight, flat).min(1).values
    assert (dist < 0.1).all()
    before = q.embedding.weight.clone()
    q.eval()(torch.randn(1, 2, 4, 4))  # evaluation never re-seeds
    assert torch.equal(before, q.embedding.weight)


def test_ema_codes_unused_at_the_start_stay_where_they_are() -> None:
    """ema=true without data seeding: a code nobody picks keeps its initial value (it used to jump to ~1e4)."""
    torch.manual_seed(0)
    q = VectorQuantizer(codebook_size=8, code_dim=2, ema=True, init_from_data=False)
    start = q.embedding.weight.clone()
    z = start[0].view(1, 2, 1, 1).expand(1, 2, 2, 2).clone()  # every vector sits on code 0
    for _ in range(3):
        q.train()(z)
    assert torch.allclose(q.embedding.weight[1:], start[1:], atol=1e-6)
    assert torch.allclose(q.embedding.weight[0], start[0], atol=1e-6)  # code 0 is the mean of its own vectors
    # and an unused code can still be picked later: it is as close to new data as it was at the start
    assert q.embedding.weight.abs().max() < 1.0
