"""The coupling layers against normflows' wrapper, whose layout saved flows carry."""

from __future__ import annotations

import normflows as nf
import pytest
import torch

from gbi_npe import SplineFlowConfig
from gbi_npe.flows import SplineFlow


@pytest.mark.parametrize("features", [2, 3, 5])
def test_with_the_unconditional_transform_it_is_normflows_coupling_flow(features):
    """Flows saved before the setting existed were stacks of normflows'
    ``CoupledRationalQuadraticSpline``: the same parameter names and shapes, and
    with their weights the same log-density and the same map of the noise."""
    config = SplineFlowConfig(
        num_layers=3, hidden_features=8, num_blocks=1, num_bins=4, unconditional_transform=True
    )
    context_features = 2
    ours = SplineFlow(features, context_features, config)
    theirs = torch.nn.ModuleList(
        nf.flows.CoupledRationalQuadraticSpline(
            features,
            config.num_blocks,
            config.hidden_features,
            num_context_channels=context_features,
            num_bins=config.num_bins,
            tail_bound=config.tail_bound,
            reverse_mask=bool(i % 2),
        )
        for i in range(config.num_layers)
    )
    generator = torch.Generator().manual_seed(features)
    with torch.no_grad():  # away from the identity they start at
        for parameter in theirs.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    state = theirs.state_dict()  # the masks' index buffers too
    ours.layers.load_state_dict(state)  # strict: the same names and shapes
    for name, value in ours.layers.state_dict().items():
        assert torch.equal(value, state[name]), name

    y = torch.randn(7, features, generator=generator)
    h = torch.randn(7, context_features, generator=generator)
    z, total = y, torch.zeros(7)
    for layer in reversed(theirs):
        z, log_det = layer.inverse(z, h)
        total = total + log_det
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1) + total
    with torch.no_grad():
        torch.testing.assert_close(ours.log_prob(y, h), expected)
        noise = torch.randn(7, 1, features, generator=generator)
        mapped, _ = ours.sample_from_noise(noise, h)
        z = noise[:, 0]
        for layer in theirs:
            z, _ = layer(z, h)
        torch.testing.assert_close(mapped[:, 0], z)


def test_without_it_every_feature_is_still_transformed_given_the_context():
    """The default flow: no unconditional splines, yet each feature's density
    depends on the context (the alternating masks reach every feature)."""
    flow = SplineFlow(2, 1, SplineFlowConfig(num_layers=2, hidden_features=8, num_blocks=1))
    assert not any("unconditional_transform" in name for name, _ in flow.named_parameters())
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(0.5 * torch.randn(parameter.shape, generator=generator))
    moved = torch.zeros(2, dtype=torch.bool)
    for layer in flow.layers:
        jac = torch.autograd.functional.jacobian(
            lambda h, layer=layer: layer.inverse(torch.ones(1, 2), h)[0], torch.zeros(1, 1)
        )  # (1, 2, 1, 1): each output feature against the context
        moved |= jac.reshape(2).abs() > 0
    assert moved.all()
