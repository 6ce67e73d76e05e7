"""Precision, recall, density and coverage on constructed feature sets whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tinymaskgit.metrics import prdc as prdc_mod
from tinymaskgit.metrics.prdc import knn_radii, prdc


def gauss(n: int, d: int = 16, seed: int = 0, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def test_a_set_against_itself_is_perfect() -> None:
    x = gauss(200)
    r = prdc(x, x)
    assert r.precision == r.recall == r.coverage == 1.0
    assert r.density >= 1.0  # every vector lies in its own ball and in its k neighbours' balls


def test_two_samples_of_one_distribution_score_high() -> None:
    r = prdc(gauss(1000, seed=0), gauss(1000, seed=1))
    assert r.precision > 0.7 and r.recall > 0.7 and r.coverage > 0.9 and 0.8 < r.density < 1.2


def test_one_repeated_vector_has_no_recall_and_no_coverage() -> None:
    real = gauss(500)
    collapsed = np.repeat(real[:1], 200, axis=0)  # a "template": one real image, 200 times
    r = prdc(real, collapsed)
    assert r.precision == 1.0  # it is realistic...
    assert r.recall <= 1 / len(real) and r.coverage < 0.02  # ...but covers nothing (its own copy at most)


def test_a_shifted_set_loses_precision_and_recall() -> None:
    real = gauss(500)
    near, far = prdc(real, gauss(500, seed=1, shift=0.5)), prdc(real, gauss(500, seed=1, shift=2.0))
    assert far.precision < near.precision < 1.0 and far.recall < near.recall
    assert far.density < near.density and far.coverage < near.coverage


def test_blocked_distances_match_one_matrix(monkeypatch) -> None:
    x, y = gauss(130, seed=2), gauss(70, seed=3, shift=0.3)
    whole = prdc(x, y)
    monkeypatch.setattr(prdc_mod, "BLOCK", 16)
    assert prdc(x, y) == whole


def test_knn_radii_excludes_the_point_itself() -> None:
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]], dtype=torch.float64)
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="one D"):
        prdc(gauss(10, d=4), gauss(10, d=5))
    with pytest.raises(ValueError, match="more than k"):
        prdc(gauss(4), gauss(40))
