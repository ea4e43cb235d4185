"""SNIS with the exact likelihood of a conjugate Gaussian model.

theta ~ N(0, tau^2), x | theta ~ N(theta, s^2). With NLE-form weights
p(x | theta)^(beta - 1), the tempered joint is prior(theta) p(x | theta)^beta,
and since the integral of N(x; theta, s^2)^beta over x does not depend on
theta, it is theta ~ N(0, tau^2), x | theta ~ N(theta, s^2 / beta): the
power posterior theta | x has slope tau^2 / (tau^2 + s^2 / beta) on x and
variance 1 / (1 / tau^2 + beta / s^2).
"""

from __future__ import annotations

import numpy as np
import pytest

from gbi_tempering import SNISWeights

TAU, S = 1.0, 0.5


def _closed_form(beta: float) -> dict[str, float]:
    var_x = TAU**2 + S**2 / beta
    return {"mean_theta": 0.0, "mean_x": 0.0, "var_x": var_x, "cov": TAU**2, "var_theta": TAU**2}


@pytest.mark.parametrize("beta", [0.7, 1.0, 1.3])
def test_weighted_moments_match_the_power_posterior(beta: float) -> None:
    rng = np.random.default_rng(10)
    n = 200_000
    theta = rng.normal(0, TAU, n)
    x = theta + rng.normal(0, S, n)
    log_lik = -0.5 * ((x - theta) / S) ** 2 - np.log(S * np.sqrt(2 * np.pi))
    weights = SNISWeights(log_lik, beta_range=(0.1, 2.0))
    w = np.exp(weights.log_weights(beta)[0])
    ess = 1.0 / np.sum(w**2)
    features = {
        "mean_theta": theta,
        "mean_x": x,
        "var_x": x**2,
        "cov": theta * x,
        "var_theta": theta**2,
    }
    truth = _closed_form(beta)
    for name, f in features.items():
        estimate = np.sum(w * f)
        # SNIS standard error ~ sqrt(Var_target(f) / ESS); 5 standard errors keep the
        # chance of a false failure below 1e-6 per moment.
        se = np.sqrt(np.sum(w * (f - estimate) ** 2) / ess)
        assert abs(estimate - truth[name]) < 5 * se, (name, estimate, truth[name], se)
    slope = np.sum(w * theta * x) / np.sum(w * x**2)
    expected_slope = TAU**2 / (TAU**2 + S**2 / beta)
    residual = np.sum(w * (theta - slope * x) ** 2)
    expected_residual = 1.0 / (1.0 / TAU**2 + beta / S**2)
    # Derived quantities: a ratio of moments each within ~5 se / value < 1 %.
    assert slope == pytest.approx(expected_slope, rel=0.02)
    assert residual == pytest.approx(expected_residual, rel=0.03)
