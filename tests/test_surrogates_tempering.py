"""gbi-surrogates feeding gbi-tempering: the score model drives Langevin synthesis,
the NRE / NLE scores drive SNIS weights (shapes, finiteness, normalization).

Small, quickly trained models on a box-prior Gaussian simulator: these check
the plumbing between the packages, not accuracy (each package tests that).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gbi_npe import MDNConfig
from gbi_surrogates import (
    NLEConfig,
    NREConfig,
    ScoreConfig,
    TrainConfig,
    fit_nle,
    fit_nre,
    fit_score,
)
from gbi_tempering import SNISWeights, synthesize

torch.set_num_threads(1)

LOW, HIGH = np.array([-3.0, -3.0]), np.array([3.0, 3.0])
TRAIN = TrainConfig(max_epochs=3, batch_size=128, progress=False, seed=0)


@pytest.fixture(scope="module")
def base_pairs() -> tuple[np.ndarray, np.ndarray]:
    """theta ~ U(-3, 3)^2, x = theta + 0.5 N(0, I)."""
    rng = np.random.default_rng(0)
    theta = rng.uniform(LOW, HIGH, (2000, 2))
    return theta, theta + 0.5 * rng.standard_normal((2000, 2))


def test_score_model_drives_langevin_synthesis(base_pairs) -> None:
    theta, x = base_pairs
    config = ScoreConfig(
        hidden_features=16, num_blocks=1, embedding_features=8, head_blocks=1, num_sigmas=4
    )
    model, _ = fit_score(theta, x, config, TRAIN)
    n = 200
    beta = np.repeat([0.3, 1.0, 1.5], [70, 70, 60])
    new_theta, new_x, diagnostics = synthesize(
        model.score,
        theta[:n],
        x[:n],
        beta,
        LOW,
        HIGH,
        sigmas=model.sigmas,
        steps_per_level=5,
        step_scale=0.1,
        seed=1,
    )
    assert new_theta.shape == (n, 2) and new_x.shape == (n, 2)
    assert np.isfinite(new_theta).all() and np.isfinite(new_x).all()
    assert np.all((new_theta >= LOW) & (new_theta <= HIGH))
    assert diagnostics.sigmas.shape == (4,)
    assert np.isfinite(diagnostics.score_norm_mean).all()
    assert np.all((diagnostics.reflected_fraction >= 0) & (diagnostics.reflected_fraction <= 1))


@pytest.mark.parametrize("form", ["nre", "nle"])
def test_surrogate_scores_drive_snis_weights(base_pairs, form: str) -> None:
    theta, x = base_pairs
    if form == "nre":
        nre, _ = fit_nre(theta, x, NREConfig(hidden_features=16, num_blocks=1), TRAIN)
        scores = nre.log_ratio(theta, x)
    else:
        config = NLEConfig(density=MDNConfig(num_components=2, hidden_features=16))
        nle, _ = fit_nle(theta, x, config, TRAIN)
        scores = nle.log_likelihood(theta, x)
    assert scores.shape == (2000,) and np.isfinite(scores).all()
    weights = SNISWeights(scores, form=form, beta_range=(0.1, 2.0))
    log_weights = weights.log_weights([0.5, 1.0, 1.5])
    assert log_weights.shape == (3, 2000) and np.isfinite(log_weights).all()
    np.testing.assert_allclose(np.exp(log_weights).sum(axis=1), 1.0, rtol=1e-10)
    diagnostics = weights.diagnostics([0.5, 1.0, 1.5], warn=False)
    assert diagnostics.ess[1] == pytest.approx(2000)  # beta = 1: uniform weights
    assert np.all((diagnostics.relative_ess > 0) & (diagnostics.relative_ess <= 1 + 1e-12))
    index = np.arange(10)
    per_pair = weights.log_weights_fn(np.full(10, 0.7), index)
    assert per_pair.shape == (10,) and np.isfinite(per_pair).all()
