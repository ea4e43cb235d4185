"""The coupling layers' conditioner against normflows' ResidualNet (saved flows use its layout)."""

from __future__ import annotations

import pytest
import torch
from normflows.nets.resnet import ResidualNet as NormflowsResidualNet

from gbi_npe.resnet import ResidualNet


def _pair(in_features, blocks, dropout, seed=4):
    torch.manual_seed(seed)
    theirs = NormflowsResidualNet(
        in_features,
        7,
        hidden_features=16,
        context_features=5,
        num_blocks=blocks,
        activation=torch.nn.ReLU(),
        dropout_probability=dropout,
    )
    torch.manual_seed(seed)
    ours = ResidualNet(in_features, 7, 5, hidden_features=16, num_blocks=blocks, dropout=dropout)
    return theirs, ours


@pytest.mark.parametrize("in_features", [0, 1, 3])
@pytest.mark.parametrize("blocks", [1, 2])
def test_it_is_normflows_residual_net_from_the_same_seed(in_features, blocks):
    """The same parameter names and, from one seed, the same initial weights
    (the same random draws in the same order), and the same function of
    inputs and context, in training mode with gradients too."""
    theirs, ours = _pair(in_features, blocks, dropout=0.0)
    theirs_state, ours_state = theirs.state_dict(), ours.state_dict()
    assert list(theirs_state) == list(ours_state)
    for name, value in theirs_state.items():
        assert torch.equal(value, ours_state[name]), name
    generator = torch.Generator().manual_seed(in_features + 10 * blocks)
    with torch.no_grad():  # move the last layers off their near-zero start
        for parameter in list(theirs.parameters()):
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    ours.load_state_dict(theirs.state_dict())
    inputs = torch.randn(300, in_features, generator=generator)
    context = torch.randn(300, 5, generator=generator)
    expected = theirs(inputs, context)
    got = ours(inputs, context)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    expected.square().sum().backward()
    got.square().sum().backward()
    for (name, theirs_p), ours_p in zip(theirs.named_parameters(), ours.parameters(), strict=True):
        torch.testing.assert_close(ours_p.grad, theirs_p.grad, atol=1e-4, rtol=1e-4, msg=name)


def test_dropout_acts_inside_the_blocks_in_training_mode_only():
    theirs, ours = _pair(2, 2, dropout=0.5)
    inputs, context = torch.randn(200, 2), torch.randn(200, 5)
    ours.eval()
    theirs.eval()
    torch.testing.assert_close(ours(inputs, context), theirs(inputs, context))
    ours.train()
    torch.manual_seed(0)
    first = ours(inputs, context)
    torch.manual_seed(1)
    assert not torch.equal(first, ours(inputs, context))
