"""Calibration at beta != 1 on a conjugate Gaussian model.

With a flat prior and x | theta ~ N(theta, 1) the power posterior is
N(x, 1 / beta): pairs (theta_i, x_i) with theta_i = x_i + N(0, 1 / beta)
satisfy theta_i | x_i ~ p_beta. The exact sampler must look calibrated
(uniform ranks, coverage on the diagonal); a sampler that is too narrow must
not. Coverage at level alpha from m pairs has sd sqrt(alpha (1 - alpha) / m);
we allow 5 of them.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

import gbi_eval

matplotlib.use("Agg")

BETA = 0.3
M = 300
L = 99


def make_pairs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=2.0, size=(M, 2))
    theta = x + rng.normal(size=(M, 2)) / np.sqrt(BETA)
    return theta, x


def make_sampler(width: float, seed: int):
    rng = np.random.default_rng(seed)

    def sample_fn(x: np.ndarray, beta: float, n: int) -> np.ndarray:
        return x + width * rng.normal(size=(n, 2)) / np.sqrt(beta)

    return sample_fn


def log_prob_fn(theta: np.ndarray, x: np.ndarray, beta: float) -> np.ndarray:
    return -0.5 * beta * np.sum((theta - x) ** 2, axis=1)


@pytest.mark.parametrize("use_log_prob", [False, True])
def test_exact_sampler_is_calibrated(use_log_prob: bool) -> None:
    theta, x = make_pairs(0)
    result = gbi_eval.check_calibration(
        make_sampler(1.0, 1), theta, x, BETA, L, seed=2,
        log_prob_fn=log_prob_fn if use_log_prob else None,
    )  # fmt: skip
    assert result.ranks.shape == (M, 2)
    assert result.ranks.min() >= 0 and result.ranks.max() <= L
    assert np.all(result.rank_pvalues > 1e-3) and result.joint_pvalue > 1e-3
    levels = result.coverage_levels
    tolerance = 5 * np.sqrt(levels * (1 - levels) / M)
    assert np.all(np.abs(result.coverage - levels) <= tolerance)
    assert np.all(np.abs(result.marginal_coverage - levels[:, None]) <= tolerance[:, None])
    assert result.coverage_statistic == ("log_prob" if use_log_prob else "distance")


def test_overconfident_sampler_is_flagged() -> None:
    theta, x = make_pairs(3)
    result = gbi_eval.check_calibration(make_sampler(0.5, 4), theta, x, BETA, L, seed=5)
    assert np.all(result.rank_pvalues < 1e-6)
    half = np.flatnonzero(np.isclose(result.coverage_levels, 0.5))[0]
    assert result.coverage[half] < 0.35  # too narrow: true theta falls outside too often


def test_plot_calibration_returns_a_figure() -> None:
    theta, x = make_pairs(6)
    result = gbi_eval.check_calibration(make_sampler(1.0, 7), theta[:50], x[:50], BETA, 19, 8)
    fig = gbi_eval.plot_calibration(result, parameter_names=["a", "b"])
    assert len(fig.axes) == 3
    matplotlib.pyplot.close(fig)


def test_calibration_input_checks() -> None:
    theta, x = make_pairs(9)
    with pytest.raises(ValueError, match="pair up row by row"):
        gbi_eval.check_calibration(make_sampler(1.0, 0), theta, x[:10], BETA, L, 0)
    with pytest.raises(ValueError, match="beta must be"):
        gbi_eval.check_calibration(make_sampler(1.0, 0), theta, x, 0.0, L, 0)
    with pytest.raises(ValueError, match=r"sample_fn must return \(5, 2\)"):
        gbi_eval.check_calibration(lambda x, b, n: np.zeros((4, 2)), theta, x, BETA, 5, 0)
