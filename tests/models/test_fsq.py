"""Finite scalar quantization: the implicit codebook, ids, straight-through gradients, the tokenizer's option."""

from __future__ import annotations

import math

import pytest
import torch

from tinymaskgit.models.config import as_dict
from tinymaskgit.models.fsq import FiniteScalarQuantizer
from tinymaskgit.models.vqvae import VQVAE

LEVELS = [5, 4, 3]  # odd and even counts: 60 codes


def identity_fsq(levels: list[int]) -> FiniteScalarQuantizer:
    """A quantizer whose projections are the identity, so its input is the bounded channels' argument."""
    q = FiniteScalarQuantizer(levels, code_dim=len(levels))
    with torch.no_grad():
        for conv in (q.project_in, q.project_out):
            conv.weight.copy_(torch.eye(len(levels))[:, :, None, None])
            conv.bias.zero_()
    return q


def test_every_level_combination_is_one_code_and_ids_decode_to_the_quantized_vectors() -> None:
    q = identity_fsq(LEVELS)
    axis = torch.linspace(-6, 6, 41)
    z = torch.cartesian_prod(axis, axis, axis).T.reshape(1, 3, 41, 41**2)  # (1, d, H, W): a dense grid
    out = q(z)
    assert q.codebook_size == math.prod(LEVELS) == 60
    assert sorted(out.indices.unique().tolist()) == list(range(60))
    assert torch.equal(q.codes_from_indices(out.indices), out.z_q)
    # each channel takes exactly levels[i] values, spread over [-1, 1]
    for i, n in enumerate(LEVELS):
        values = out.z_q[:, i].unique()
        assert len(values) == n and values.min() == -1.0 and values.max() <= 1.0


def test_ids_are_mixed_radix_digits_first_channel_least_significant() -> None:
    q = identity_fsq(LEVELS)
    ids = torch.arange(60).view(1, 6, 10)
    grid = q.codes_from_indices(ids)  # (1, d, 6, 10), values / half-width
    digits = torch.stack([(grid[:, i] * (n // 2) + n // 2).round() for i, n in enumerate(LEVELS)], -1).long()
    assert torch.equal(digits[..., 0] + 5 * digits[..., 1] + 20 * digits[..., 2], ids)


def test_gradient_passes_the_rounding_to_the_encoder_side() -> None:
    torch.manual_seed(0)
    q = FiniteScalarQuantizer([8, 8, 8], code_dim=16)
    z = torch.randn(2, 16, 4, 4, requires_grad=True)
    out = q(z)
    out.z_q.square().sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    assert q.project_in.weight.grad is not None and q.project_in.weight.grad.abs().sum() > 0
    assert out.vq_loss == 0 and out.indices.dtype == torch.int64


def test_quantization_runs_in_float32_under_autocast() -> None:
    q = FiniteScalarQuantizer([8, 8, 8], code_dim=16)
    z = torch.randn(2, 16, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(z.bfloat16())
    assert out.z_q.dtype == torch.float32
    assert torch.equal(out.indices, q(z.bfloat16().float()).indices)


def test_tokenizer_with_fsq_round_trips_through_its_config() -> None:
    torch.manual_seed(0)
    net = VQVAE(
        encoder_channels=[8, 16, 16, 32], codebook_size=512, code_dim=16, quantizer="fsq", fsq_levels=[8, 8, 8]
    ).eval()
    assert isinstance(net.quantizer, FiniteScalarQuantizer)
    again = VQVAE(**as_dict(net.config)).eval()
    again.load_state_dict(net.state_dict())
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        rec, q = net(x)
        assert torch.equal(again(x)[0], rec)
        assert torch.allclose(net.decode_indices(q.indices), rec, atol=1e-4)
    assert int(q.indices.min()) >= 0 and int(q.indices.max()) < 512


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantizer": "fsq", "fsq_levels": [8, 8, 5]}, r"give 320 codes but codebook_size is 512"),
        ({"quantizer": "fsq"}, r"quantizer=fsq needs fsq_levels"),
        ({"quantizer": "fsq", "fsq_levels": [512, 1]}, r"integers >= 2"),
        ({"quantizer": "lfq"}, r"quantizer must be one of vq, fsq"),
    ],
)
def test_bad_fsq_settings_say_what_to_set(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VQVAE(encoder_channels=[8, 16, 16, 32], codebook_size=512, code_dim=16, **kwargs)
