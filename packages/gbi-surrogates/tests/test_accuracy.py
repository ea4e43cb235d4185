"""Statistical checks against the closed forms of the linear-Gaussian model (conftest).

Each surrogate is trained once on the same 10k simulations and evaluated on
held-out pairs from the base joint, the pairs the SNIS weights and the
Langevin synthesis actually use. Seeded: the numbers are reproducible; the
values measured when the thresholds were set are in the comments.
"""

from __future__ import annotations

import numpy as np
import pytest

from gbi_surrogates import EvidenceProgress

pytestmark = pytest.mark.slow


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _centered_pairs(gaussian, ratio_fn, n_x: int = 200, k: int = 20):
    """log r_hat and the true log-likelihood on k posterior thetas for each of n_x held-out x,
    each with its per-x mean removed (which removes any function of x)."""
    _, x = gaussian.simulate(n_x, seed=101)
    theta = gaussian.posterior_samples(x, k, seed=102).reshape(-1, 2)
    x_rep = np.repeat(x, k, axis=0)
    estimate = ratio_fn(theta, x_rep).reshape(n_x, k)
    truth = gaussian.log_likelihood(theta, x_rep).reshape(n_x, k)
    return (
        estimate - estimate.mean(axis=1, keepdims=True),
        truth - truth.mean(axis=1, keepdims=True),
    )


def test_nle_log_likelihood_matches_the_truth(gaussian, trained_nle) -> None:
    nle, history = trained_nle
    theta, x = gaussian.simulate(2000, seed=100)
    estimate = nle.log_likelihood(theta, x)
    truth = gaussian.log_likelihood(theta, x)
    # Measured 0.9926; the standard deviation of the truth over these pairs is 1.04.
    assert _pearson(estimate, truth) >= 0.99
    # A density of x in its original units (x is rescaled by (1, 3)): the
    # standardization Jacobian is in, so there is no offset (measured -0.006).
    assert abs(np.mean(estimate - truth)) < 0.05
    assert history.epochs <= 60 and history.best_epoch is not None


def test_nle_log_ratio_matches_the_exact_ratio_on_joint_pairs(gaussian, trained_nle) -> None:
    """The NLE's contrastive evidence turns its likelihoods into the exact ratio."""
    nle, _ = trained_nle
    theta, x = gaussian.simulate(2000, seed=100)
    contrast, _ = gaussian.simulate(1000, seed=101)
    estimate = nle.log_ratio(theta, x, contrast)
    truth = gaussian.log_likelihood(theta, x) - gaussian.log_evidence(x)
    assert np.all(estimate <= np.log(1001) + 1e-9)
    # Measured 0.9888 (truth standard deviation 1.30) and mean offset -0.008; the
    # offset's standard error over 2000 pairs is about 0.005, the rest of the
    # margin is the NLE's own error and the estimator's O(1/M) bias.
    assert _pearson(estimate, truth) >= 0.98
    assert abs(np.mean(estimate - truth)) < 0.1
    # the raw likelihoods track the ratio far worse (measured 0.656): they also carry log p(x)
    assert _pearson(nle.log_likelihood(theta, x), truth) < 0.9
    for wrong in (contrast[0], contrast[:, :1], contrast[:0]):
        with pytest.raises(ValueError, match="contrast_theta"):
            nle.log_ratio(theta, x, wrong)


class _Stop(Exception):
    pass


def test_an_interrupted_evidence_resumes_to_the_same_ratio(gaussian, trained_nle) -> None:
    """The contrastive evidence is summed one contrast parameter at a time: a
    call stopped half way continues from its last checkpoint, to the same bits."""
    nle, _ = trained_nle
    theta, x = gaussian.simulate(300, seed=102)
    contrast, _ = gaussian.simulate(40, seed=103)
    whole = nle.log_ratio(theta, x, contrast)
    saved: list[EvidenceProgress] = []

    def checkpoint(progress: EvidenceProgress) -> None:
        saved.append(progress)
        if progress.done == 17:
            raise _Stop

    with pytest.raises(_Stop):
        nle.log_ratio(theta, x, contrast, checkpoint=checkpoint)
    assert [p.done for p in saved] == list(range(1, 18))
    calls = []
    counting = nle.log_likelihood

    def counted(*args, **kwargs):
        calls.append(1)
        return counting(*args, **kwargs)

    nle.log_likelihood = counted
    try:
        resumed = nle.log_ratio(theta, x, contrast, resume=saved[-1])
    finally:
        del nle.log_likelihood
    np.testing.assert_array_equal(resumed, whole)
    assert len(calls) == 40 - 17 + 1  # the remaining contrasts, then the own terms
    finished = EvidenceProgress(40, saved[-1].log_sum)
    for bad, message in (
        (EvidenceProgress(41, saved[-1].log_sum), r"done must lie in \[0, 40\]"),
        (EvidenceProgress(3, saved[-1].log_sum[:10]), "must hold 300 values"),
        (EvidenceProgress(3, np.full(300, np.nan)), "none NaN"),
    ):
        with pytest.raises(ValueError, match=message):
            nle.log_ratio(theta, x, contrast, resume=bad)
    assert nle.log_ratio(theta, x, contrast, resume=finished).shape == (300,)


def test_nre_a_log_ratio_matches_the_truth_up_to_a_function_of_x(gaussian, trained_nre_a) -> None:
    nre, _ = trained_nre_a
    estimate, truth = _centered_pairs(gaussian, nre.log_ratio)
    # Measured 0.9934 (per-x centering over 20 posterior draws of theta per x).
    assert _pearson(estimate, truth) >= 0.99


def test_nre_a_log_ratio_matches_the_exact_ratio_on_joint_pairs(gaussian, trained_nre_a) -> None:
    """NRE-A also estimates the x-only part: log r = log p(x | theta) - log p(x), no offset."""
    nre, _ = trained_nre_a
    theta, x = gaussian.simulate(2000, seed=100)
    truth = gaussian.log_likelihood(theta, x) - gaussian.log_evidence(x)
    # Measured 0.9918 (truth standard deviation 1.30).
    assert _pearson(nre.log_ratio(theta, x), truth) >= 0.98


def test_nre_b_log_ratio_matches_the_truth_up_to_a_function_of_x(gaussian, trained_nre_b) -> None:
    nre, _ = trained_nre_b
    estimate, truth = _centered_pairs(gaussian, nre.log_ratio)
    # Measured 0.9943.
    assert _pearson(estimate, truth) >= 0.99


@pytest.mark.parametrize(
    ("level", "max_relative_error", "min_cosine"),
    [
        # sigma = 0.1 (the smallest level, a tenth of each coordinate's spread):
        # measured relative RMS error 0.118, mean cosine 0.996.
        (-1, 0.2, 0.99),
        # sigma = 1: measured 0.037 and 0.9995.
        (0, 0.1, 0.995),
    ],
)
def test_score_matches_the_noised_joint_score(
    gaussian, trained_score, level: int, max_relative_error: float, min_cosine: float
) -> None:
    """Score of the base joint noised by N(0, sigma^2 D^2) (D: the model's training
    scales), in the original coordinates, at held-out pairs noised the same way."""
    model, _ = trained_score
    sigma = float(model.sigmas[level])
    theta, x = gaussian.simulate(4000, seed=103)
    scale = np.r_[model.theta_scale, model.x_scale]
    noise = sigma * scale * np.random.default_rng(104).standard_normal((4000, 4))
    v = np.c_[theta, x] + noise
    truth = gaussian.noised_joint_score(v, np.diag((sigma * scale) ** 2))
    estimate = model.score(v[:, :2], v[:, 2:], sigma)
    error = np.sqrt(np.mean(np.sum((estimate - truth) ** 2, axis=1)) / np.mean(np.sum(truth**2, 1)))
    cosine = np.mean(
        np.sum(estimate * truth, axis=1)
        / (np.linalg.norm(estimate, axis=1) * np.linalg.norm(truth, axis=1))
    )
    assert error < max_relative_error
    assert cosine > min_cosine


def test_standardized_score_is_the_chain_rule_of_the_original_one(trained_score) -> None:
    model, _ = trained_score
    rng = np.random.default_rng(5)
    theta, x = rng.normal(size=(50, 2)) * 2, rng.normal(size=(50, 2)) * 3
    scale = np.r_[model.theta_scale, model.x_scale]
    u_theta = (theta - model.theta_shift) / model.theta_scale
    u_x = (x - model.x_shift) / model.x_scale
    original = model.score(theta, x, 0.5)
    standardized = model.score(u_theta, u_x, 0.5, standardized=True)
    np.testing.assert_allclose(standardized, original * scale, rtol=1e-6, atol=1e-9)
