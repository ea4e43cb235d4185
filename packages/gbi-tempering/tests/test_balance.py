"""The pool check: 0 for exact ratios, positive for a saturated classifier's; and the
Markov check of matched pairs' log-ratios."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from gbi_tempering import low_ratios, pool_excess

SD = 0.2  # x | theta ~ N(theta, SD^2), theta ~ N(0, 1): p(x) = N(0, 1 + SD^2)


def _log_ratio(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    return norm.logpdf(x, theta, SD) - norm.logpdf(x, 0.0, np.sqrt(1 + SD**2))


def _pool(seed: int, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Own and partner (2 per x) exact log-ratios of a Gaussian model."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n)
    x = theta + SD * rng.normal(size=n)
    partners = rng.normal(size=2 * n)
    return _log_ratio(theta, x), _log_ratio(partners, np.repeat(x, 2))


def test_exact_ratios_give_no_excess_within_the_standard_error() -> None:
    own, partners = _pool(0)
    # from beta 1/2 up both terms have finite variance (the own rows' second
    # moment is E_joint[r^(2 beta - 2)]), so the delta-method error holds: 4 of them
    check = pool_excess(own, partners, [0.5, 1.0, 1.5])
    assert np.all(np.abs(check.excess) < 4 * check.standard_error)
    assert np.all(check.standard_error < 0.05)
    assert check.partner_ess.shape == check.own_ess.shape == (3,)


def test_a_saturated_classifier_gives_a_positive_excess_at_small_beta() -> None:
    own, partners = _pool(0)
    # a classifier that tells far pairs only as "unlikely": log-ratios floored at -3
    # (exact partner log-ratios reach about -50 here)
    saturated = pool_excess(np.maximum(own, -3.0), np.maximum(partners, -3.0), [0.1, 0.5])
    assert saturated.excess[0] > 0.5 + 10 * saturated.standard_error[0]  # measured 0.78
    assert saturated.excess[1] > 10 * saturated.standard_error[1]  # measured 0.24
    assert saturated.excess[0] > saturated.excess[1]  # it grows as beta falls


def test_non_finite_scores_are_left_out() -> None:
    own, partners = _pool(1, n=2000)
    with_nan = pool_excess(np.append(own, np.nan), np.append(partners, -np.inf), [0.3, 1.0])
    plain = pool_excess(own, partners, [0.3, 1.0])
    np.testing.assert_allclose(with_nan.excess, plain.excess)
    assert with_nan.to_dict()["beta"] == [0.3, 1.0]


@pytest.mark.parametrize(
    ("own", "partners", "beta", "message"),
    [
        (np.zeros((3, 2)), np.zeros(4), 0.5, r"own_scores must have shape \(n,\)"),
        (np.zeros(3), np.array([np.nan, 1.0]), 0.5, "partner_scores needs at least 2 finite"),
        (np.zeros(3), np.zeros(4), 0.0, "beta must be finite and positive"),
        (np.zeros(3), np.zeros(4), [0.5, np.nan], "beta must be finite and positive"),
    ],
)
def test_bad_input_is_refused(own, partners, beta, message) -> None:
    with pytest.raises(ValueError, match=message):
        pool_excess(own, partners, beta)


def test_exact_matched_ratios_lie_above_the_markov_floor() -> None:
    # E_joint[1 / r] = 1, so among n exact pairs fewer than exp(-3) are expected
    # below -(log n + 3): one seed can fail with probability at most 5 %
    own, _ = _pool(2)
    check = low_ratios(own)
    assert check.floor == pytest.approx(-(np.log(20_000) + 3.0))
    assert check.count == 0 and check.lowest.size == 0 and check.n == 20_000


def test_misjudged_pairs_are_counted_lowest_first() -> None:
    own, _ = _pool(2)
    misjudged = own.copy()
    misjudged[[5, 50, 500, 600, 700, 800, 900]] = [-49.0, -30.0, -20.0, -16.0, -15.0, -14.5, -14.0]
    check = low_ratios(np.append(misjudged, [np.nan, -np.inf]))  # non-finite: left out
    assert check.n == 20_000 and check.count == 7  # the floor is -12.9
    np.testing.assert_array_equal(check.lowest, [-49.0, -30.0, -20.0, -16.0, -15.0])
    assert check.to_dict()["lowest"][0] == -49.0


@pytest.mark.parametrize(
    ("scores", "message"),
    [(np.zeros((3, 2)), r"must have shape \(n,\)"), (np.array([np.nan]), "no finite score")],
)
def test_the_markov_check_refuses_bad_input(scores, message) -> None:
    with pytest.raises(ValueError, match=message):
        low_ratios(scores)
