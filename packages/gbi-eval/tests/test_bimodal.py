"""A bimodal target: every mode visited, with the right mass.

The likelihood is a two-component mixture in theta_1 times a Gaussian in
theta_2, w_- N(theta_1; -a, s^2) + w_+ N(theta_1; a, s^2), so the power
posterior factorizes and the mass of the right mode, P(theta_1 > 0), is a
one-dimensional integral computed by quadrature for every beta.

- Parallel tempering on well-separated modes (a = 2, s = 0.25: 16 standard
  deviations apart, a random walk alone never crosses): every ladder's target
  rung must visit both modes and the mass must match.
- Random-walk MH on nearby modes (a = 1, s = 0.5) that a single chain crosses.

Tolerance: the mode indicator 1{theta_1 > 0} is a statistic like any other;
its standard error is sqrt(p (1 - p) / ESS) with ESS its bulk ESS over the
chains (arviz). We allow 5 standard errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special

import gbi_eval

WEIGHTS = np.array([0.3, 0.7])  # left, right
LOW = np.full(2, -4.0)
HIGH = np.full(2, 4.0)


def make_log_likelihood(a: float, s: float):
    means = np.array([-a, a])

    def log_likelihood(theta: np.ndarray) -> np.ndarray:
        t1 = theta[:, :1]
        comps = np.log(WEIGHTS) - 0.5 * ((t1 - means) / s) ** 2 - np.log(s * np.sqrt(2 * np.pi))
        return special.logsumexp(comps, axis=1) - 0.5 * (theta[:, 1] / s) ** 2

    return log_likelihood


def right_mode_mass(a: float, s: float, beta: float) -> float:
    def density(t: float) -> float:
        comps = WEIGHTS * np.exp(-0.5 * ((t - np.array([-a, a])) / s) ** 2)
        return float(np.sum(comps) ** beta)

    pts = [-a, 0.0, a]
    right = integrate.quad(density, 0.0, HIGH[0], points=[a], limit=200)[0]
    total = integrate.quad(density, LOW[0], HIGH[0], points=pts, limit=200)[0]
    return right / total


def check_mass(chains: np.ndarray, expected: float) -> None:
    indicator = (chains[..., 0] > 0).astype(float)
    _, ess = gbi_eval.rhat_and_ess(indicator[:, :, None])
    se = np.sqrt(expected * (1 - expected) / ess[0])
    assert ess[0] > 100, f"too few effective draws of the mode indicator: {ess[0]:.0f}"
    assert abs(indicator.mean() - expected) <= 5 * se, (
        f"right-mode mass {indicator.mean():.4f}, expected {expected:.4f} (se {se:.4f})"
    )


@pytest.mark.parametrize("beta", [0.5, 1.0, 1.5])
def test_parallel_tempering_visits_separated_modes_with_their_mass(beta: float) -> None:
    a, s = 2.0, 0.25
    result = gbi_eval.parallel_tempering(
        make_log_likelihood(a, s), LOW, HIGH, beta, 1000, seed=2,
        n_rungs=8, beta_min=0.005, n_ladders=8, n_burnin=300, thin=4, warn=False,
    )  # fmt: skip
    chains = result.chains
    # every ladder's target rung visits both modes
    right = chains[..., 0] > 0
    assert np.all(right.any(axis=1)) and np.all((~right).any(axis=1))
    # both modes are where they should be
    for sign in (-1, 1):
        in_mode = result.samples[np.sign(result.samples[:, 0]) == sign, 0]
        assert abs(np.median(in_mode) - sign * a) < 0.1
    check_mass(chains, right_mode_mass(a, s, beta))


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_random_walk_crosses_nearby_modes_with_their_mass(beta: float) -> None:
    a, s = 1.0, 0.5
    result = gbi_eval.sample_rwmh(
        make_log_likelihood(a, s), LOW, HIGH, beta, 2000, seed=4,
        n_chains=8, n_burnin=1000, thin=10, warn=False,
    )  # fmt: skip
    right = result.chains[..., 0] > 0
    assert np.all(right.any(axis=1)) and np.all((~right).any(axis=1))
    check_mass(result.chains, right_mode_mass(a, s, beta))


def test_single_draws_come_from_every_chain_alike() -> None:
    """n < n_chains: which chains give the draws is random (n = 1 is not always chain 0).

    ``reference_pairs`` asks for one draw per observation; with the chains of
    two_moons split by side of the fold, always taking chain 0 put every pair on
    one side. Over 4000 calls each of 4 chains must be picked 1000 times, up to
    5 binomial standard errors (sqrt(4000 * 0.25 * 0.75) ~ 27).
    """
    from gbi_eval.tuning import pooled_draws

    chains = np.arange(4, dtype=np.float64)[:, None, None] * np.ones((4, 3, 1))
    rng = np.random.default_rng(0)
    picks = np.array([pooled_draws(chains, 1, rng)[0, 0] for _ in range(4000)])
    counts = np.bincount(picks.astype(int), minlength=4)
    assert np.all(np.abs(counts - 1000) <= 5 * np.sqrt(4000 * 0.25 * 0.75)), counts
