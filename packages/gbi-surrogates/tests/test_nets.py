"""The networks follow paper App. A.1: residual MLPs with LayerNorm, three embeddings."""

from __future__ import annotations

import torch
from torch import nn

from gbi_surrogates import NREConfig, ScoreConfig
from gbi_surrogates._nets import ResidualBlock, ResidualMLP
from gbi_surrogates.nre import RatioNetwork
from gbi_surrogates.score import ScoreNetwork


def _count(module: nn.Module, kind: type) -> int:
    return sum(isinstance(m, kind) for m in module.modules())


def test_score_network_embeds_theta_x_and_log_sigma_with_layer_norm() -> None:
    config = ScoreConfig(hidden_features=16, num_blocks=3, embedding_features=8, head_blocks=2)
    net = ScoreNetwork(2, 5, config)
    for embedding in (net.theta_embedding, net.x_embedding):
        assert isinstance(embedding, ResidualMLP)
        assert _count(embedding, ResidualBlock) == 3 and _count(embedding, nn.LayerNorm) == 3
    assert _count(net.sigma_embedding, nn.Linear) == 2
    assert _count(net.sigma_embedding, nn.LayerNorm) == 1
    assert net.head.input.in_features == 3 * 8 and net.head.output.out_features == 7
    out = net(torch.zeros(4, 2, dtype=torch.float64), torch.zeros(4, 5), torch.full((4,), 0.3))
    assert out.shape == (4, 7) and out.dtype == torch.float64


def test_ratio_network_is_a_residual_mlp_with_one_logit() -> None:
    net = RatioNetwork(3, 4, NREConfig(hidden_features=8, num_blocks=2))
    assert _count(net.classifier, ResidualBlock) == 2
    assert _count(net.classifier, nn.LayerNorm) == 2
    logits = net(torch.zeros(6, 3, dtype=torch.float64), torch.zeros(6, 4, dtype=torch.float64))
    assert logits.shape == (6,)


def test_every_parameter_gets_a_gradient() -> None:
    net = ScoreNetwork(
        2, 3, ScoreConfig(hidden_features=8, num_blocks=1, embedding_features=4, head_blocks=1)
    )
    sigma = torch.full((5, 1), 0.5)
    net.standardized_score(torch.randn(5, 2), torch.randn(5, 3), sigma).square().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
