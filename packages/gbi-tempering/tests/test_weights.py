from __future__ import annotations

import warnings

import numpy as np
import pytest

from gbi_tempering import (
    ESSCollapseWarning,
    SNISWeights,
    SwitchedWeights,
    ess,
    relative_ess,
    stabilize,
)


def test_ess_on_known_weights() -> None:
    n = 1000
    assert ess(np.zeros(n)) == pytest.approx(n)
    assert relative_ess(np.full(n, -3.0)) == pytest.approx(1.0)
    dominant = np.full(n, -50.0)
    dominant[7] = 0.0
    assert ess(dominant) == pytest.approx(1.0, abs=1e-15 * n + 1e-12)
    # Two equal weights and the rest negligible: ESS = 2.
    two = np.full(n, -800.0)
    two[[1, 2]] = 10.0
    assert ess(two) == pytest.approx(2.0)


def test_weights_are_globally_normalized_and_uniform_at_beta_one() -> None:
    scores = np.random.default_rng(0).normal(0, 2, size=500)
    w = SNISWeights(scores, beta_range=(0.1, 2.0))
    lw = w.log_weights([0.1, 1.0, 1.7])
    np.testing.assert_allclose(np.exp(lw).sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(lw[1], -np.log(500), rtol=1e-12)
    # (beta - 1) * s up to a constant per beta.
    np.testing.assert_allclose(np.diff(lw[0]), -0.9 * np.diff(scores), rtol=1e-9, atol=1e-9)


def test_offsets_give_beta_s_plus_c_and_serve_continuous_beta() -> None:
    rng = np.random.default_rng(4)
    scores = rng.normal(0, 2, size=800)
    offsets = -np.logaddexp(scores, np.log(10.0))  # the contrastive pool's
    w = SNISWeights(scores, offsets=offsets, form="pool", beta_range=(0.1, 2.0))
    lw = w.log_weights([0.3, 1.0])
    for row, beta in zip(lw, (0.3, 1.0), strict=True):
        a = beta * scores + offsets
        np.testing.assert_allclose(row, a - np.log(np.exp(a).sum()), rtol=1e-10, atol=1e-12)
    beta = np.exp(rng.uniform(np.log(0.1), np.log(2.0), size=64))
    index = rng.integers(0, 800, size=64)
    exact = w.log_weights(beta)[np.arange(64), index]
    np.testing.assert_allclose(w.log_weights_fn(beta, index), exact, atol=1e-7)
    # a pair with a non-finite offset is dropped like one with a non-finite score
    offsets[3] = np.nan
    assert SNISWeights(scores, offsets=offsets).n_dropped == 1
    with pytest.raises(ValueError, match="offsets must have the shape"):
        SNISWeights(scores, offsets=offsets[:5])


@pytest.mark.parametrize("method", ["none", "truncate", "psis", "defensive"])
def test_log_weights_fn_matches_exact_weights_at_continuous_beta(method: str) -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(0, 2, size=2000)
    w = SNISWeights(scores, method=method, beta_range=(0.1, 2.0))
    beta = np.exp(rng.uniform(np.log(0.1), np.log(2.0), size=64))
    index = rng.integers(0, 2000, size=64)
    exact = w.log_weights(beta)[np.arange(64), index]
    got = w.log_weights_fn(beta, index)
    # none/defensive: cubic Hermite spline of log Z (error ~h^4/384 * cumulant: < 1e-7).
    # truncate/psis: log-linear interpolation between grid points (257 points, the
    # weights' log changes by at most h * |s| ~ 0.05 between them: error < 1e-2).
    tol = 1e-7 if method in ("none", "defensive") else 1e-2
    np.testing.assert_allclose(got, exact, atol=tol)


def test_stabilizers_report_their_diagnostics() -> None:
    rng = np.random.default_rng(2)
    # Log-normal weights with sigma 2.5: heavy right tail (Pareto k around 0.7-1).
    lw = rng.normal(0.0, 2.5, size=(3, 4000))
    raw_max = np.exp(lw - np.log(np.exp(lw).sum(axis=1, keepdims=True))).max(axis=1)
    t = stabilize(lw, "truncate")
    assert np.all(t.truncated_fraction > 0)
    assert np.all(np.exp(t.log_weights).max(axis=1) < raw_max)
    assert np.all(ess(t.log_weights) > ess(lw))
    p = stabilize(lw, "psis")
    assert np.all(np.isfinite(p.k_hat)) and np.all((p.k_hat > 0.3) & (p.k_hat < 1.5))
    d = stabilize(lw, "defensive", mixing_weight=0.2)
    assert d.mixing_weight == 0.2
    assert np.all(np.exp(d.log_weights) >= 0.2 / 4000 * (1 - 1e-12))
    for s in (t, p, d):
        np.testing.assert_allclose(np.exp(s.log_weights).sum(axis=1), 1.0, rtol=1e-10)
    assert ess(d.log_weights).min() > ess(lw).min()


def test_collapse_warns_and_names_the_betas() -> None:
    scores = np.random.default_rng(3).normal(0, 10, size=1000)
    w = SNISWeights(scores, min_relative_ess=0.05)
    with pytest.warns(ESSCollapseWarning, match=r"beta = 0\.1"):
        diag = w.diagnostics([0.1, 1.0])
    assert diag.relative_ess[1] == pytest.approx(1.0)
    assert np.isnan(diag.k_hat[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w.diagnostics([1.0])


def test_nonfinite_scores_dropped_with_count_or_refused() -> None:
    scores = np.array([0.0, np.nan, 1.0, -np.inf, 2.0])
    w = SNISWeights(scores)
    assert w.n == 3 and w.n_dropped == 2
    np.testing.assert_array_equal(w.kept, [True, False, True, False, True])
    assert w.diagnostics([0.5], warn=False).n_dropped == 2
    with pytest.raises(ValueError, match="2 of 5 scores are not finite"):
        SNISWeights(scores, nonfinite="raise")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"scores": np.zeros((2, 2))}, "1-D"),
        ({"scores": np.array([])}, "1-D"),
        ({"scores": np.array([np.nan])}, "no finite"),
        ({"scores": np.zeros(3), "form": "abc"}, "form"),
        ({"scores": np.zeros(3), "method": "abc"}, "method"),
        ({"scores": np.zeros(3), "beta_range": (0.0, 1.0)}, "beta_range"),
        ({"scores": np.zeros(3), "beta_range": (2.0, 1.0)}, "beta_range"),
        ({"scores": np.zeros(3), "method": "defensive", "mixing_weight": 1.5}, "mixing_weight"),
    ],
)
def test_bad_construction(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SNISWeights(**kwargs)


def test_bad_queries() -> None:
    w = SNISWeights(np.zeros(10))
    with pytest.raises(ValueError, match="> 0"):
        w.log_weights([0.5, 0.0])
    with pytest.raises(ValueError, match="> 0"):
        w.diagnostics(-1.0)
    with pytest.raises(ValueError, match="shaped like beta"):
        w.log_weights_fn(np.array([0.5, 0.6]), np.array([1]))
    with pytest.raises(ValueError, match="index must lie"):
        w.log_weights_fn(np.array([0.5]), np.array([10]))
    with pytest.raises(ValueError, match="beta_range"):
        w.log_weights_fn(np.array([3.0]), np.array([1]))


def test_switched_weights_sum_to_one_on_both_sides_and_check_their_map() -> None:
    rng = np.random.default_rng(5)
    pool_scores = rng.normal(size=30)
    pool_scores[7] = np.nan  # dropped: the map counts kept pairs
    offsets = -np.logaddexp(np.nan_to_num(pool_scores), np.log(2))
    low = SNISWeights(pool_scores, offsets=offsets, form="pool")
    own = np.arange(0, 30, 3)  # pairs 0, 3, ..., 27 are the own-theta rows
    high = SNISWeights(pool_scores[own], form="nre")
    rows = np.flatnonzero(low.kept)
    high_index = np.where(rows % 3 == 0, rows // 3, -1)
    weights = SwitchedWeights(low, high, 0.6, high_index)
    assert weights.n == 29 and weights.n_dropped == 1
    for beta in (0.2, 0.6, 1.4):
        row = weights.log_weights(beta)[0]
        assert np.exp(row).sum() == pytest.approx(1.0)
        expected = (
            low.log_weights(beta)[0]
            if beta < 0.6
            else np.where(high_index >= 0, high.log_weights(beta)[0][high_index], -np.inf)
        )
        np.testing.assert_allclose(row, expected)
    # several temperatures on both sides of the switch in one call, row by row
    betas = np.array([1.4, 0.2, 0.6, 0.59])
    np.testing.assert_allclose(
        weights.log_weights(betas), np.vstack([weights.log_weights(b) for b in betas])
    )
    # per-pair queries are checked against low's pairs on both sides of the switch
    for beta in (0.2, 1.4):
        with pytest.raises(ValueError, match=r"index must lie in \[0, 29\)"):
            weights.log_weights_fn(np.array([beta]), np.array([29]))
        with pytest.raises(ValueError, match="shaped like beta"):
            weights.log_weights_fn(np.array([beta, beta]), np.array([0]))
    with pytest.raises(ValueError, match="exactly once"):
        SwitchedWeights(low, high, 0.6, np.where(high_index == 1, 2, high_index))
    with pytest.raises(ValueError, match="shape"):
        SwitchedWeights(low, high, 0.6, high_index[:-1])
    with pytest.raises(ValueError, match="past high"):
        SwitchedWeights(low, high, 0.6, np.where(high_index == 9, 10, high_index))
    with pytest.raises(ValueError, match="beta_switch"):
        SwitchedWeights(low, high, 0.0, high_index)
