"""Bad input raises a ValueError that says what was expected, never a torch traceback."""

from __future__ import annotations

import numpy as np
import pytest

from gbi_surrogates import (
    NLEConfig,
    NREConfig,
    ScoreConfig,
    TrainConfig,
    fit_nle,
    fit_nre,
    fit_score,
)

FITS = {"nle": fit_nle, "nre": fit_nre, "score": fit_score}
CONFIGS = {"nle": NLEConfig, "nre": NREConfig, "score": ScoreConfig}


def _good() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(5, 2)), rng.normal(size=(5, 2))


@pytest.mark.parametrize(
    ("theta", "x", "match"),
    [
        (np.zeros((5, 3)), np.zeros((5, 2)), r"theta must have shape \(n, 2\)"),
        (np.zeros((5, 2)), np.zeros((5, 1)), r"x must have shape \(n, 2\)"),
        (np.zeros((5, 2, 1)), np.zeros((5, 2)), r"theta must have shape"),
        (np.zeros((5, 2)), np.zeros((4, 2)), r"same number of rows.*got 5 and 4"),
        (np.full((5, 2), np.nan), np.zeros((5, 2)), r"theta must be finite"),
        (np.zeros((5, 2)), np.array([[0.0, np.inf]] * 5), r"x must be finite"),
        (np.zeros((0, 2)), np.zeros((0, 2)), r"at least one row"),
        ("abc", np.zeros((5, 2)), r"theta must be a numeric array"),
    ],
)
def test_evaluation_rejects_bad_arrays(tiny, evaluate_fn, theta, x, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate_fn(tiny, theta, x)


@pytest.mark.parametrize("chunk_size", [0, -3, 2.5, True])
def test_evaluation_rejects_a_bad_chunk_size(tiny, evaluate_fn, chunk_size) -> None:
    theta, x = _good()
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        evaluate_fn(tiny, theta, x, chunk_size=chunk_size)


def test_score_rejects_bad_sigma(tiny_models) -> None:
    model = tiny_models["score"]
    theta, x = _good()
    for sigma in (0.0, -0.5, np.nan, np.inf):
        with pytest.raises(ValueError, match="sigma must be finite and > 0"):
            model.score(theta, x, sigma)
    with pytest.raises(ValueError, match=r"sigma must be a scalar or have shape \(5,\)"):
        model.score(theta, x, np.full(3, 0.5))
    with pytest.raises(ValueError, match="trained noise range"):
        model.score(theta, x, 5.0)
    with pytest.warns(UserWarning, match="extrapolating"):
        out = model.score(theta, x, 5.0, extrapolate=True)
    assert out.shape == (5, 4)
    per_pair = model.score(theta, x, np.full(5, model.sigmas[-1]))
    np.testing.assert_array_equal(per_pair, model.score(theta, x, model.sigmas[-1]))


@pytest.mark.parametrize("kind", sorted(FITS))
@pytest.mark.parametrize(
    ("theta", "x", "match"),
    [
        (np.zeros(5), np.zeros((5, 2)), r"theta must be a 2-D array .* theta\[:, None\]"),
        (np.zeros((5, 2)), np.zeros((6, 2)), r"same number of rows .* got 5 and 6"),
        (np.zeros((1, 2)), np.zeros((1, 2)), r"at least 2 pairs, got 1"),
        (np.array([[np.nan, 0.0]] * 5), np.zeros((5, 2)), r"theta must be finite"),
        (np.zeros((5, 2)), np.array([[0.0, np.nan]] * 5), r"x must be finite"),
    ],
)
def test_training_rejects_bad_arrays(kind: str, theta, x, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FITS[kind](theta, x, None, TrainConfig(max_epochs=1, progress=False))


@pytest.mark.parametrize("kind", sorted(FITS))
def test_training_rejects_configs_of_the_wrong_type(kind: str) -> None:
    theta, x = _good()
    other = "nre" if kind != "nre" else "score"
    with pytest.raises(ValueError, match=r"config must be an? "):
        FITS[kind](theta, x, CONFIGS[other]())
    with pytest.raises(ValueError, match="train_config must be a gbi_npe TrainConfig"):
        FITS[kind](theta, x, None, {"max_epochs": 1})


def test_nle_rejects_x_without_any_varying_column() -> None:
    theta = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match="every column of x is constant"):
        fit_nle(theta, np.ones((10, 3)))


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: NREConfig(hidden_features=0), "hidden_features must be an integer >= 1"),
        (lambda: NREConfig(variant="nre_c"), "variant must be one of"),
        (lambda: NREConfig(num_atoms=1), "num_atoms must be an integer >= 2"),
        (lambda: NREConfig(num_negatives=0), "num_negatives must be an integer >= 1"),
        (lambda: NREConfig(learning_rate_decay=()), "learning_rate_decay must be a non-empty"),
        (lambda: NREConfig(learning_rate_decay=(1.0, 2.0)), r"factors in \(0, 1\]"),
        (lambda: ScoreConfig(sigma_min=0.0), r"sigma_min must lie in \(0.0"),
        (lambda: ScoreConfig(sigma_min=2.0, sigma_max=1.0), "sigma_max must be >= sigma_min"),
        (lambda: ScoreConfig(num_sigmas=1), "num_sigmas=1 needs sigma_min == sigma_max"),
        (lambda: ScoreConfig(sigma_min=0.5, sigma_max=0.5), "needs num_sigmas=1"),
        (lambda: ScoreConfig(head_blocks=1.5), "head_blocks must be an integer"),
        (lambda: NLEConfig(density="flow"), "density must be a gbi_npe SplineFlowConfig"),
        (lambda: NLEConfig(embedding=None), "embedding must be a gbi_npe EmbeddingConfig"),
    ],
)
def test_configs_validate_themselves(make, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("cls", [NREConfig, ScoreConfig, NLEConfig])
def test_configs_round_trip_through_dicts(cls) -> None:
    config = cls()
    assert cls.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown_field"):
        cls.from_dict({**config.to_dict(), "unknown_field": 1})


def test_score_ladder_is_geometric_and_decreasing() -> None:
    sigmas = ScoreConfig(sigma_min=0.01, sigma_max=1.0, num_sigmas=5).sigmas()
    np.testing.assert_allclose(sigmas, [1.0, 10**-0.5, 0.1, 10**-1.5, 0.01])
    assert ScoreConfig(sigma_min=0.3, sigma_max=0.3, num_sigmas=1).sigmas().tolist() == [0.3]
