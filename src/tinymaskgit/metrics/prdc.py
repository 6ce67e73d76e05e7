"""Fidelity and variety of a generated set in feature space: precision, recall, density and coverage.

Each real (or generated) vector owns a ball whose radius is the distance to its k-th nearest neighbour in
its own set (itself excluded). With R the real and F the generated features:
- precision (Kynkaanniemi et al. 2019): the share of F inside at least one real ball (fidelity);
- recall (same paper): the share of R inside at least one generated ball (variety: a collapsed F has
  tiny balls and covers nothing);
- density (Naeem et al. 2020): how many real balls hold each generated vector on average, divided by k
  (fidelity that is robust to outliers in R; about 1 for two samples of one distribution);
- coverage (same paper): the share of real balls that hold at least one generated vector (variety).
The papers use k = 3 for precision/recall and k = 5 for density/coverage. A mean pairwise distance among
samples is no variety measure: noisy, collapsed samples still sit far apart in Inception space.

Distances are Euclidean, computed in float64 in row blocks so that 5,000 x 5,000 sets fit in memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

BLOCK = 1024
PRDC_KEYS = ("precision", "recall", "density", "coverage")


@dataclass
class PRDC:
    precision: float
    recall: float
    density: float
    coverage: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _t64(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(x)
    return t.detach().cpu().double()


def _blocks(a: torch.Tensor, b: torch.Tensor):
    """(row offset, (rows, len(b)) Euclidean distances) for blocks of ``a``'s rows."""
    for i in range(0, len(a), BLOCK):
        yield i, torch.cdist(a[i : i + BLOCK], b)  # (rows, Nb)


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """(N,) distance of each row to its k-th nearest other row of ``x``."""
    if not 1 <= k < len(x):
        raise ValueError(f"k must lie in [1, {len(x) - 1}] for a set of {len(x)} vectors, got {k}")
    out = torch.empty(len(x), dtype=x.dtype)
    for i, d in _blocks(x, x):
        # the smallest of each row is the row itself (0); the (k+1)-th smallest is the k-th neighbour
        out[i : i + len(d)] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return out


def _inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For balls (``centres``, ``radii``): (len(points),) how many balls hold each point, and (len(centres),)
    whether a ball holds any point."""
    per_point = torch.zeros(len(points), dtype=torch.long)
    per_centre = torch.zeros(len(centres), dtype=torch.bool)
    for i, d in _blocks(points, centres):
        hit = d <= radii[None]  # (rows, Nc)
        per_point[i : i + len(d)] = hit.sum(1)
        per_centre |= hit.any(0)
    return per_point, per_centre


def prdc(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor, k_pr: int = 3, k_dc: int = 5) -> PRDC:
    """Precision, recall (k = ``k_pr``), density and coverage (k = ``k_dc``) of ``fake`` against ``real``.

    Args:
        real: (N, D) features of real images.
        fake: (M, D) features of generated images.
    """
    r, f = _t64(real), _t64(fake)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ValueError(f"real and fake must be (N, D) with one D, got {tuple(r.shape)} and {tuple(f.shape)}")
    need = max(k_pr, k_dc) + 1
    if len(r) < need or len(f) < k_pr + 1:
        raise ValueError(f"precision/recall need more than k vectors per set, got {len(r)} real and {len(f)} fake")
    real_pr = knn_radii(r, k_pr)
    fake_pr = knn_radii(f, k_pr)
    fake_in_real, _ = _inside(f, r, real_pr)  # per generated vector: real balls holding it
    real_in_fake, _ = _inside(r, f, fake_pr)
    real_dc = real_pr if k_dc == k_pr else knn_radii(r, k_dc)
    counts, covered = _inside(f, r, real_dc)
    return PRDC(
        precision=float((fake_in_real > 0).double().mean()),
        recall=float((real_in_fake > 0).double().mean()),
        density=float(counts.double().sum() / (k_dc * len(f))),
        coverage=float(covered.double().mean()),
    )
