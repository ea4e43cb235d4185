"""TrainConfig.beta_sampling: training temperatures tilted by the pairs' effective number."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gbi_npe.train as train_module
from gbi_npe import (
    GridBeta,
    LogUniformBeta,
    SplineFlowConfig,
    TiltedBeta,
    TrainConfig,
    fit,
    make_npe,
)
from gbi_npe.loop import _fingerprint
from gbi_npe.train import ESS_TILT_BETAS, ESS_TILT_FLOOR, ess_tilted

SMALL = SplineFlowConfig(num_layers=2, hidden_features=16, num_blocks=1, num_bins=4)


def _log_cdf_table(d: TiltedBeta) -> tuple[np.ndarray, np.ndarray]:
    """(log beta, P(beta below it)) under a tilted log-uniform base, by quadrature."""
    u = np.linspace(np.log(d.low), np.log(d.high), 200_001)
    density = d.density_ratio(np.exp(u))  # the base is uniform in log beta
    mass = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(u))])
    return u, mass / mass[-1]


def _probability_below(d: TiltedBeta, upper: float) -> float:
    u, cdf = _log_cdf_table(d)
    return float(np.interp(np.log(upper), u, cdf))


def test_tilted_beta_draws_the_tilted_density() -> None:
    d = TiltedBeta(LogUniformBeta(0.1, 2.0), (0.1, 1.0, 2.0), (0.1, 1.0, 1.0))
    n = 40_000
    draws = d.sample(n, np.random.default_rng(0))
    assert draws.shape == (n,) and draws.min() >= 0.1 and draws.max() <= 2.0
    # chi-square over 10 equal-probability bins; 27.88 is the 0.999 quantile for 9
    # degrees of freedom
    u, cdf = _log_cdf_table(d)
    edges = np.exp(np.interp(np.arange(11) / 10, cdf, u))
    counts = np.histogram(draws, bins=edges)[0]
    chi2 = float(np.sum((counts - n / 10) ** 2 / (n / 10)))
    assert chi2 < 27.88, (counts, chi2)
    # the quadrature against the closed form: in u = log beta the tilt rises
    # linearly from 0.1 at log 0.1 to 1 at 0, then stays 1 up to log 2, so
    # P(beta < 0.3) = (log 3 (0.1 + t(log 0.3)) / 2) / (log 10 * 0.55 + log 2)
    t = 0.1 + 0.9 * np.log(3.0) / np.log(10.0)
    closed = np.log(3.0) * (0.1 + t) / 2 / (np.log(10.0) * 0.55 + np.log(2.0))
    assert _probability_below(d, 0.3) == pytest.approx(closed, rel=1e-6)
    assert closed < 0.18  # against 0.367 under the base


def test_tilted_beta_keeps_the_base_range_and_validation_grid() -> None:
    base = LogUniformBeta(0.1, 2.0)
    d = TiltedBeta(base, (0.5,), (1.0,))  # a constant tilt: the base itself
    assert (d.low, d.high) == (0.1, 2.0)
    np.testing.assert_array_equal(d.validation_grid(8), base.validation_grid(8))
    np.testing.assert_array_equal(d.density_ratio(np.array([0.1, 1.0, 2.0])), 1.0)
    grid = TiltedBeta(GridBeta((0.5, 1.0)), (0.5, 1.0), (0.0, 1.0))
    assert set(grid.sample(50, np.random.default_rng(1)).tolist()) == {1.0}


@pytest.mark.parametrize(
    ("grid", "tilt", "match"),
    [
        ((1.0, 0.5), (1.0, 1.0), "increasing"),
        ((0.5, 1.0), (1.0,), "same length"),
        ((0.5, 1.0), (-1.0, 1.0), ">= 0"),
        ((0.5, 1.0), (0.0, 0.0), "not all 0"),
        ((0.0, 1.0), (1.0, 1.0), "> 0"),
    ],
)
def test_tilted_beta_refuses_bad_tables(grid, tilt, match) -> None:
    with pytest.raises(ValueError, match=match):
        TiltedBeta(LogUniformBeta(0.1, 2.0), grid, tilt)


def test_a_tilt_that_is_zero_wherever_the_base_draws_is_an_error() -> None:
    d = TiltedBeta(GridBeta((0.5,)), (0.5, 1.0), (0.0, 1.0))
    with pytest.raises(ValueError, match="the tilt is zero"):
        d.sample(10, np.random.default_rng(0))


def _log_weights_fn(s: np.ndarray):
    """SNIS weights ``w ∝ exp((beta - 1) s_i)``, normalized over all pairs per beta."""
    calls = []

    def fn(beta: np.ndarray, index: np.ndarray) -> np.ndarray:
        calls.append(beta.copy())
        table = (beta[:, None] - 1.0) * s[None, :]
        top = table.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(table - top).sum(axis=1))
        return table[np.arange(beta.size), index] - log_norm

    return fn, calls


def test_the_tilt_is_the_kish_ess_of_the_training_pairs() -> None:
    s = np.random.default_rng(0).normal(size=500) * 3.0
    fn, _ = _log_weights_fn(s)
    base = LogUniformBeta(0.1, 2.0)
    index = np.arange(0, 500, 2)  # the pairs a training uses
    d = ess_tilted(base, fn, index)
    grid = base.validation_grid(ESS_TILT_BETAS)
    np.testing.assert_allclose(d.grid, grid)
    ess = []
    for b in grid:
        w = np.exp((b - 1.0) * s[index])
        ess.append(w.sum() ** 2 / np.sum(w**2))
    ess = np.array(ess)
    np.testing.assert_allclose(d.tilt, ESS_TILT_FLOOR + (1 - ESS_TILT_FLOOR) * ess / ess.max())
    assert ess.argmax() == np.abs(np.log(grid)).argmin()  # equal weights at beta = 1
    assert min(d.tilt) < 0.2  # these weights do collapse at small beta


def test_the_tilt_counts_at_most_cap_effective_pairs(monkeypatch) -> None:
    s = np.random.default_rng(0).normal(size=500) * 3.0
    fn, _ = _log_weights_fn(s)
    base = LogUniformBeta(0.1, 2.0)
    index = np.arange(500)
    free, capped = ess_tilted(base, fn, index), ess_tilted(base, fn, index, cap=100.0)
    grid = base.validation_grid(ESS_TILT_BETAS)
    ess = np.array([(w.sum() ** 2 / np.sum(w**2)) for w in np.exp(np.outer(grid - 1.0, s))])
    assert ess.max() > 300 and ess.min() < 100  # the cap bites somewhere, not everywhere
    np.testing.assert_allclose(
        capped.tilt, ESS_TILT_FLOOR + (1 - ESS_TILT_FLOOR) * np.minimum(ess, 100.0) / 100.0
    )
    assert capped.tilt != free.tilt
    # fit caps at the number of distinct groups among its training pairs
    seen = []
    real = train_module.ess_tilted
    monkeypatch.setattr(
        train_module,
        "ess_tilted",
        lambda d, f, i, cap=None: seen.append((i, cap)) or real(d, f, i, cap),
    )
    rng = np.random.default_rng(1)
    theta = rng.uniform(-2.0, 2.0, (500, 2))
    x = theta + 0.3 * rng.normal(size=(500, 2))
    groups = np.repeat(np.arange(100), 5)  # 100 x with 5 pairs each
    npe = make_npe(2, 2, density=SMALL, low=[-2.0, -2.0], high=[2.0, 2.0], seed=0)
    config = TrainConfig(max_epochs=1, batch_size=100, progress=False, beta_sampling="ess")
    fit(npe, theta, x, base, log_weights_fn=fn, config=config, groups=groups)
    fit(npe, theta, x, base, log_weights_fn=fn, config=config)
    (train_index, cap), (_, no_cap) = seen
    assert cap == np.unique(groups[train_index]).size < 100  # the held-out groups left out
    assert no_cap is None


@pytest.mark.parametrize("sampling", ["distribution", "ess"])
def test_fit_draws_its_training_betas_as_configured(monkeypatch, sampling) -> None:
    rng = np.random.default_rng(3)
    n = 600
    theta = rng.uniform(-2.0, 2.0, (n, 2))
    x = theta + 0.3 * rng.normal(size=(n, 2))
    s = -0.5 * np.sum(((x - theta) / 0.3) ** 2, axis=1) * 4.0  # a sharp log-likelihood
    fn, calls = _log_weights_fn(s)
    built = []
    real = train_module.ContinuousBetaNLL

    def spy(*args, **kwargs):
        objective = real(*args, **kwargs)
        built.append(objective)
        return objective

    monkeypatch.setattr(train_module, "ContinuousBetaNLL", spy)
    base = LogUniformBeta(0.1, 2.0)
    npe = make_npe(2, 2, density=SMALL, low=[-2.0, -2.0], high=[2.0, 2.0], seed=0)
    config = TrainConfig(max_epochs=4, batch_size=60, progress=False, beta_sampling=sampling)
    fit(npe, theta, x, base, log_weights_fn=fn, config=config)
    (objective,) = built
    drawn = np.concatenate([b for b in calls if b.size > 1 and np.ptp(b) > 0])
    if sampling == "distribution":
        assert objective.distribution is base
        expected = np.log(0.3 / 0.1) / np.log(2.0 / 0.1)
    else:
        assert isinstance(objective.distribution, TiltedBeta)
        assert objective.distribution.base is base
        again = ess_tilted(base, fn, objective.train_index)
        assert objective.distribution.tilt == again.tilt
        expected = _probability_below(objective.distribution, 0.3)
        assert expected < 0.2  # the tilt moves draws away from small beta
    # the share of training draws below 0.3 matches, within 4 binomial standard errors
    se = np.sqrt(expected * (1 - expected) / drawn.size)
    assert abs(np.mean(drawn < 0.3) - expected) < 4 * se, (np.mean(drawn < 0.3), expected)


def test_beta_sampling_is_validated_and_its_default_leaves_old_snapshots_valid() -> None:
    with pytest.raises(ValueError, match="beta_sampling must be one of"):
        TrainConfig(beta_sampling="uniform")
    npe = make_npe(2, 2, density=SMALL, low=[-2.0, -2.0], high=[2.0, 2.0], seed=0)
    default = json.loads(_fingerprint(npe, TrainConfig(), "data")["settings"])
    assert "beta_sampling" not in default  # as written before the setting existed
    tilted = json.loads(_fingerprint(npe, TrainConfig(beta_sampling="ess"), "data")["settings"])
    assert tilted["beta_sampling"] == "ess"
