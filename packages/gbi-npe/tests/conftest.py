"""Shared fixtures: every estimator family, small enough for a 2-core CI machine."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from gbi_npe import (
    ConditionalDensityEstimator,
    MDNConfig,
    SplineFlowConfig,
    make_conditional_estimator,
    make_npe,
)

torch.set_num_threads(1)

#: every estimator the package offers, in test size.
DENSITIES = {
    "nsf-coupling": SplineFlowConfig(
        kind="coupling", num_layers=2, hidden_features=16, num_blocks=1, num_bins=4
    ),
    "nsf-autoregressive": SplineFlowConfig(
        kind="autoregressive", num_layers=2, hidden_features=16, num_blocks=1, num_bins=4
    ),
    "mdn": MDNConfig(num_components=3, hidden_features=16, num_hidden_layers=1),
}

BOX_LOW = np.array([-1.0, 0.5, -3.0])
BOX_HIGH = np.array([2.0, 3.0, -2.0])


@pytest.fixture(params=sorted(DENSITIES))
def density(request: pytest.FixtureRequest):
    return DENSITIES[request.param]


def perturb(module: torch.nn.Module, seed: int, scale: float = 0.3) -> None:
    """Add seeded noise to every parameter, so no layer stays at its identity init."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype)
            parameter.add_(scale * noise)


@pytest.fixture
def make_ready() -> Callable[..., ConditionalDensityEstimator]:
    """Factory for an untrained but standardized, perturbed estimator.

    ``make_ready(density, theta_dim, x_dim, box=True, beta=True, seed=0,
    perturbation=0.3)`` returns an estimator whose standardization is set from
    seeded random data, whose beta range is [0.1, 2], and whose weights carry
    seeded Gaussian noise of scale ``perturbation``.
    """

    def factory(
        density,
        theta_dim: int,
        x_dim: int = 3,
        *,
        box: bool = True,
        beta: bool = True,
        seed: int = 0,
        perturbation: float = 0.3,
    ) -> ConditionalDensityEstimator:
        rng = np.random.default_rng(seed)
        low, high = (BOX_LOW[:theta_dim], BOX_HIGH[:theta_dim]) if box else (None, None)
        if beta:
            estimator = make_npe(theta_dim, x_dim, density=density, low=low, high=high, seed=seed)
        else:
            estimator = make_conditional_estimator(
                theta_dim, x_dim, density=density, low=low, high=high, seed=seed
            )
        if box:
            inputs = rng.uniform(low, high, (256, theta_dim))
        else:
            inputs = rng.normal(0.5, 2.0, (256, theta_dim))
        context = rng.normal(size=(256, x_dim))
        betas = np.exp(rng.uniform(np.log(0.1), np.log(2.0), 256)) if beta else None
        estimator.set_standardization(inputs, context, None, betas)
        if beta:
            estimator.record_beta_range(0.1, 2.0)
        perturb(estimator, seed, perturbation)
        estimator.eval()
        return estimator

    return factory


@pytest.fixture
def npe_contexts() -> Callable[..., torch.Tensor]:
    """``npe_contexts(m, x_dim=3, seed=0)``: random contexts [x, beta], (m, x_dim + 1)."""

    def factory(m: int, x_dim: int = 3, seed: int = 0) -> torch.Tensor:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(m, x_dim))
        beta = np.exp(rng.uniform(np.log(0.1), np.log(2.0), m))
        return torch.as_tensor(np.c_[x, beta])

    return factory
