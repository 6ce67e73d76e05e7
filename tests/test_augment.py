"""Random translation of training batches, and the classifier stage that uses it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tinymaskgit.data.augment import random_translate
from tinymaskgit.lit.classifier_module import ClassifierModule
from tinymaskgit.models.classifier import ClassifierConfig, ResNetClassifier


def shifts_of(images: torch.Tensor, moved: torch.Tensor, s: int) -> list[tuple[int, int]]:
    """For each image, the (dy, dx) whose window of the reflected padding equals the moved image."""
    padded = F.pad(images, (s, s, s, s), mode="reflect")
    h, w = images.shape[-2:]
    found = []
    for p, m in zip(padded, moved, strict=True):
        hits = [
            (dy - s, dx - s)
            for dy in range(2 * s + 1)
            for dx in range(2 * s + 1)
            if torch.equal(p[:, dy : dy + h, dx : dx + w], m)
        ]
        assert hits, "a moved image is not a window of its reflected padding"
        found.append(hits[0])
    return found


def test_zero_shift_is_the_identity() -> None:
    x = torch.randn(3, 3, 16, 16)
    assert random_translate(x, 0) is x


def test_each_image_moves_by_its_own_shift_within_the_bound() -> None:
    x = torch.randn(64, 3, 16, 16)  # random pixels: a window matches at one shift only
    moved = random_translate(x, 3, generator=torch.Generator().manual_seed(0))
    assert moved.shape == x.shape
    shifts = shifts_of(x, moved, 3)
    assert all(abs(dy) <= 3 and abs(dx) <= 3 for dy, dx in shifts)
    assert len(set(shifts)) > 10  # per image, not one shift for the batch


@pytest.mark.parametrize("shift", [-1, 16])
def test_shift_out_of_range_is_refused(shift: int) -> None:
    with pytest.raises(ValueError, match="max_shift"):
        random_translate(torch.zeros(1, 3, 16, 16), shift)


def test_classifier_trains_on_moved_images_and_validates_on_the_originals() -> None:
    net = ResNetClassifier(ClassifierConfig(num_classes=3, widths=[8], blocks_per_stage=1))
    seen: list[torch.Tensor] = []
    net.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    module = ClassifierModule(net, optimizer=torch.optim.SGD, max_shift=4)
    x, y = torch.randn(8, 3, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    with pytest.warns(UserWarning):  # self.log without a Trainer
        module.training_step((x, y), 0)
        module.validation_step((x, y), 0)
    trained, validated = seen
    assert not torch.equal(trained, x) and shifts_of(x, trained, 4)
    assert torch.equal(validated, x)
