"""Shared fixtures: a linear-Gaussian simulator with closed forms, and trained surrogates.

The accuracy fixtures train each surrogate once per session on the same 10k
simulations (small networks, sized for a 2-core CI machine); the contract
fixtures train tiny models for a couple of epochs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from gbi_npe import SplineFlowConfig
from gbi_surrogates import (
    NLEConfig,
    NREConfig,
    ScoreConfig,
    TrainConfig,
    fit_nle,
    fit_nre,
    fit_score,
)

torch.set_num_threads(1)


class LinearGaussian:
    r"""theta ~ N(0, Gamma), x = A theta + eps, eps ~ N(0, Sigma); d_theta = d_x = 2.

    Built from a unit-scale model (theta0 ~ N(0, I), x0 = A0 theta0 + eps0 with
    correlated eps0) whose coordinates are then rescaled, theta = S_theta
    theta0 and x = S_x x0, so that every surrogate's standardization (and the
    score's chain rule back to the original coordinates) matters. Everything is
    Gaussian, so the likelihood, the evidence, the posterior and the joint
    score of the noised joint are closed form.
    """

    A0 = np.array([[1.0, 0.5], [-0.3, 1.0]])
    SIGMA0 = 0.25 * np.array([[1.0, 0.5], [0.5, 1.0]])
    S_THETA = np.array([2.0, 0.5])
    S_X = np.array([1.0, 3.0])

    def __init__(self) -> None:
        s_theta, s_x = np.diag(self.S_THETA), np.diag(self.S_X)
        self.gamma = s_theta @ s_theta
        self.a = s_x @ self.A0 @ np.linalg.inv(s_theta)
        self.sigma = s_x @ self.SIGMA0 @ s_x
        self.x_cov = self.a @ self.gamma @ self.a.T + self.sigma
        self.joint_cov = np.block(
            [[self.gamma, self.gamma @ self.a.T], [self.a @ self.gamma, self.x_cov]]
        )
        self.posterior_cov = np.linalg.inv(
            np.linalg.inv(self.gamma) + self.a.T @ np.linalg.inv(self.sigma) @ self.a
        )

    def simulate(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        theta0 = rng.standard_normal((n, 2))
        x0 = theta0 @ self.A0.T + rng.standard_normal((n, 2)) @ np.linalg.cholesky(self.SIGMA0).T
        return theta0 * self.S_THETA, x0 * self.S_X

    @staticmethod
    def _log_normal(residual: np.ndarray, cov: np.ndarray) -> np.ndarray:
        precision = np.linalg.inv(cov)
        quad = np.einsum("ni,ij,nj->n", residual, precision, residual)
        return -0.5 * quad - 0.5 * np.linalg.slogdet(2 * np.pi * cov)[1]

    def log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        return self._log_normal(x - theta @ self.a.T, self.sigma)

    def log_evidence(self, x: np.ndarray) -> np.ndarray:
        return self._log_normal(x, self.x_cov)

    def posterior_samples(self, x: np.ndarray, k: int, seed: int) -> np.ndarray:
        """k draws of theta | x for each row of x: (m, k, 2)."""
        gain = self.posterior_cov @ self.a.T @ np.linalg.inv(self.sigma)
        noise = np.random.default_rng(seed).standard_normal((x.shape[0], k, 2))
        return (x @ gain.T)[:, None, :] + noise @ np.linalg.cholesky(self.posterior_cov).T

    def noised_joint_score(self, v: np.ndarray, noise_cov: np.ndarray) -> np.ndarray:
        """Score of N(0, joint_cov + noise_cov) at v (n, 4)."""
        return -v @ np.linalg.inv(self.joint_cov + noise_cov).T


@pytest.fixture(scope="session")
def gaussian() -> LinearGaussian:
    return LinearGaussian()


@pytest.fixture(scope="session")
def simulations(gaussian: LinearGaussian) -> tuple[np.ndarray, np.ndarray]:
    """The 10k training simulations shared by every accuracy test."""
    return gaussian.simulate(10_000, seed=0)


def _train(epochs: int, patience: int, batch_size: int, learning_rate: float) -> TrainConfig:
    return TrainConfig(
        max_epochs=epochs,
        patience=patience,
        batch_size=batch_size,
        learning_rate=learning_rate,
        progress=False,
        seed=0,
    )


@pytest.fixture(scope="session")
def trained_nle(simulations):
    config = NLEConfig(
        density=SplineFlowConfig(num_layers=2, hidden_features=32, num_blocks=1, tail_bound=6.0)
    )
    return fit_nle(
        *simulations, config, _train(60, patience=10, batch_size=512, learning_rate=2e-3)
    )


@pytest.fixture(scope="session")
def trained_nre_a(simulations):
    config = NREConfig(hidden_features=64, num_blocks=2, variant="nre_a", num_negatives=4)
    return fit_nre(
        *simulations, config, _train(80, patience=15, batch_size=256, learning_rate=1e-3)
    )


@pytest.fixture(scope="session")
def trained_nre_b(simulations):
    config = NREConfig(hidden_features=64, num_blocks=2, variant="nre_b", num_atoms=5)
    return fit_nre(
        *simulations, config, _train(80, patience=15, batch_size=256, learning_rate=1e-3)
    )


@pytest.fixture(scope="session")
def trained_score(simulations):
    config = ScoreConfig(
        hidden_features=64,
        num_blocks=2,
        embedding_features=32,
        head_blocks=2,
        sigma_min=0.1,
        sigma_max=1.0,
        num_sigmas=10,
    )
    return fit_score(
        *simulations, config, _train(100, patience=15, batch_size=1024, learning_rate=1e-3)
    )


# -- tiny models for the contract tests --------------------------------------------------------

KINDS = ("nle", "nre", "score")

TINY_CONFIGS = {
    "nle": NLEConfig(
        density=SplineFlowConfig(num_layers=1, hidden_features=8, num_blocks=1, num_bins=4)
    ),
    "nre": NREConfig(hidden_features=8, num_blocks=1, num_negatives=2),
    "score": ScoreConfig(
        hidden_features=8, num_blocks=1, embedding_features=4, head_blocks=1, num_sigmas=3
    ),
}

FITS = {"nle": fit_nle, "nre": fit_nre, "score": fit_score}


def fit_tiny(kind: str, theta: np.ndarray, x: np.ndarray, seed: int = 0, **train):
    """A tiny model of ``kind`` trained for two epochs."""
    settings = {"max_epochs": 2, "batch_size": 64, "progress": False, "seed": seed, **train}
    return FITS[kind](theta, x, TINY_CONFIGS[kind], TrainConfig(**settings))


def evaluate(model, theta: np.ndarray, x: np.ndarray, **kwargs) -> np.ndarray:
    """The model's main output: log-likelihood, log-ratio or score (at its smallest sigma)."""
    if model.kind == "nle":
        return model.log_likelihood(theta, x, **kwargs)
    if model.kind == "nre":
        return model.log_ratio(theta, x, **kwargs)
    return model.score(theta, x, model.sigmas[-1], **kwargs)


@pytest.fixture(scope="session")
def small_data(gaussian: LinearGaussian) -> tuple[np.ndarray, np.ndarray]:
    return gaussian.simulate(300, seed=11)


@pytest.fixture(scope="session")
def tiny_models(small_data) -> dict:
    return {kind: fit_tiny(kind, *small_data)[0] for kind in KINDS}


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def tiny(tiny_models, kind):
    return tiny_models[kind]


@pytest.fixture
def evaluate_fn() -> Callable[..., np.ndarray]:
    return evaluate


@pytest.fixture
def fit_tiny_fn() -> Callable[..., tuple]:
    return fit_tiny
