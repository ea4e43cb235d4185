"""Every sampler against a Gaussian power posterior with a closed form.

Likelihood N(x_obs; theta, Sigma) with a uniform prior on a box wide enough
that truncation is negligible (> 4 standard deviations at beta = 0.1): the
power posterior is N(x_obs, Sigma / beta). Each sampler must match its mean
and covariance for beta in {0.1, 1, 1.5}.

Tolerances come from the Monte Carlo error of each estimate: an estimate of
E[f] from chains has standard error sd(f) / sqrt(ESS(f)), where ESS(f) is
arviz's bulk effective sample size of f computed over the chains (for
rejection, the draws are i.i.d. and ESS = n). We accept |estimate - truth| <=
5 standard errors; with 60 such checks the chance of a false failure is about
60 * 6e-7. Every run is seeded, so the outcome is reproducible.
"""

from __future__ import annotations

import numpy as np
import pytest

import gbi_eval

X_OBS = np.array([0.5, -1.0])
SIGMA = np.array([[0.5, 0.3], [0.3, 1.0]])
SIGMA_INV = np.linalg.inv(SIGMA)
LOG_NORM = -0.5 * np.log(np.linalg.det(2.0 * np.pi * SIGMA))
LOW = np.full(2, -15.0)
HIGH = np.full(2, 15.0)
N = 4000
BETAS = [0.1, 1.0, 1.5]
Z = 5.0  # standard errors allowed


def gaussian_log_likelihood(theta: np.ndarray) -> np.ndarray:
    diff = theta - X_OBS
    return LOG_NORM - 0.5 * np.einsum("ni,ij,nj->n", diff, SIGMA_INV, diff)


def run_rwmh(beta: float, seed: int) -> gbi_eval.SamplingResult:
    return gbi_eval.sample_rwmh(
        gaussian_log_likelihood, LOW, HIGH, beta, N, seed,
        n_chains=16, n_burnin=1000, thin=10, warn=False,
    )  # fmt: skip


def run_rwmh_covariance(beta: float, seed: int) -> gbi_eval.SamplingResult:
    return gbi_eval.sample_rwmh(
        gaussian_log_likelihood, LOW, HIGH, beta, N, seed,
        n_chains=16, n_burnin=1000, thin=5, adapt_covariance=True, warn=False,
    )  # fmt: skip


def run_pt(beta: float, seed: int) -> gbi_eval.SamplingResult:
    return gbi_eval.parallel_tempering(
        gaussian_log_likelihood, LOW, HIGH, beta, N, seed,
        n_rungs=4, beta_min=beta / 20.0, n_ladders=8, n_burnin=300, thin=2, warn=False,
    )  # fmt: skip


def run_rejection(beta: float, seed: int) -> gbi_eval.SamplingResult:
    return gbi_eval.rejection(
        gaussian_log_likelihood, LOW, HIGH, beta, N, seed, log_likelihood_max=LOG_NORM
    )


SAMPLERS = {
    "rwmh": run_rwmh,
    "rwmh_covariance": run_rwmh_covariance,
    "parallel_tempering": run_pt,
    "rejection": run_rejection,
}


def _standard_error(values: np.ndarray) -> tuple[float, float]:
    """(mean, standard error) of a statistic given by chain, shape (n_chains, n_draws)."""
    _, ess = gbi_eval.rhat_and_ess(values[:, :, None])
    return float(values.mean()), float(values.std() / np.sqrt(ess[0]))


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_power_posterior_mean_and_covariance(sampler: str, beta: float) -> None:
    result = SAMPLERS[sampler](beta, seed=11)
    samples = result.samples
    assert samples.shape == (N, 2)
    assert np.all((samples >= LOW) & (samples <= HIGH))
    # chains (n_chains, n_draws, 2); rejection draws are one i.i.d. "chain"
    chains = result.chains if result.chains is not None else samples[None]
    if result.chains is not None:
        # the returned draws are the chains' draws (shuffled, surplus dropped)
        assert chains.shape[0] * chains.shape[1] >= N

    mean = X_OBS
    cov = SIGMA / beta
    for i in range(2):
        estimate, se = _standard_error(chains[..., i])
        # the Monte Carlo error must be small enough for the check to mean something
        assert se < 0.1 * np.sqrt(cov[i, i]), f"{sampler}: ESS too small (se {se:.3g})"
        assert abs(estimate - mean[i]) <= Z * se, f"{sampler} mean[{i}]: {estimate} vs {mean[i]}"
    for i, j in [(0, 0), (1, 1), (0, 1)]:
        # E[(theta_i - m_i)(theta_j - m_j)] with the known mean; its MC error from its own ESS
        product = (chains[..., i] - mean[i]) * (chains[..., j] - mean[j])
        estimate, se = _standard_error(product)
        assert abs(estimate - cov[i, j]) <= Z * se, (
            f"{sampler} cov[{i},{j}] at beta={beta}: {estimate:.4f} vs {cov[i, j]:.4f} "
            f"(se {se:.4f})"
        )


@pytest.mark.parametrize("sampler", ["rwmh", "parallel_tempering"])
def test_mcmc_diagnostics_are_reported(sampler: str) -> None:
    result = SAMPLERS[sampler](1.0, seed=3)
    diag = result.diagnostics
    assert isinstance(diag, gbi_eval.MCMCDiagnostics)
    assert diag.rhat.shape == (2,) and diag.ess_bulk.shape == (2,)
    assert np.all(diag.rhat < 1.05)
    assert np.all(diag.ess_bulk > N / 10)
    # Robbins-Monro tuned toward the target acceptance during burn-in
    target = 0.3 if sampler == "rwmh" else 0.25
    assert abs(diag.acceptance_rate - target) < 0.05
    if sampler == "parallel_tempering":
        assert diag.swap_rates.shape == (3,)
        assert np.all((diag.swap_rates > 0) & (diag.swap_rates <= 1))
        assert diag.betas[-1] == 1.0
    else:
        assert diag.swap_rates is None


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_same_seed_same_draws(sampler: str) -> None:
    run = SAMPLERS[sampler]
    first = run(1.0, seed=5).samples
    assert np.array_equal(first, run(1.0, seed=5).samples)
    assert not np.array_equal(first, run(1.0, seed=6).samples)


def test_short_run_warns() -> None:
    with pytest.warns(gbi_eval.ConvergenceWarning, match="R-hat|ESS"):
        result = gbi_eval.sample_rwmh(
            gaussian_log_likelihood, LOW, HIGH, 1.0, 1000, seed=0,
            n_chains=4, n_burnin=0, thin=1, initial_positions=np.full((4, 2), 10.0),
        )  # fmt: skip
    assert not result.diagnostics.converged
    assert result.diagnostics.problems


def test_step_is_pure_and_takes_beta() -> None:
    """The kernel returns a new state and leaves its input untouched; beta is an argument."""
    state = gbi_eval.rwmh_init(np.zeros((3, 2)), gaussian_log_likelihood, LOW, HIGH)
    before = state.position.copy(), state.log_likelihood.copy()
    scale = np.full((3, 2), 0.5)
    rng = np.random.default_rng(0)
    new, info = gbi_eval.rwmh_step(rng, state, 0.7, gaussian_log_likelihood, LOW, HIGH, scale)
    assert np.array_equal(state.position, before[0])
    assert np.array_equal(state.log_likelihood, before[1])
    assert np.allclose(new.log_likelihood, gaussian_log_likelihood(new.position))
    moved = np.any(new.position != state.position, axis=1)
    assert np.array_equal(moved, info.is_accepted)
    # beta per chain: beta -> 0 accepts every move inside the box
    _, info = gbi_eval.rwmh_step(
        rng, state, np.full(3, 1e-12), gaussian_log_likelihood, LOW, HIGH, scale
    )
    assert np.all(info.is_accepted)


def test_reflection_keeps_every_proposal_in_the_box() -> None:
    rng = np.random.default_rng(1)
    theta = rng.normal(scale=40.0, size=(1000, 2))
    folded = gbi_eval.reflect(theta, LOW, HIGH)
    assert np.all((folded >= LOW) & (folded <= HIGH))
    inside = np.all((theta >= LOW) & (theta <= HIGH), axis=1)
    assert np.array_equal(folded[inside], theta[inside])
    assert np.allclose(gbi_eval.reflect(np.array([[16.0, -17.0]]), LOW, HIGH), [[14.0, -13.0]])


def test_pt_step_is_pure_and_swaps_whole_states() -> None:
    rng = np.random.default_rng(2)
    betas = gbi_eval.geometric_ladder(0.01, 1.0, 5)
    state = gbi_eval.pt_init(rng.normal(size=(3, 5, 2)), gaussian_log_likelihood, LOW, HIGH)
    before = state.position.copy(), state.log_likelihood.copy()
    scale = np.full((5, 2), 0.3)
    for parity in (0, 1):
        new, info = gbi_eval.pt_step(
            rng, state, betas, gaussian_log_likelihood, LOW, HIGH, scale,
            swap_parity=parity, n_local_steps=0,
        )  # fmt: skip
        assert np.array_equal(state.position, before[0])
        assert np.array_equal(state.log_likelihood, before[1])
        # only the pairs of this parity are proposed; a swap exchanges (theta, l) together
        assert np.array_equal(np.flatnonzero(info.swap_attempted), np.arange(parity, 4, 2))
        assert not info.swap_accepted[:, ~info.swap_attempted].any()
        assert np.allclose(
            new.log_likelihood, gaussian_log_likelihood(new.position.reshape(-1, 2)).reshape(3, 5)
        )
        assert np.array_equal(np.sort(new.position, axis=1), np.sort(state.position, axis=1))
