"""Langevin synthesis with the analytic score of a conjugate Gaussian model.

theta ~ N(0, tau^2) (prior score -theta / tau^2, on a box 12 tau wide so the box
is irrelevant), x | theta ~ N(theta, s^2). The base joint is N(0, C) with
C = [[tau^2, tau^2], [tau^2, tau^2 + s^2]], and noising by sigma gives the score
-(C + sigma^2 I)^-1 z. The tempered joint prior(theta) p(x | theta)^beta is
theta ~ N(0, tau^2), x | theta ~ N(theta, s^2 / beta), so theta | x is the power
posterior: slope tau^2 / (tau^2 + s^2 / beta), residual variance
1 / (1 / tau^2 + beta / s^2).
"""

from __future__ import annotations

import numpy as np
import pytest

from gbi_tempering import langevin, synthesize

TAU, S = 1.0, 0.5
COV = np.array([[TAU**2, TAU**2], [TAU**2, TAU**2 + S**2]])
LOW, HIGH = np.array([-6.0 * TAU]), np.array([6.0 * TAU])


def score_fn(theta: np.ndarray, x: np.ndarray, sigma: float) -> np.ndarray:
    z = np.concatenate([theta, x], axis=1)
    return -z @ np.linalg.inv(COV + sigma**2 * np.eye(2)).T


def prior_score_fn(theta: np.ndarray) -> np.ndarray:
    return -theta / TAU**2


@pytest.mark.parametrize("beta", [0.3, 1.0, 1.5])
def test_synthesized_pairs_follow_the_power_posterior(beta: float) -> None:
    rng = np.random.default_rng(0)
    n = 4000
    theta0 = np.clip(rng.normal(0, TAU, (n, 1)), LOW, HIGH)
    x0 = theta0 + rng.normal(0, S, (n, 1))
    sigmas = np.geomspace(1.0, 0.01, 12)
    theta, x, diag = synthesize(
        score_fn,
        theta0,
        x0,
        beta,
        LOW,
        HIGH,
        sigmas=sigmas,
        steps_per_level=40,
        step_scale=0.2,
        seed=1,
        prior_score_fn=prior_score_fn,
    )
    assert theta.shape == (n, 1) and x.shape == (n, 1)
    assert np.all((theta >= LOW) & (theta <= HIGH))
    t, xx = theta[:, 0], x[:, 0]
    slope = np.cov(t, xx)[0, 1] / np.var(xx, ddof=1)
    residual = np.var(t - slope * xx, ddof=1)
    expected_slope = TAU**2 / (TAU**2 + S**2 / beta)
    expected_residual = 1.0 / (1.0 / TAU**2 + beta / S**2)
    # Sampling error with n = 4000 nearly independent pairs: se(slope) =
    # sqrt(residual / (n var x)) <= 0.008 and se(residual) = residual sqrt(2 / n) =
    # 2.2 % relative. The final level's noise sigma_L = 0.01 and the step
    # eta = 0.2 sigma^2 bias the variances by < 0.5 %. Allow 5 se plus that bias.
    se_slope = np.sqrt(expected_residual / (n * np.var(xx)))
    assert abs(slope - expected_slope) < 5 * se_slope + 0.005
    assert residual == pytest.approx(expected_residual, rel=5 * np.sqrt(2 / n) + 0.005)
    assert np.var(t) == pytest.approx(TAU**2, rel=5 * np.sqrt(2 / n) + 0.005)
    assert diag.score_norm_mean.shape == (12,)
    assert np.all(diag.reflected_fraction < 0.01)
    np.testing.assert_allclose(diag.step_sizes, 0.2 * sigmas**2)


def test_reflection_folds_into_the_box() -> None:
    low, high = np.array([0.0, -1.0]), np.array([1.0, 1.0])
    theta = np.array([[1.2, 0.0], [-0.3, 2.5], [0.5, 0.5], [3.7, -1.0]])
    out, mask = langevin.reflect(theta, low, high)
    np.testing.assert_allclose(out, [[0.8, 0.0], [0.3, -0.5], [0.5, 0.5], [0.3, -1.0]])
    np.testing.assert_array_equal(mask, [True, True, False, True])


def test_step_is_pure_and_seeded() -> None:
    state = langevin.init(np.zeros((5, 1)), np.ones((5, 1)))
    beta = np.full(5, 0.5)
    a, _ = langevin.step(np.random.default_rng(3), state, beta, 0.1, 0.01, score_fn, LOW, HIGH)
    b, info = langevin.step(np.random.default_rng(3), state, beta, 0.1, 0.01, score_fn, LOW, HIGH)
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(state.theta, 0.0)
    assert info.reflected_fraction == 0.0


def test_bad_input() -> None:
    theta, x = np.zeros((4, 1)), np.zeros((4, 1))
    kw = {"sigmas": np.array([1.0, 0.1])}
    with pytest.raises(ValueError, match="beta"):
        synthesize(score_fn, theta, x, 0.0, LOW, HIGH, **kw)
    with pytest.raises(ValueError, match="same n"):
        synthesize(score_fn, theta, x[:3], 1.0, LOW, HIGH, **kw)
    with pytest.raises(ValueError, match="decreasing"):
        synthesize(score_fn, theta, x, 1.0, LOW, HIGH, sigmas=np.array([0.1, 1.0]))
    with pytest.raises(ValueError, match="inside the prior box"):
        synthesize(score_fn, theta + 10, x, 1.0, LOW, HIGH, **kw)
    with pytest.raises(ValueError, match="finite"):
        synthesize(score_fn, theta * np.nan, x, 1.0, LOW, HIGH, **kw)
    with pytest.raises(ValueError, match="score_fn must return shape"):
        synthesize(lambda t, x, s: np.zeros((4, 1)), theta, x, 1.0, LOW, HIGH, **kw)
