"""The NRE's x embedding: the loss reuses embeddings exactly, files round-trip, bad configs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from gbi_npe import EmbeddingConfig, TrainConfig
from gbi_surrogates import NRE, NREConfig, fit_nre
from gbi_surrogates.nre import RatioNetwork, _RatioLoss

GRID, OFFSETS, CYCLIC = (6, 3), ((0, -1), (0, 0), (0, 1), (1, 0)), (False, True)
STENCIL = EmbeddingConfig(
    kind="stencil", grid=GRID, offsets=OFFSETS, cyclic=CYCLIC, hidden_features=8, output_features=4
)


def _walks(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """theta = (drift, log noise); x a random walk of 6 states of 3 sites, flattened (n, 18)."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-1, 1, size=(n, 2))
    steps = theta[:, :1, None] + np.exp(theta[:, 1:, None]) * rng.standard_normal((n, *GRID))
    return theta, np.cumsum(steps, axis=1).reshape(n, -1)


@pytest.mark.parametrize("variant", ["nre_a", "nre_b"])
def test_loss_with_shared_embeddings_equals_the_pairwise_loss(variant: str) -> None:
    torch.manual_seed(0)
    config = NREConfig(hidden_features=16, num_blocks=1, variant=variant, embedding=STENCIL)
    network = RatioNetwork(2, 18, config)
    u_theta, u_x = torch.randn(40, 2), torch.randn(40, 18)
    objective = _RatioLoss(network, u_theta, u_x, config)
    index = np.arange(8, 20)
    negatives = objective.draw_negatives(index, np.random.default_rng(1))
    got = objective.loss(index, negatives)
    # the same loss, every pair through the whole network on its own
    theta, x = u_theta[index], u_x[index]
    positive = network.logit_standardized(theta, x)
    k = negatives.shape[1]
    flat = torch.as_tensor(negatives.reshape(-1))
    if variant == "nre_a":
        negative = network.logit_standardized(theta.repeat_interleave(k, 0), u_x[flat])
        expected = F.softplus(-positive).mean() + F.softplus(negative).mean()
    else:
        contrast = network.logit_standardized(u_theta[flat], x.repeat_interleave(k, 0))
        logits = torch.cat([positive[:, None], contrast.reshape(-1, k)], dim=1)
        expected = -torch.log_softmax(logits, dim=1)[:, 0].mean()
    torch.testing.assert_close(got, expected)


def test_stencil_nre_trains_saves_and_loads(tmp_path) -> None:
    theta, x = _walks(400, 0)
    config = NREConfig(hidden_features=16, num_blocks=1, embedding=STENCIL)
    nre, _ = fit_nre(theta, x, config, TrainConfig(max_epochs=2, batch_size=64, seed=0))
    x_standardize = nre.network.standardize.x
    assert torch.all(x_standardize.shift == x_standardize.shift[0])
    assert torch.all(x_standardize.scale == x_standardize.scale[0])
    path = nre.save(tmp_path / "nre.safetensors")
    loaded = NRE.load(path)
    assert loaded.config == config
    np.testing.assert_array_equal(
        loaded.log_ratio(theta[:20], x[:20]), nre.log_ratio(theta[:20], x[:20])
    )


def test_config_round_trips_and_old_headers_still_read() -> None:
    config = NREConfig(embedding=STENCIL)
    assert NREConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    old = NREConfig().to_dict()
    old.pop("embedding")  # files written before NREs had embeddings
    assert NREConfig.from_dict(old).embedding == EmbeddingConfig()


def test_a_user_module_cannot_be_an_nre_embedding() -> None:
    with pytest.raises(ValueError, match="kind 'identity', 'mlp' or 'stencil'"):
        NREConfig(embedding=EmbeddingConfig(kind="custom", output_features=3))
    with pytest.raises(ValueError, match="EmbeddingConfig"):
        NREConfig(embedding="stencil")
