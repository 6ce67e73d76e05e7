"""The stage-2 token cache: keyed on everything it holds, rebuilt when unreadable."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from tinymaskgit.data.generated import CLASSES
from tinymaskgit.data.tiny_imagenet import TinyImageNetDataModule
from tinymaskgit.data.tokens import TokenDataModule
from tinymaskgit.models.vqvae import VQVAE

WNIDS = [w for w, *_ in CLASSES]


@pytest.fixture(scope="module")
def tokenizer() -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(encoder_channels=[8, 16, 16, 32], codebook_size=32, code_dim=8).eval()


def tokens_of(root: Path, tokenizer: VQVAE, cache: Path, classes: list[str], hflip: bool = True) -> TokenDataModule:
    images = TinyImageNetDataModule(str(root / "tiny-imagenet"), classes=classes, batch_size=4, hflip=hflip)
    dm = TokenDataModule(images, tokenizer, str(cache), encode_batch_size=16, encode_device="cpu")
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
