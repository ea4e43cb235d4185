"""gbi-eval's reference samplers on the gbi-sims tasks (cross-package).

For each task at a small n: shapes, support (inside the prior box, finite
likelihood), diagnostics, and one property that a wrong sampler would break.
Tolerances on a mass p estimated from chains use the standard error
sqrt(p (1 - p) / ESS), with ESS arviz's bulk ESS of the indicator over the
chains; we allow 5 of them. Seeded throughout.
"""

from __future__ import annotations

import numpy as np
import pytest

import gbi_eval

gbi_sims = pytest.importorskip("gbi_sims")

# The defaults aim at 10k draws; at the small n used here the chains are shorter and
# R-hat may pass 1.01. The tests check the diagnostics themselves with looser bounds.
pytestmark = pytest.mark.filterwarnings("ignore::gbi_eval.ConvergenceWarning")

N = 2000
D = {"two_moons": 2, "gaussian_mixture": 2, "slcp": 5, "lorenz96": 3}


def get_task(name: str):
    if name not in gbi_sims.list_tasks():
        pytest.skip(f"task {name} is not registered in gbi_sims yet")
    return gbi_sims.get_task(name)


def check_mass(chains: np.ndarray, indicator_fn, expected: float) -> None:
    indicator = indicator_fn(chains).astype(float)
    _, ess = gbi_eval.rhat_and_ess(indicator[:, :, None])
    se = np.sqrt(expected * (1 - expected) / ess[0])
    assert abs(indicator.mean() - expected) <= 5 * se, (
        f"mass {indicator.mean():.4f}, expected {expected:.4f} (se {se:.4f}, ESS {ess[0]:.0f})"
    )


def check_draws(task, x: np.ndarray, result: gbi_eval.SamplingResult) -> None:
    samples = result.samples
    assert samples.shape == (N, D[task.name])
    assert np.all((samples >= task.prior.low) & (samples <= task.prior.high))
    assert np.all(np.isfinite(task.log_likelihood(samples, x)))
    diag = result.diagnostics
    if isinstance(diag, gbi_eval.MCMCDiagnostics):
        assert diag.rhat.shape == diag.ess_bulk.shape == (D[task.name],)
        assert np.all(diag.rhat < 1.05), diag.rhat
        assert np.all(diag.ess_bulk > N / 10), diag.ess_bulk
        assert 0.15 < diag.acceptance_rate < 0.45
        assert result.chains is not None and result.chains.shape[2] == D[task.name]


@pytest.mark.parametrize("name", list(D))
@pytest.mark.parametrize("beta", [0.1, 1.5])
def test_reference_draws_are_in_the_support_and_diagnosed(name: str, beta: float) -> None:
    task = get_task(name)
    x = task.observation(1).x
    result = gbi_eval.reference_posterior(task, x, beta, N, seed=3)
    check_draws(task, x, result)


def test_two_moons_sides_of_the_fold_carry_half_the_mass() -> None:
    task = get_task("two_moons")
    x = task.observation(0).x
    result = gbi_eval.reference_posterior(task, x, 1.0, N, seed=1)
    assert "folded" in result.diagnostics.notes
    # the mirror (t1, t2) -> (-t2, -t1) leaves the likelihood unchanged: P(t1 + t2 > 0) = 1/2.
    # Chains start half on each side; a chain that crossed the fold is still fine.
    side = result.samples[:, 0] + result.samples[:, 1] > 0
    assert 0.45 < side.mean() < 0.55
    # the two crescents are mirror images of each other
    upper = result.samples[side]
    lower = -result.samples[~side][:, ::-1]
    assert np.allclose(upper.mean(axis=0), lower.mean(axis=0), atol=0.03)


def test_gaussian_mixture_rejection_agrees_with_mcmc() -> None:
    task = get_task("gaussian_mixture")
    x = task.observation(2).x
    beta = 0.7
    exact = gbi_eval.reference_posterior(task, x, beta, N, seed=4)
    assert isinstance(exact.diagnostics, gbi_eval.RejectionDiagnostics)

    def log_likelihood_fn(theta: np.ndarray) -> np.ndarray:
        return task.log_likelihood(theta, x)

    mcmc = gbi_eval.sample_rwmh(
        log_likelihood_fn, task.prior.low, task.prior.high, beta, N, seed=5,
        n_chains=16, n_burnin=1000, thin=20,
    )  # fmt: skip
    # C2ST of two samplers of one distribution: chance (0.5) up to about 2 sd of
    # sqrt(0.25 / 4000) = 0.008 plus the classifier's own slack
    assert gbi_eval.c2st(exact.samples, mcmc.samples, seed=0) < 0.55


def test_slcp_four_modes_carry_a_quarter_each() -> None:
    task = get_task("slcp")
    x = task.observation(0).x
    result = gbi_eval.reference_posterior(task, x, 1.0, N, seed=6)
    diag = result.diagnostics
    assert diag.swap_rates.shape == (diag.betas.shape[0] - 1,)
    assert np.all(diag.swap_rates > 0.1)
    for s3 in (1, -1):
        for s4 in (1, -1):
            check_mass(
                result.chains,
                lambda c, s3=s3, s4=s4: (np.sign(c[..., 2]) == s3) & (np.sign(c[..., 3]) == s4),
                0.25,
            )


def test_lorenz96_posterior_contracts_with_beta() -> None:
    task = get_task("lorenz96")
    obs = task.observation(0)
    spread = {}
    for beta in (0.1, 1.5):
        result = gbi_eval.reference_posterior(task, obs.x, beta, N, seed=7)
        spread[beta] = result.samples.std(axis=0)
        # a power posterior concentrates where the likelihood is high
        prior_draws = task.prior.sample(N, seed=8)
        assert np.mean(task.log_likelihood(result.samples, obs.x)) > np.mean(
            task.log_likelihood(prior_draws, obs.x)
        )
    # for a near-Gaussian posterior the spread scales like beta^(-1/2): 15x in variance
    assert np.all(spread[1.5] < spread[0.1])


def test_calibration_at_beta_from_reference_pairs() -> None:
    """SBC at beta = 0.5 with pairs from the reference sampler and the reference as sampler."""
    task = get_task("gaussian_mixture")
    beta = 0.5
    x = task.simulate(task.prior.sample(150, seed=9), seed=10)
    theta = gbi_eval.reference_pairs(task, x, beta, seed=11)
    rng = np.random.default_rng(12)

    def sample_fn(x_i: np.ndarray, beta: float, n: int) -> np.ndarray:
        return gbi_eval.reference_posterior(task, x_i, beta, n, seed=rng).samples

    result = gbi_eval.check_calibration(sample_fn, theta, x, beta, 49, seed=13)
    assert np.all(result.rank_pvalues > 1e-3)
    levels = result.coverage_levels
    assert np.all(np.abs(result.coverage - levels) <= 5 * np.sqrt(levels * (1 - levels) / 150))
