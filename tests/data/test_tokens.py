"""The stage-2 token cache: keyed on everything it holds, rebuilt when unreadable."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

from tinymaskgit.data.generated import CLASSES
from tinymaskgit.data.tiny_imagenet import TinyImageNetDataModule
from tinymaskgit.data.tokens import TokenDataModule, TokenDataset, random_crops
from tinymaskgit.errors import ConfigError
from tinymaskgit.models.vqvae import VQVAE

WNIDS = [w for w, *_ in CLASSES]


@pytest.fixture(scope="module")
def tokenizer() -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(encoder_channels=[8, 16, 16, 32], codebook_size=32, code_dim=8).eval()


def tokens_of(
    root: Path, tokenizer: VQVAE, cache: Path, classes: list[str], hflip: bool = True, **kw: Any
) -> TokenDataModule:
    images = TinyImageNetDataModule(str(root / "tiny-imagenet"), classes=classes, batch_size=4, hflip=hflip)
    dm = TokenDataModule(images, tokenizer, str(cache), encode_batch_size=16, encode_device="cpu", **kw)
    dm.setup()
    return dm


def test_cache_hit_leaves_the_file_alone(generated_root: Path, tokenizer: VQVAE, tmp_path: Path) -> None:
    first = tokens_of(generated_root, tokenizer, tmp_path, WNIDS)
    files = sorted(tmp_path.glob("*.pt"))
    assert len(files) == 2
    stamps = [f.stat().st_mtime_ns for f in files]
    second = tokens_of(generated_root, tokenizer, tmp_path, WNIDS)
    assert [f.stat().st_mtime_ns for f in sorted(tmp_path.glob("*.pt"))] == stamps
    assert torch.equal(first.splits["val"].tokens, second.splits["val"].tokens)


def test_class_order_is_part_of_the_key(generated_root: Path, tokenizer: VQVAE, tmp_path: Path) -> None:
    """Reordered classes leave the val pixels byte-identical; the labels must still follow the new order."""
    tokens_of(generated_root, tokenizer, tmp_path, WNIDS)
    reordered = tokens_of(generated_root, tokenizer, tmp_path, WNIDS[::-1])
    expected = reordered.images.dataset("val").labels
    assert torch.equal(reordered.splits["val"].labels, expected)
    assert torch.equal(reordered.splits["train"].labels, reordered.images.dataset("train").labels)
    assert len(list(tmp_path.glob("*.pt"))) == 4  # a new file per split; the old ones are kept


def test_flips_and_tokenizer_weights_are_part_of_the_key(
    generated_root: Path, tokenizer: VQVAE, tmp_path: Path
) -> None:
    tokens_of(generated_root, tokenizer, tmp_path, WNIDS)
    no_flip = tokens_of(generated_root, tokenizer, tmp_path, WNIDS, hflip=False)
    assert no_flip.splits["train"].flipped is None
    assert len(list(tmp_path.glob("*.pt"))) == 3  # only the train split depends on flips
    other = VQVAE(encoder_channels=[8, 16, 16, 32], codebook_size=32, code_dim=8).eval()
    tokens_of(generated_root, other, tmp_path, WNIDS)
    assert len(list(tmp_path.glob("*.pt"))) == 5


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other tensors"])
def test_unreadable_cache_is_rebuilt_with_one_warning(
    generated_root: Path, tokenizer: VQVAE, tmp_path: Path, damage: str
) -> None:
    good = tokens_of(generated_root, tokenizer, tmp_path, WNIDS)
    path = good.cache_path("val")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "garbage":
        path.write_bytes(b"not a torch file")
    else:
        torch.save({"tokens": torch.zeros(3, 64, dtype=torch.long), "labels": torch.zeros(3)}, path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = tokens_of(generated_root, tokenizer, tmp_path, WNIDS)
    messages = [str(w.message) for w in caught if "cache file" in str(w.message)]
    assert len(messages) == 1 and str(path) in messages[0] and "rebuilding" in messages[0]
    assert torch.equal(again.splits["val"].tokens, good.splits["val"].tokens)
    assert torch.equal(torch.load(path, weights_only=True)["tokens"], good.splits["val"].tokens)


def test_crop_views_are_cached_for_train_only_and_served_with_the_rest(
    generated_root: Path, tokenizer: VQVAE, tmp_path: Path
) -> None:
    plain = tokens_of(generated_root, tokenizer, tmp_path, WNIDS)
    dm = tokens_of(generated_root, tokenizer, tmp_path, WNIDS, crop_views=3, crop_scale=0.6)
    train, n = dm.splits["train"], len(plain.splits["train"])
    assert train.crops is not None and tuple(train.crops.shape) == (3, n, tokenizer.num_tokens)
    assert dm.splits["val"].crops is None  # validation stays on the images themselves
    assert torch.equal(train.tokens, plain.splits["train"].tokens)  # the image's own grid is kept
    assert not torch.equal(train.crops[0], train.tokens) and not torch.equal(train.crops[0], train.crops[1])
    assert len(list(tmp_path.glob("*.pt"))) == 3  # a new train file; val is shared
    again = tokens_of(generated_root, tokenizer, tmp_path, WNIDS, crop_views=3, crop_scale=0.6)
    assert torch.equal(again.splits["train"].crops, train.crops)  # read back, not drawn again
    tokens_of(generated_root, tokenizer, tmp_path, WNIDS, crop_views=3, crop_scale=0.9)
    assert len(list(tmp_path.glob("*.pt"))) == 4  # the scale is part of the key


def test_an_item_is_drawn_from_every_view_of_its_image() -> None:
    tokens, flipped = torch.zeros(2, 4, dtype=torch.long), torch.ones(2, 4, dtype=torch.long)
    crops = torch.stack([torch.full((2, 4), 2), torch.full((2, 4), 3)])
    ds = TokenDataset(tokens, torch.tensor([5, 6]), flipped, crops)
    torch.manual_seed(0)
    seen = {int(ds[1][0][0]) for _ in range(200)}
    assert seen == {0, 1, 2, 3} and int(ds[1][1]) == 6


def test_random_crops_keep_size_and_dtype_and_scale_one_without_flips_is_the_image() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    same = random_crops(images, 1.0, False, g)
    assert same.dtype == torch.uint8 and torch.equal(same, images)
    cropped = random_crops(images, 0.5, True, g)
    assert cropped.shape == images.shape and not torch.equal(cropped, images)


@pytest.mark.parametrize("views, scale", [(-1, 0.8), (2, 0.0), (2, 1.5)])
def test_bad_crop_settings_are_one_line(generated_root: Path, tokenizer: VQVAE, tmp_path: Path, views, scale) -> None:
    with pytest.raises(ConfigError, match="crop_views must be >= 0"):
        tokens_of(generated_root, tokenizer, tmp_path, WNIDS, crop_views=views, crop_scale=scale)
