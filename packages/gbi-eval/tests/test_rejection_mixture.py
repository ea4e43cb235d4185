"""Exact rejection for the Gaussian mixture task against its closed form.

The task is written here (gbi-sims is not a dependency of gbi-eval): x | theta
~ 0.5 N(theta, I) + 0.5 N(theta, 0.01 I) with a uniform prior on a box. The
power posterior p_beta(theta | x) ∝ L(theta)^beta is known up to a constant,
so its mean, covariance and marginal CDFs follow from quadrature on a fine
grid of 800 x 800 points (spacing 0.0025 on [-1, 1]^2, 0.025 on [-10, 10]^2, against a
narrowest standard deviation of 0.1 / sqrt(beta) >= 0.08).

Rejection draws are i.i.d., so the standard error of a sample mean of f is
sd(f) / sqrt(n); we allow 5 of them. Marginals are compared with a
Kolmogorov–Smirnov test against the quadrature CDF (p > 1e-3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy import special, stats

import gbi_eval


@dataclass(frozen=True)
class Box:
    low: np.ndarray
    high: np.ndarray


class MixtureTask:
    """The paper's gaussian_mixture task, likelihood only."""

    name = "gaussian_mixture"

    def __init__(self, half_width: float = 1.0) -> None:
        self.prior = Box(np.full(2, -half_width), np.full(2, half_width))

    def log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        sq = np.sum((np.atleast_2d(x) - theta) ** 2, axis=1)
        wide = np.log(0.5) - np.log(2 * np.pi) - 0.5 * sq
        narrow = np.log(0.5) - np.log(2 * np.pi * 0.01) - 0.5 * sq / 0.01
        return np.logaddexp(wide, narrow)


def grid_moments(task: MixtureTask, x: np.ndarray, beta: float):
    """Mean, covariance and the marginal CDFs of p_beta by the midpoint rule."""
    low, high = task.prior.low, task.prior.high
    m = 800  # spacing 0.0025 on the unit box, 0.025 (< 0.1 / (3 sqrt(beta))) on U(-10, 10)
    axes = [low[i] + (np.arange(m) + 0.5) * (high[i] - low[i]) / m for i in range(2)]
    g1, g2 = np.meshgrid(*axes, indexing="ij")
    theta = np.column_stack([g1.ravel(), g2.ravel()])
    log_p = beta * task.log_likelihood(theta, x)
    p = np.exp(log_p - special.logsumexp(log_p)).reshape(m, m)
    mean = np.array([np.sum(p * g1), np.sum(p * g2)])
    d1, d2 = g1 - mean[0], g2 - mean[1]
    cov = np.array([[np.sum(p * d1 * d1), np.sum(p * d1 * d2)], [0.0, np.sum(p * d2 * d2)]])
    cov[1, 0] = cov[0, 1]
    cdfs = []
    for axis, grid in ((1, axes[0]), (0, axes[1])):
        marginal = np.cumsum(p.sum(axis=axis))
        step = grid[1] - grid[0]
        edges = np.concatenate([[grid[0] - step / 2], grid + step / 2])
        cdfs.append(lambda t, e=edges, c=marginal: np.interp(t, e, np.concatenate([[0.0], c])))
    return mean, cov, cdfs


CASES = [
    (np.array([0.2, -0.3]), 1.0),  # observation inside the box, unit box
    (np.array([0.9, -0.85]), 1.0),  # near a corner: strong truncation
    (np.array([1.3, 0.4]), 1.0),  # outside the box
    (np.array([2.0, -5.0]), 10.0),  # sbibm's U(-10, 10) prior
]


@pytest.mark.parametrize("beta", [0.1, 1.0, 1.5])
@pytest.mark.parametrize(("x", "half_width"), CASES)
def test_rejection_matches_closed_form(x: np.ndarray, half_width: float, beta: float) -> None:
    task = MixtureTask(half_width)
    n = 20_000
    result = gbi_eval.reference_posterior(task, x, beta, n, seed=7)
    samples = result.samples
    assert samples.shape == (n, 2)
    assert np.all((samples >= task.prior.low) & (samples <= task.prior.high))
    mean, cov, cdfs = grid_moments(task, x, beta)
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(samples.mean(axis=0) - mean) <= 5 * se_mean)
    centered = samples - mean
    for i, j in [(0, 0), (1, 1), (0, 1)]:
        product = centered[:, i] * centered[:, j]
        assert abs(product.mean() - cov[i, j]) <= 5 * product.std() / np.sqrt(n)
    for i in range(2):
        assert stats.kstest(samples[:, i], cdfs[i]).pvalue > 1e-3


@pytest.mark.parametrize("beta", [0.01, 0.1, 0.5, 1.0, 1.5, 3.0, 8.0])
def test_envelope_dominates_and_stays_efficient(beta: float) -> None:
    """No RuntimeError (the envelope dominates L^beta) and acceptance >= 2^-|beta - 1|."""
    task = MixtureTask()
    for x in (np.array([0.0, 0.0]), np.array([0.95, 0.95]), np.array([-1.5, 2.0])):
        result = gbi_eval.gaussian_mixture_reference(task, x, beta, 1000, seed=1)
        diag = result.diagnostics
        assert isinstance(diag, gbi_eval.RejectionDiagnostics)
        # the bound holds pointwise, so the rate exceeds it up to binomial noise (4 sd)
        bound = 2.0 ** -abs(beta - 1.0)
        noise = np.sqrt(bound * (1 - bound) / diag.n_proposals)
        assert diag.acceptance_rate >= bound - 4 * noise


def test_envelope_detects_a_different_likelihood() -> None:
    class Sharper(MixtureTask):
        def log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
            return 3.0 * super().log_likelihood(theta, x)

    with pytest.raises(RuntimeError, match="does not dominate"):
        gbi_eval.gaussian_mixture_reference(Sharper(), np.zeros(2), 1.0, 100, seed=0)
