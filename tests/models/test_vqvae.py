"""Encoder/decoder shapes for every preset, built from the real preset files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from tests.conftest import CONF_DIR
from tinymaskgit.models.blocks import AttnBlock, ResBlock
from tinymaskgit.models.config import as_dict
from tinymaskgit.models.quantizer import QuantizerConfig
from tinymaskgit.models.vqvae import VQVAE, VQVAEConfig

# the VQ-VAE presets; lab_vqgan is the lab's own VQGAN layout (tests/models/test_lab_vqgan.py)
PRESETS = sorted(p.stem for p in (Path(CONF_DIR) / "model").glob("*.yaml") if p.stem != "lab_vqgan")


def build(preset: str) -> VQVAE:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"model={preset}"])  # a preset may extend another
    return instantiate(cfg.model.vqvae)


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_shapes(preset: str) -> None:
    torch.manual_seed(0)
    net = build(preset).eval()
    latent = {"tiny": 8, "tiny_narrow": 8, "tiny16": 16, "base": 16, "lab": 16}[preset]
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        z = net.encoder(x)
        rec, q = net(x)
    assert z.shape == (2, net.config.code_dim, latent, latent)
    assert q.indices.shape == (2, latent, latent)
    assert rec.shape == x.shape and rec.abs().max() <= 1.0
    assert net.num_tokens == latent**2
    assert torch.equal(net.tokenize(x), q.indices)
    assert torch.allclose(net.decode_indices(q.indices), rec, atol=1e-4)


def test_lab_preset_matches_the_lab() -> None:
    c = build("lab").config
    assert (c.codebook_size, c.code_dim, c.beta) == (1024, 256, 0.25)
    assert c.encoder_channels == [128, 128, 128, 256, 256, 512]
    assert c.decoder_channels == [128, 128, 256, 256, 512]


@pytest.mark.parametrize("preset", PRESETS)
def test_attention_sits_between_every_two_resnet_blocks(preset: str) -> None:
    net = build(preset)
    for stack in (net.encoder.mid, net.decoder.mid):
        kinds = [type(m) for m in stack]
        assert kinds[0] is ResBlock and kinds[-1] is ResBlock and kinds.count(ResBlock) >= 2
        for a, b in zip(kinds, kinds[1:]):
            assert {a, b} == {ResBlock, AttnBlock}


def test_config_rebuilds_same_network() -> None:
    net = build("tiny")
    twin = VQVAE(**as_dict(net.config))
    twin.load_state_dict(net.state_dict())
    assert sum(p.numel() for p in twin.parameters()) == sum(p.numel() for p in net.parameters())


def test_channel_norm_keeps_positions_independent() -> None:
    """The droplet artefact: with GroupNorm one strong activation rescales the whole feature map, so a network
    can hide a spike to control the other positions; ChannelNorm normalises each position on its own."""
    from tinymaskgit.models.blocks import make_norm

    torch.manual_seed(0)
    x = torch.randn(1, 32, 8, 8)
    spiked = x.clone()
    spiked[0, :, 3, 3] += 50.0
    elsewhere = torch.ones(8, 8, dtype=torch.bool)
    elsewhere[3, 3] = False
    channel, group = make_norm(32, "channel"), make_norm(32, "group")
    assert torch.allclose(channel(x)[..., elsewhere], channel(spiked)[..., elsewhere], atol=1e-5)
    assert not torch.allclose(group(x)[..., elsewhere], group(spiked)[..., elsewhere], atol=1e-2)
    with pytest.raises(ValueError, match="norm must be one of"):
        make_norm(32, "batch")


def test_config_dataclass_and_keywords_build_the_same_network() -> None:
    c = VQVAEConfig(encoder_channels=[8, 16, 16, 32], codebook_size=16, code_dim=8, ema=True, norm="channel")
    torch.manual_seed(0)
    a = VQVAE(c)
    torch.manual_seed(0)
    b = VQVAE(**as_dict(c))
    assert a.config == b.config and b.config.decoder_channels == [8, 16, 16, 32]
    assert a.quantizer.config == QuantizerConfig(codebook_size=16, code_dim=8, ema=True)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(TypeError, match="not both"):
        VQVAE(c, codebook_size=8)
    with pytest.raises(TypeError, match="unexpected keyword argument 'codebok_size'"):
        VQVAE(codebok_size=8)


@pytest.mark.parametrize("norm", ["group", "channel"])
def test_vqvae_norm_option_round_trips_through_config(norm: str) -> None:
    net = VQVAE(encoder_channels=[8, 16, 16, 32], codebook_size=16, code_dim=8, norm=norm)
    again = VQVAE(**as_dict(net.config))
    again.load_state_dict(net.state_dict())
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.equal(net.eval()(x)[0], again.eval()(x)[0])
