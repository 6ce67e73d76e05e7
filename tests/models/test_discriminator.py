"""The PatchGAN discriminator's feature maps and the losses built on them."""

from __future__ import annotations

import pytest
import torch

from tinymaskgit.models.discriminator import PatchDiscriminator, feature_matching_loss


def test_features_are_each_activation_then_the_logits() -> None:
    torch.manual_seed(0)
    d = PatchDiscriminator(channels=8, num_layers=3).eval()  # eval: batch norm uses its running statistics
    x = torch.randn(2, 3, 64, 64)
    feats = d.features(x)
    assert len(feats) == 5  # a LeakyReLU after the first conv and after each of the 3 layers, then the logits
    assert [f.shape[1] for f in feats] == [8, 16, 32, 64, 1]
    assert torch.equal(feats[-1], d(x))


def test_feature_matching_is_the_mean_l1_distance_over_layers() -> None:
    a = [torch.zeros(2, 4, 8, 8), torch.zeros(2, 8, 4, 4)]
    b = [torch.full((2, 4, 8, 8), 0.5), torch.full((2, 8, 4, 4), -2.0)]
    assert feature_matching_loss(a, a).item() == 0.0
    assert feature_matching_loss(a, b).item() == pytest.approx((0.5 + 2.0) / 2)
    with pytest.raises(ValueError, match="same number"):
        feature_matching_loss(a, b[:1])
