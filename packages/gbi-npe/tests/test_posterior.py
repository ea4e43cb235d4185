"""The numpy-facing Posterior: shapes, vectorization, beta range, bad input."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from gbi_npe import (
    ExtrapolationWarning,
    MDNConfig,
    Posterior,
    SplineFlowConfig,
    make_conditional_estimator,
    make_npe,
)

SMALL = SplineFlowConfig(num_layers=2, hidden_features=16, num_blocks=1, num_bins=4)


@pytest.fixture
def posterior(make_ready) -> Posterior:
    return Posterior(make_ready(SMALL, 2, x_dim=3))


X = np.array([0.3, -1.0, 2.0])


def test_one_observation_gives_n_by_d(posterior):
    theta = posterior.sample(100, X, 0.5, seed=0)
    assert theta.shape == (100, 2) and theta.dtype == np.float64
    assert ((theta > posterior.low) & (theta < posterior.high)).all()


def test_many_observations_in_one_call(posterior):
    xs = np.random.default_rng(0).normal(size=(6, 3))
    assert posterior.sample(50, xs, 1.0, seed=0).shape == (6, 50, 2)
    betas = np.array([0.1, 0.2, 0.5, 1.0, 1.5, 2.0])
    assert posterior.sample(50, xs, betas, seed=0).shape == (6, 50, 2)
    # One x at several temperatures.
    assert posterior.sample(50, X, betas[:3], seed=0).shape == (3, 50, 2)
    # A single observation given as a (1, x_dim) batch keeps its batch axis.
    assert posterior.sample(50, X[None], 1.0, seed=0).shape == (1, 50, 2)


def test_batched_rows_match_their_own_observation(posterior):
    # Row i of a batched call is a draw for (x_i, beta_i): its log density is
    # the one log_prob gives for that observation.
    xs = np.random.default_rng(1).normal(size=(4, 3))
    betas = np.array([0.1, 0.5, 1.0, 2.0])
    theta, log_q = posterior.sample_and_log_prob(30, xs, betas, seed=2)
    assert log_q.shape == (4, 30)
    for i in range(4):
        np.testing.assert_allclose(
            posterior.log_prob(theta[i], xs[i], betas[i]), log_q[i], atol=2e-3
        )


def test_seed_reproducibility_and_numpy_generator(posterior):
    a = posterior.sample(20, X, 1.0, seed=3)
    np.testing.assert_array_equal(a, posterior.sample(20, X, 1.0, seed=3))
    assert not np.array_equal(a, posterior.sample(20, X, 1.0, seed=4))
    rng = np.random.default_rng(0)
    first, second = posterior.sample(20, X, 1.0, rng), posterior.sample(20, X, 1.0, rng)
    assert not np.array_equal(first, second)  # the generator advanced
    again = posterior.sample(20, X, 1.0, np.random.default_rng(0))
    np.testing.assert_array_equal(first, again)


def test_log_prob_shapes(posterior):
    theta = posterior.sample(10, X, 1.0, seed=0)
    assert posterior.log_prob(theta, X, 1.0).shape == (10,)
    xs = np.repeat(X[None], 10, axis=0)
    np.testing.assert_allclose(
        posterior.log_prob(theta, xs, np.full(10, 1.0)), posterior.log_prob(theta, X, 1.0)
    )
    assert posterior.log_prob(theta[0], X, 1.0).shape == (1,)
    outside = np.array([[10.0, 1.0]])
    assert posterior.log_prob(outside, X, 1.0)[0] == -np.inf


def test_facts(posterior):
    assert posterior.beta_range == (0.1, 2.0)
    assert posterior.theta_dim == 2 and posterior.x_dim == 3
    np.testing.assert_array_equal(posterior.low, [-1.0, 0.5])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": np.zeros(4)}, r"x must have shape \(n, 3\) or \(3,\), got \(4,\)"),
        ({"x": np.zeros((2, 2))}, r"x must have shape"),
        ({"x": np.array([0.0, np.nan, 1.0])}, r"x must be finite"),
        ({"x": "abc"}, r"x must be a numeric array"),
        ({"beta": 0.0}, r"beta must be finite and > 0"),
        ({"beta": -1.0}, r"beta must be finite and > 0"),
        ({"beta": np.nan}, r"beta must be finite and > 0"),
        ({"beta": np.ones((2, 2))}, r"beta must be a scalar or a 1-D array"),
        ({"n": 0}, r"n must be a positive integer"),
        ({"n": -5}, r"n must be a positive integer"),
        ({"n": 2.5}, r"n must be a positive integer"),
        ({"seed": -1}, r"seed must be a non-negative int"),
        ({"seed": 1.5}, r"seed must be a non-negative int"),
    ],
)
def test_sample_rejects_bad_input(posterior, kwargs, message):
    args = {"n": 10, "x": X, "beta": 1.0, "seed": 0} | kwargs
    with pytest.raises(ValueError, match=message):
        posterior.sample(**args)


def test_beta_per_observation_must_match(posterior):
    with pytest.raises(ValueError, match=r"beta must be a scalar or have shape \(3,\)"):
        posterior.sample(5, np.zeros((3, 3)), np.ones(2), seed=0)


def test_log_prob_rejects_bad_input(posterior):
    with pytest.raises(ValueError, match=r"theta must have shape \(n, 2\) or \(2,\)"):
        posterior.log_prob(np.zeros((4, 3)), X, 1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(3,\) or \(4, 3\)"):
        posterior.log_prob(np.zeros((4, 2)), np.zeros((2, 3)), 1.0)
    with pytest.raises(ValueError, match=r"beta must be a scalar or have shape \(4,\)"):
        posterior.log_prob(np.zeros((4, 2)), X, np.ones(3))


def test_beta_outside_the_trained_range(posterior):
    for beta in (0.05, 2.5):
        with pytest.raises(ValueError, match=r"outside the trained range \[0.1, 2\].*extrapolate"):
            posterior.sample(5, X, beta, seed=0)
        with pytest.raises(ValueError, match="outside the trained range"):
            posterior.log_prob(np.zeros((1, 2)) + 1.0, X, beta)
    with pytest.warns(ExtrapolationWarning, match="outside the trained range"):
        assert posterior.sample(5, X, 2.5, seed=0, extrapolate=True).shape == (5, 2)
    with pytest.warns(ExtrapolationWarning):
        posterior.log_prob(np.zeros((1, 2)) + 1.0, X, 3.0, extrapolate=True)
    # The end points themselves are inside, and give no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        posterior.sample(5, X, np.array([0.1, 2.0]), seed=0)


def test_posterior_needs_a_trained_beta_estimator():
    with pytest.raises(ValueError, match="has not been trained"):
        Posterior(make_npe(2, 3, density=MDNConfig()))
    with pytest.raises(ValueError, match="beta-conditioned"):
        Posterior(make_conditional_estimator(2, 3))
    with pytest.raises(ValueError, match="ConditionalDensityEstimator"):
        Posterior("model.safetensors")  # type: ignore[arg-type]


def test_save_and_load_through_the_posterior(posterior, tmp_path):
    path = posterior.save(tmp_path / "posterior.safetensors", metadata={"task": "toy"})
    loaded = Posterior.load(path)
    np.testing.assert_array_equal(
        posterior.sample(30, X, 0.7, seed=1), loaded.sample(30, X, 0.7, seed=1)
    )
    assert loaded.beta_range == posterior.beta_range


def test_sampling_leaves_the_network_in_the_mode_it_found(make_ready):
    """Draws and densities come from eval mode (no dropout); a network still in
    training mode is handed back in training mode, one in eval mode untouched."""
    posterior = Posterior(make_ready(dataclasses.replace(SMALL, dropout=0.5), 2, x_dim=3))
    estimator = posterior.estimator
    draws = {}
    for training in (True, False):
        estimator.train(training)
        draws[training] = posterior.sample(50, X, 1.0, seed=3)
        assert all(module.training is training for module in estimator.modules())
        posterior.log_prob(draws[training], X, 1.0)
        assert all(module.training is training for module in estimator.modules())
    np.testing.assert_array_equal(draws[True], draws[False])
