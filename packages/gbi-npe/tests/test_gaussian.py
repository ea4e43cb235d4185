"""Statistical tests on a conjugate Gaussian model, whose power posterior is closed form.

Model: theta ~ N(0, I_2), x | theta ~ N(theta, S) with S = 0.25 [[1, 0.5], [0.5, 1]].
Then p(x | theta)^beta ∝ N(x; theta, S / beta), so

    p_beta(theta | x) = N(C_beta beta S^-1 x, C_beta),   C_beta = (I + beta S^-1)^-1.

Tolerances. For each (x, beta) we compare n = 20000 draws with the closed form.
Monte Carlo standard errors, in posterior standard deviations: mean 1/sqrt(n) =
0.007, standard deviation 1/sqrt(2n) = 0.005, correlation (1 - rho^2)/sqrt(n) <
0.007; we allow 4 of them. On top we allow an approximation error of 0.2 sd on
each mean, 12 % on each standard deviation and 0.1 on the correlation: each is
a Kullback-Leibler divergence of about 0.02 nats per coordinate, the accuracy
one can expect from a small network trained for seconds on 2 x 10^4 pairs (the
fitted flow's statistical error at that size is a few hundredths of a sd).
"""

from __future__ import annotations

import numpy as np
import pytest

from gbi_npe import (
    LogUniformBeta,
    MDNConfig,
    Posterior,
    SplineFlowConfig,
    TrainConfig,
    fit,
    make_npe,
)

S = 0.25 * np.array([[1.0, 0.5], [0.5, 1.0]])
S_INV = np.linalg.inv(S)
N_DRAWS = 20_000
MC = 4.0 / np.sqrt(N_DRAWS)
MEAN_TOL, SD_TOL, CORR_TOL = 0.2, 0.12, 0.1
X_OBS = (np.array([0.5, -0.5]), np.array([-1.0, 0.3]))


def power_posterior(x: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    cov = np.linalg.inv(np.eye(2) + beta * S_INV)
    return cov @ (beta * S_INV @ x), cov


def check_moments(posterior: Posterior, x: np.ndarray, beta: float) -> None:
    mean, cov = power_posterior(x, beta)
    sd = np.sqrt(np.diag(cov))
    draws = posterior.sample(N_DRAWS, x, beta, seed=11)
    where = f"x={x.tolist()}, beta={beta}"
    mean_error = np.abs(draws.mean(axis=0) - mean) / sd
    assert (mean_error < MEAN_TOL + MC).all(), f"{where}: mean off by {mean_error} sd"
    sd_error = np.abs(draws.std(axis=0) / sd - 1.0)
    assert (sd_error < SD_TOL + MC).all(), f"{where}: sd off by {sd_error}"
    rho = cov[0, 1] / sd.prod()
    corr_error = abs(np.corrcoef(draws.T)[0, 1] - rho)
    assert corr_error < CORR_TOL + MC, f"{where}: correlation off by {corr_error}"


@pytest.mark.slow
def test_one_flow_matches_the_power_posterior_across_beta():
    # Route-A-style training pairs drawn from the tempered joint itself:
    # beta log-uniform on [0.1, 2], theta ~ prior, x ~ N(theta, S / beta).
    rng = np.random.default_rng(0)
    n = 20_000
    beta = np.exp(rng.uniform(np.log(0.1), np.log(2.0), n))
    beta[:2] = [0.1, 2.0]  # pin the trained range to exactly [0.1, 2]
    theta = rng.normal(size=(n, 2))
    x = theta + rng.multivariate_normal(np.zeros(2), S, n) / np.sqrt(beta)[:, None]
    npe = make_npe(
        2, 2, density=SplineFlowConfig(num_layers=3, hidden_features=32, num_blocks=1), seed=0
    )
    config = TrainConfig(
        batch_size=512, learning_rate=3e-3, max_epochs=30, patience=8, progress=False
    )
    fit(npe, theta, x, beta, config=config)
    posterior = Posterior(npe)
    assert posterior.beta_range == (0.1, 2.0)
    for x_obs in X_OBS:
        for b in (0.1, 0.25, 0.6, 1.2, 2.0):
            check_moments(posterior, x_obs, b)


@pytest.mark.slow
def test_route_b_with_continuous_beta_and_exact_snis_weights():
    # Route B: one base set (theta, x) ~ prior x likelihood, beta drawn
    # log-uniformly per minibatch item on [0.7, 2], and log_weights_fn giving
    # the globally normalized SNIS weights w~ ∝ p(x_i | theta_i)^(beta - 1)
    # from the exact likelihood (beta >= 0.7 keeps their variance finite).
    # The relative ESS is above 0.3 over the range, so the fit sees at least
    # ~6000 effective pairs per beta: the same tolerances apply.
    rng = np.random.default_rng(1)
    n = 20_000
    theta = rng.normal(size=(n, 2))
    x = theta + rng.multivariate_normal(np.zeros(2), S, n)
    r = x - theta
    log_lik = (
        -0.5 * np.einsum("ni,ij,nj->n", r, S_INV, r)
        - np.log(2 * np.pi)
        - 0.5 * np.log(np.linalg.det(S))
    )
    # log sum_j exp((beta - 1) l_j) on a fine grid in log beta, interpolated.
    grid = np.linspace(np.log(0.7), np.log(2.0), 513)
    exponents = (np.exp(grid)[:, None] - 1.0) * log_lik[None, :]
    top = exponents.max(axis=1)
    log_norm = top + np.log(np.exp(exponents - top[:, None]).sum(axis=1))
    ess = np.exp(2 * log_norm - np.log(np.exp(2 * (exponents - top[:, None])).sum(1)) - 2 * top)
    assert (ess / n > 0.3).all()

    def log_weights_fn(beta: np.ndarray, index: np.ndarray) -> np.ndarray:
        return (beta - 1.0) * log_lik[index] - np.interp(np.log(beta), grid, log_norm)

    npe = make_npe(2, 2, density=MDNConfig(num_components=2, hidden_features=32), seed=0)
    config = TrainConfig(
        batch_size=256, learning_rate=1e-3, max_epochs=35, patience=20, progress=False
    )
    history = fit(
        npe, theta, x, LogUniformBeta(0.7, 2.0), config=config, log_weights_fn=log_weights_fn
    )
    # one validation curve per temperature of the validation grid, for diagnosis
    assert len(history.validation_parts) == history.epochs
    assert len(history.validation_part_labels) == config.validation_betas
    assert history.validation_part_labels[0] == "beta=0.7"
    assert all(len(parts) == config.validation_betas for parts in history.validation_parts)
    posterior = Posterior(npe)
    assert posterior.beta_range == (0.7, 2.0)
    for x_obs in X_OBS:
        for b in (0.7, 1.0, 1.4, 2.0):
            check_moments(posterior, x_obs, b)
