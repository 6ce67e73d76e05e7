"""Fréchet distance and kernel inception distance on feature sets, in float64, plus bootstrap intervals.

FD(a, b) = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))  (Heusel et al. 2017). The matrix square
root's trace is computed from the eigenvalues of S_a^(1/2) S_b S_a^(1/2), which are real and >= 0, so no
complex sqrtm is needed. When the generated set has fewer vectors n than dimensions d (500 samples in
Inception's 2048), S_a = X^T X / (n - 1) for the centred features X, and the same nonzero eigenvalues come
from the n x n matrix X S_b X^T / (n - 1): no d x d square root at all.

KID is the unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over random
subsets (Binkowski et al. 2018); it is unbiased at any size, which matters for the 747-image inpainting set.

The FD interval (``bootstrap_fd``) resamples the generated set with replacement. A resample holds only about
63% distinct vectors, which inflates FD (the estimator's bias grows as the set shrinks), so the plain
percentile interval can lie wholly above the value it qualifies. We report the bias-corrected percentile
interval: the bootstrap distribution shifted by (point estimate - its median), which keeps its spread and
is centred on the estimate.
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


def fd_to(fake: np.ndarray | torch.Tensor, real: Stats) -> float:
    """FD between a feature set and fitted statistics; the n x n route when the set has fewer vectors than dims."""
    f = _np64(fake)
    n, d = f.shape
    if n < 2:
        raise ValueError(f"need at least 2 feature vectors for statistics, got {n}")
    if n >= d:
        return frechet_distance(Stats.of(f), real)
    mu = f.mean(0)
    x = f - mu  # (n, D) centred
    small = x @ real.sigma @ x.T / (n - 1)  # (n, n): the nonzero spectrum of S_f^(1/2) S_r S_f^(1/2)
    eig = np.linalg.eigvalsh((small + small.T) / 2)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu - real.mu
    tr_fake = float((x * x).sum()) / (n - 1)
    return float(diff @ diff + tr_fake + np.trace(real.sigma) - 2 * tr_covmean)


def kid(
    a: np.ndarray | torch.Tensor,
    b: np.ndarray | torch.Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float | None]:
    """Mean and std of the unbiased polynomial-kernel MMD^2 over random subsets of two feature sets.

    Subsets hold m = min(subset_size, len(a), len(b)) vectors of each set, drawn without replacement. When
    both sets have exactly m vectors every subset would be the whole sets: the MMD^2 is computed once and the
    std is None (there is no spread to report, not a spread of zero).
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
    """Bias-corrected 95% percentile interval of the FD of ``fake`` against ``real`` (see the module docstring).

    The generated set is resampled with replacement ``rounds`` times; the 2.5 and 97.5 percentiles of those
    FDs are shifted by (FD of the whole set - their median), so the interval is centred on the estimate.
    """
    f = _np64(fake)
    if rounds < 2:
        raise ValueError(f"bootstrap needs at least 2 rounds, got {rounds}")
    point = fd_to(f, real)
    rng = np.random.default_rng(seed)
    vals = np.array([fd_to(f[rng.integers(0, len(f), len(f))], real) for _ in range(rounds)])
    shift = point - float(np.median(vals))
    lo, hi = np.percentile(vals, [2.5, 97.5]) + shift
    return float(lo), float(hi)
