"""Figure functions that take plain arrays: they draw, skip failed rows and check shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gbi.figures import plot_predictive_statistics

NAMES = ("spike_count", "rest_mean", "stim_var")
BETAS = (0.1, 0.5, 1.0, 2.0)


def _predictive(m: int, k: int = 40, seed: int = 0) -> np.ndarray:
    """Fake predictive statistics (m, B, K, d): spread shrinks as beta grows."""
    rng = np.random.default_rng(seed)
    scale = 1.0 / np.sqrt(np.asarray(BETAS))[None, :, None, None]
    return rng.normal(size=(m, len(BETAS), k, len(NAMES))) * scale


def test_predictive_statistics_draws_and_skips_failed_rows(tmp_path: Path) -> None:
    x_pred = _predictive(2)
    x_pred[0, 1, :5] = np.nan  # failed simulations: left out of the band
    x_pred[1, 2, :, 1] = np.inf  # a beta with no finite row: a gap, not an error
    path = plot_predictive_statistics(
        x_pred,
        np.zeros((2, len(NAMES))),
        BETAS,
        tmp_path / "stats.png",
        x_names=NAMES,
        observation_labels=("cell a", "cell b"),
        title="fake",
    )
    assert path == tmp_path / "stats.png"
    assert path.stat().st_size > 10_000


def test_predictive_statistics_accepts_one_observation(tmp_path: Path) -> None:
    path = plot_predictive_statistics(
        _predictive(1)[0], np.zeros(len(NAMES)), BETAS, tmp_path / "one.png", x_names=NAMES
    )
    assert path.stat().st_size > 5_000


@pytest.mark.parametrize(
    ("x_obs_shape", "betas", "kwargs", "match"),
    [
        ((3, 3), BETAS, {}, r"x_obs must have shape \(m, d\) = \(2, 3\)"),
        ((2, 3), BETAS[:2], {}, "betas must be 4 values"),
        ((2, 3), (0.0, 0.5, 1.0, 2.0), {}, "betas must be 4 values > 0"),
        ((2, 3), BETAS, {"x_names": ("a",)}, "x_names must name the 3 statistics"),
        ((2, 3), BETAS, {"observation_labels": ("a",)}, "observation_labels must have 2"),
        ((2, 3), BETAS, {"quantiles": (0.9, 0.1)}, "quantiles must satisfy"),
        ((3,), BETAS, {}, r"x_predictive must have shape \(m, B, K, d\)"),
    ],
)
def test_predictive_statistics_bad_arguments(
    tmp_path: Path, x_obs_shape: tuple[int, ...], betas: tuple, kwargs: dict, match: str
) -> None:
    options = {"x_names": NAMES, **kwargs}
    with pytest.raises(ValueError, match=match):
        plot_predictive_statistics(
            _predictive(2), np.zeros(x_obs_shape), betas, tmp_path / "bad.png", **options
        )
