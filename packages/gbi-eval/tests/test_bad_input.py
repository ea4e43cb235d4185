"""Bad input raises a ValueError that says what was expected and what was given."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

import gbi_eval


def loglik(theta: np.ndarray) -> np.ndarray:
    return -0.5 * np.sum(theta**2, axis=1)


LOW = -np.ones(2)
HIGH = np.ones(2)


@dataclass(frozen=True)
class Box:
    low: np.ndarray
    high: np.ndarray


@dataclass(frozen=True)
class Task:
    name: str
    prior: Box = Box(LOW, HIGH)

    def log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        return loglik(theta)


SAMPLERS = {
    "rwmh": lambda beta, n: gbi_eval.sample_rwmh(loglik, LOW, HIGH, beta, n, 0),
    "pt": lambda beta, n: gbi_eval.parallel_tempering(loglik, LOW, HIGH, beta, n, 0),
    "rejection": lambda beta, n: gbi_eval.rejection(
        loglik, LOW, HIGH, beta, n, 0, log_likelihood_max=0.0
    ),
    "reference": lambda beta, n: gbi_eval.reference_posterior(
        Task("gaussian_mixture"), np.zeros(2), beta, n, 0
    ),
}


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("beta", [0.0, -1.0, np.nan, np.inf, "1"])
def test_beta_must_be_positive(sampler: str, beta: object) -> None:
    with pytest.raises(ValueError, match="beta must be"):
        SAMPLERS[sampler](beta, 10)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_n_must_be_a_positive_int(sampler: str, n: object) -> None:
    with pytest.raises(ValueError, match="n must be a positive int"):
        SAMPLERS[sampler](1.0, n)


def test_unknown_task_lists_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="two_moons, gaussian_mixture, slcp, lorenz96"):
        gbi_eval.reference_posterior(Task("hodgkin_huxley"), np.zeros(2), 1.0, 10, 0)


@pytest.mark.parametrize("x_obs", [np.zeros((2, 2)), np.array([np.nan, 0.0]), np.array([])])
def test_reference_rejects_bad_observations(x_obs: np.ndarray) -> None:
    with pytest.raises(ValueError, match="x_obs"):
        gbi_eval.reference_posterior(Task("gaussian_mixture"), x_obs, 1.0, 10, 0)


METRICS = {
    "c2st": lambda p, q: gbi_eval.c2st(p, q, seed=0),
    "mmd": lambda p, q: gbi_eval.mmd(p, q),
}


@pytest.mark.parametrize("metric", METRICS)
def test_metrics_reject_different_dimensions(metric: str) -> None:
    with pytest.raises(ValueError, match=r"same dimension, got 2 .* and 3"):
        METRICS[metric](np.zeros((20, 2)), np.zeros((20, 3)))


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_metrics_reject_non_finite_samples(metric: str, bad: float) -> None:
    p = np.random.default_rng(0).normal(size=(20, 2))
    q = p.copy()
    q[7, 1] = bad
    with pytest.raises(ValueError, match=r"q_samples has NaN or infinite values .* row 7"):
        METRICS[metric](p, q)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("shape", [(20,), (0, 2), (2, 3, 4)])
def test_metrics_reject_bad_shapes(metric: str, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="p_samples must"):
        METRICS[metric](np.zeros(shape), np.zeros((20, 2)))


def test_c2st_needs_equal_sizes_and_enough_samples() -> None:
    with pytest.raises(ValueError, match="as many p_samples as q_samples"):
        gbi_eval.c2st(np.zeros((20, 2)), np.zeros((30, 2)), seed=0)
    with pytest.raises(ValueError, match="at least n_folds samples"):
        gbi_eval.c2st(np.zeros((3, 2)), np.zeros((3, 2)), seed=0)


def test_mmd_rejects_bad_bandwidth_and_degenerate_samples() -> None:
    x = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="bandwidth must be"):
        gbi_eval.mmd(x, x, bandwidth=0.0)
    with pytest.raises(ValueError, match="bandwidth 0"):
        gbi_eval.mmd(np.zeros((10, 2)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        gbi_eval.mmd(x[:1], x)


def test_sampler_inputs() -> None:
    with pytest.raises(ValueError, match="high must exceed low"):
        gbi_eval.sample_rwmh(loglik, HIGH, LOW, 1.0, 10, 0)
    with pytest.raises(ValueError, match="initial positions must lie inside the box"):
        gbi_eval.rwmh_init(np.full((2, 2), 3.0), loglik, LOW, HIGH)
    with pytest.raises(ValueError, match="log-likelihood -inf"):
        gbi_eval.rwmh_init(np.zeros((2, 2)), lambda t: np.full(2, -np.inf), LOW, HIGH)
    with pytest.raises(ValueError, match="must return shape"):
        gbi_eval.sample_rwmh(lambda t: np.zeros(3), LOW, HIGH, 1.0, 10, 0)
    with pytest.raises(ValueError, match=r"initial_positions must have shape \(n_chains, d\)"):
        gbi_eval.sample_rwmh(loglik, LOW, HIGH, 1.0, 10, 0, initial_positions=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="seed must be"):
        gbi_eval.sample_rwmh(loglik, LOW, HIGH, 1.0, 10, seed=1.5)
    with pytest.raises(ValueError, match="beta_min must be below beta"):
        gbi_eval.parallel_tempering(loglik, LOW, HIGH, 0.01, 10, 0, beta_min=0.1)
    with pytest.raises(ValueError, match="n_rungs >= 2"):
        gbi_eval.geometric_ladder(0.01, 1.0, 1)
    state = gbi_eval.rwmh_init(np.zeros((1, 2)), loglik, LOW, HIGH)
    with pytest.raises(ValueError, match="boundary='reject'"):
        gbi_eval.rwmh_step(np.random.default_rng(0), state, 1.0, loglik, LOW, HIGH, np.eye(2)[None])
