"""C2ST on known cases and MMD against a dense implementation."""

from __future__ import annotations

import numpy as np
import pytest
from naive_eval import median_distance, mmd_dense

import gbi_eval


def test_c2st_same_distribution_is_chance() -> None:
    # 2 x 1000 points: the accuracy of a classifier that cannot do better than
    # chance has Monte Carlo sd about sqrt(0.25 / 2000) = 0.011; allow ~5 sd.
    rng = np.random.default_rng(0)
    p = rng.normal(size=(1000, 2))
    q = rng.normal(size=(1000, 2))
    assert abs(gbi_eval.c2st(p, q, seed=0) - 0.5) < 0.06


def test_c2st_shifted_gaussians_are_told_apart() -> None:
    # means 6 sd apart: the Bayes classifier errs with probability Phi(-3) = 0.0013
    rng = np.random.default_rng(1)
    p = rng.normal(size=(500, 3))
    q = rng.normal(size=(500, 3)) + np.array([6.0, 0.0, 0.0])
    assert gbi_eval.c2st(p, q, seed=0) > 0.98


def test_c2st_is_seeded() -> None:
    rng = np.random.default_rng(2)
    p = rng.normal(size=(200, 2))
    q = rng.normal(size=(200, 2)) + 4.0
    assert gbi_eval.c2st(p, q, seed=3) == gbi_eval.c2st(p, q, seed=3)


@pytest.mark.parametrize(("m", "n", "d"), [(2, 2, 1), (37, 53, 3), (200, 150, 5)])
def test_mmd_matches_dense_implementation(m: int, n: int, d: int) -> None:
    rng = np.random.default_rng(m + n + d)
    x = rng.normal(size=(m, d))
    y = rng.normal(size=(n, d)) * 1.3 + 0.4
    for bandwidth in (0.3, 2.0):
        assert gbi_eval.mmd(x, y, bandwidth=bandwidth) == pytest.approx(
            mmd_dense(x, y, bandwidth), rel=1e-10, abs=1e-12
        )
    h = median_distance(x, y)
    assert gbi_eval.median_heuristic(x, y) == pytest.approx(h, rel=1e-12)
    assert gbi_eval.mmd(x, y) == pytest.approx(mmd_dense(x, y, h), rel=1e-10, abs=1e-12)


def test_mmd_known_cases() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=(600, 2))
    y = rng.normal(size=(600, 2))
    # unbiased: same distribution gives a value near 0 (sd ~ 1/n), either sign
    assert abs(gbi_eval.mmd(x, y)) < 0.01
    assert gbi_eval.mmd(x, y + 3.0) > 0.5
    # symmetric in its arguments when the bandwidth is fixed
    assert gbi_eval.mmd(x, y + 1.0, bandwidth=1.0) == pytest.approx(
        gbi_eval.mmd(y + 1.0, x, bandwidth=1.0), rel=1e-12
    )


def test_mmd_median_heuristic_subsamples_large_inputs() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(3000, 2))
    y = rng.normal(size=(3000, 2))
    h = gbi_eval.median_heuristic(x, y)
    assert h == gbi_eval.median_heuristic(x, y)  # fixed subsample: deterministic
    # |a - b| for a, b ~ N(0, I_2) is sqrt(2) times a Rayleigh(1) variable, whose
    # median is sqrt(2 ln 2): the median distance is 2 sqrt(ln 2) ~ 1.665
    assert h == pytest.approx(2.0 * np.sqrt(np.log(2.0)), rel=0.03)
