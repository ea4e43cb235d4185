"""Configurations validate themselves and survive a JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from gbi_npe import (
    EmbeddingConfig,
    EstimatorSpec,
    GridBeta,
    LogUniformBeta,
    MDNConfig,
    SplineFlowConfig,
    TrainConfig,
)
from gbi_npe.config import density_config_from_dict


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: SplineFlowConfig(kind="maf"), "kind must be one of"),
        (lambda: SplineFlowConfig(num_layers=0), "num_layers must be an integer >= 1"),
        (lambda: SplineFlowConfig(num_bins=1), "num_bins must be an integer >= 2"),
        (lambda: SplineFlowConfig(tail_bound=0.0), "tail_bound must lie in"),
        (lambda: SplineFlowConfig(hidden_features=3.5), "hidden_features must be an integer"),
        (lambda: SplineFlowConfig(dropout=1.0), "dropout must lie in"),
        (lambda: SplineFlowConfig(unconditional_transform=1), "must be a bool"),
        (
            lambda: SplineFlowConfig(kind="autoregressive", unconditional_transform=True),
            "coupling layers only",
        ),
        (lambda: MDNConfig(num_components=0), "num_components must be an integer >= 1"),
        (lambda: MDNConfig(min_scale=0.0), "min_scale must lie in"),
        (lambda: EmbeddingConfig(kind="cnn"), "kind must be one of"),
        (lambda: TrainConfig(batch_size=0), "batch_size must be an integer >= 1"),
        (lambda: TrainConfig(learning_rate=-1e-3), "learning_rate must lie in"),
        (lambda: TrainConfig(learning_rate=float("nan")), "learning_rate must be a finite"),
        (lambda: TrainConfig(validation_fraction=0.95), "validation_fraction must lie in"),
        (lambda: TrainConfig(device="tpu"), "device must be 'auto'"),
        (lambda: TrainConfig(patience=0), "patience must be an integer >= 1"),
        (lambda: TrainConfig(clip_grad_norm=0.0), "clip_grad_norm must lie in"),
        (lambda: TrainConfig(progress="yes"), "progress must be a bool"),
        (lambda: TrainConfig(max_epochs=True), "max_epochs must be an integer"),
        (lambda: LogUniformBeta(0.0, 1.0), "0 < low <= high"),
        (lambda: LogUniformBeta(2.0, 1.0), "0 < low <= high"),
        (lambda: GridBeta(()), "non-empty set"),
        (lambda: GridBeta((0.5, -1.0)), "finite betas > 0"),
        (lambda: EstimatorSpec(0, 3), "inputs_features must be an integer >= 1"),
        (lambda: EstimatorSpec(2, 1, beta_features=("log_beta",)), "context_features"),
        (lambda: EstimatorSpec(2, 3, beta_features=("beta2",)), "beta_features must be"),
        (lambda: EstimatorSpec(2, 3, low=(0.0, 0.0)), "low and high must be given together"),
        (lambda: EstimatorSpec(2, 3, low=(0.0,), high=(1.0,)), "must have 2 entries"),
        (lambda: EstimatorSpec(2, 3, low=(0.0, 1.0), high=(1.0, 1.0)), "finite low < high"),
    ],
)
def test_invalid_configurations_are_refused(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_configs_are_frozen():
    config = TrainConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "spec",
    [
        EstimatorSpec(2, 4, SplineFlowConfig(kind="autoregressive"), beta_features=("log_beta",)),
        EstimatorSpec(
            3,
            5,
            MDNConfig(num_components=4),
            EmbeddingConfig(kind="mlp", output_features=7),
            ("log_beta", "beta", "inv_beta"),
            (0.0, -1.0, 1e-4),
            (1.0, 1.0, 0.15),
        ),
        EstimatorSpec(7, 2),
    ],
)
def test_spec_json_round_trip(spec):
    data = json.loads(json.dumps(spec.to_dict()))
    assert EstimatorSpec.from_dict(data) == spec


def test_spec_from_dict_rejects_garbage():
    data = EstimatorSpec(2, 3).to_dict()
    data["density"] = {"type": "glow"}
    with pytest.raises(ValueError, match="unknown density type"):
        EstimatorSpec.from_dict(data)
    data = EstimatorSpec(2, 3).to_dict()
    data["embedding"]["depth"] = 3
    with pytest.raises(ValueError, match="unknown EmbeddingConfig fields"):
        EstimatorSpec.from_dict(data)
    with pytest.raises(ValueError, match="malformed estimator spec"):
        EstimatorSpec.from_dict({"inputs_features": 2})


def test_spline_configs_written_before_the_unconditional_transform_setting():
    """Older files name no ``unconditional_transform``: their coupling flows had
    normflows' transform, their autoregressive flows none."""
    for kind, expected in (("coupling", True), ("autoregressive", False)):
        old = SplineFlowConfig(kind=kind).to_dict()
        del old["unconditional_transform"]
        assert density_config_from_dict(old).unconditional_transform is expected
    assert density_config_from_dict(SplineFlowConfig().to_dict()) == SplineFlowConfig()


def test_beta_distributions():
    import numpy as np

    rng = np.random.default_rng(0)
    log_uniform = LogUniformBeta(0.1, 2.0)
    draws = log_uniform.sample(20000, rng)
    assert draws.min() >= 0.1 and draws.max() <= 2.0
    # log beta is uniform: its mean is the midpoint of the log range.
    assert abs(np.log(draws).mean() - 0.5 * np.log(0.2)) < 0.03
    np.testing.assert_allclose(log_uniform.validation_grid(3), [0.1, np.sqrt(0.2), 2.0])
    grid = GridBeta((1.0, 0.5, 2.0, 0.5))
    assert grid.values == (0.5, 1.0, 2.0) and (grid.low, grid.high) == (0.5, 2.0)
    assert set(np.unique(grid.sample(100, rng))) == {0.5, 1.0, 2.0}
    assert GridBeta(tuple(np.linspace(0.1, 2, 20))).validation_grid(4).size == 4
