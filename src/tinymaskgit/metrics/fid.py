"""Fréchet distance and kernel inception distance on feature sets, in float64, plus bootstrap intervals.

FD(a, b) = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))  (Heusel et al. 2017). The matrix square
root's trace is computed from the eigenvalues of S_a^(1/2) S_b S_a^(1/2), which are real and >= 0, so no
complex sqrtm is needed. KID is the unbiased MMD^2 with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over random subsets (Binkowski et al. 2018); it is unbiased at any size,
which matters for the 747-image inpainting set (fewer images than Inception's 2048 feature dimensions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Stats:
    """Mean and covariance of a feature set (float64) and its size."""

    mu: np.ndarray  # (D,)
    sigma: np.ndarray  # (D, D)
    n: int

    @classmethod
    def of(cls, feats: np.ndarray | torch.Tensor) -> Stats:
        f = _np64(feats)
        if len(f) < 2:
            raise ValueError(f"need at least 2 feature vectors for statistics, got {len(f)}")
        return cls(f.mean(0), np.cov(f, rowvar=False), len(f))


def _np64(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a: Stats, b: Stats) -> float:
    """Fréchet distance between two Gaussians fitted to feature sets."""
    diff = a.mu - b.mu
    root_a = _sqrt_psd(a.sigma)
    inner = root_a @ b.sigma @ root_a
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2 * tr_covmean)


def kid(
    a: np.ndarray | torch.Tensor,
    b: np.ndarray | torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float | None]:
    """Mean and std of the unbiased polynomial-kernel MMD^2 over random subsets of two feature sets.

    When both sets are no larger than ``subset_size`` every subset would be the whole set: the MMD^2 is
    computed once and the std is None (there is no spread to report, not a spread of zero).
    """
    x, y = _np64(a), _np64(b)
    m = min(subset_size, len(x), len(y))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(x)} and {len(y)}")
    if m == len(x) == len(y):
        return _mmd2(x, y), None
    rng = np.random.default_rng(seed)
    vals = [
        _mmd2(x[rng.choice(len(x), m, replace=False)], y[rng.choice(len(y), m, replace=False)]) for _ in range(subsets)
    ]
    return float(np.mean(vals)), float(np.std(vals))


def _mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between two (m, D) sets with the kernel (x.y / D + 1)^3."""
    m, d = x.shape
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2 * kxy.mean())


def bootstrap_fd(fake: np.ndarray | torch.Tensor, real: Stats, rounds: int = 100, seed: int = 0) -> tuple[float, float]:
    """95% interval of the FD when the generated set is resampled with replacement."""
    f = _np64(fake)
    rng = np.random.default_rng(seed)
    vals = [frechet_distance(Stats.of(f[rng.integers(0, len(f), len(f))]), real) for _ in range(rounds)]
    lo, hi = np.percentile(vals, [2.5, 97.5])
    return float(lo), float(hi)
