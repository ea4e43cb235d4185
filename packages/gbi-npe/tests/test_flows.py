"""Coupling layers and their spline against normflows' layers (saved flows carry that layout)."""

from __future__ import annotations

import normflows as nf
import pytest
import torch
from normflows.flows.neural_spline.coupling import PiecewiseRationalQuadraticCoupling

from gbi_npe import SplineFlowConfig
from gbi_npe.flows import SplineFlow, _AutoregressiveSpline, _conditioner, _Coupling
from gbi_npe.splines import packed_rational_quadratic_spline, rational_quadratic_spline


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


def _perturb(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Move every weight off its initial value (an identity-initialized layer
    would hide differences in the spline)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))


def _assert_same_map(theirs, ours, y: torch.Tensor, h: torch.Tensor) -> None:
    """The same map and log-determinants both ways (normflows' layers work in place)."""
    with torch.no_grad():
        for direction in ("forward", "inverse"):
            expected = getattr(theirs, direction)(y.clone(), h)
            got = getattr(ours, direction)(y, h)
            # float32; the inverse solves a quadratic, a few ulps more
            torch.testing.assert_close(got[0], expected[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(got[1], expected[1], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("features", [1, 2, 3, 5])
def test_the_mask_free_coupling_is_normflows_coupling_without_the_transform(features):
    """``_Coupling`` (no boolean masks) loads the weights of normflows'
    ``PiecewiseRationalQuadraticCoupling`` without the unconditional transform,
    strictly, and computes the same map, inverse and log-determinants, inside
    and outside the tail bound (the files saved before it carry that layout)."""
    config = SplineFlowConfig(hidden_features=16, num_blocks=1, num_bins=6, tail_bound=2.0)
    mask = torch.ones(1) if features == 1 else (torch.arange(features) % 2).to(torch.uint8)
    theirs = PiecewiseRationalQuadraticCoupling(
        mask=mask,
        transform_net_create_fn=_conditioner(config, 3),
        num_bins=config.num_bins,
        tails="linear",
        tail_bound=config.tail_bound,
    )
    generator = torch.Generator().manual_seed(10 + features)
    _perturb(theirs, generator)
    ours = _Coupling(config, 3, mask)
    ours.load_state_dict(theirs.state_dict())  # strict: the same names and shapes
    y = 1.5 * torch.randn(500, features, generator=generator)  # ~18 % beyond the bound
    h = torch.randn(500, 3, generator=generator)
    assert (y.abs() > config.tail_bound).any() and (y.abs() < config.tail_bound).any()
    _assert_same_map(theirs, ours, y, h)


@pytest.mark.parametrize("features", [2, 3])
def test_the_autoregressive_layer_is_normflows_autoregressive_spline(features):
    """``_AutoregressiveSpline`` (normflows' MADE, the mask-free spline) builds
    the same weights from a seed as normflows' ``AutoregressiveRationalQuadraticSpline``
    (so a seed trains the same network as before), loads its weights strictly
    (saved autoregressive flows), and computes the same map both ways."""
    config = SplineFlowConfig(
        kind="autoregressive", hidden_features=16, num_blocks=1, num_bins=6, tail_bound=2.0
    )
    torch.manual_seed(3)
    theirs = nf.flows.AutoregressiveRationalQuadraticSpline(
        features, 1, 16, num_context_channels=3, num_bins=6, tail_bound=2.0
    )
    torch.manual_seed(3)
    ours = _AutoregressiveSpline(features, 3, config)
    for (name, a), (other, b) in zip(
        theirs.state_dict().items(), ours.state_dict().items(), strict=True
    ):
        assert name == other and torch.equal(a, b)
    generator = torch.Generator().manual_seed(20 + features)
    _perturb(theirs, generator)
    ours.load_state_dict(theirs.state_dict())
    y = 1.5 * torch.randn(400, features, generator=generator)
    h = torch.randn(400, 3, generator=generator)
    assert (y.abs() > config.tail_bound).any()
    _assert_same_map(theirs, ours, y, h)


def _random_logits(shape, bins, generator, scale=2.0):
    draw = lambda k: scale * torch.randn(*shape, k, generator=generator, dtype=torch.float64)  # noqa: E731
    return draw(bins), draw(bins), draw(bins - 1)


def test_the_spline_inverts_and_its_log_det_is_the_derivative():
    generator = torch.Generator().manual_seed(3)
    widths, heights, derivatives = _random_logits((400,), 7, generator)
    x = 4.0 * torch.rand(400, generator=generator, dtype=torch.float64) - 2.0  # [-2, 2)
    x = torch.cat([x, torch.tensor([-1.5, 1.5])])  # the box's edges exactly
    widths, heights, derivatives = (torch.cat([t, t[:2]]) for t in (widths, heights, derivatives))
    x.requires_grad_(True)
    y, log_det = rational_quadratic_spline(x, widths, heights, derivatives, bound=1.5)
    (slope,) = torch.autograd.grad(y.sum(), x)  # elementwise: the diagonal Jacobian
    inside = x.abs() <= 1.5
    torch.testing.assert_close(log_det, torch.log(slope))
    assert torch.equal(y[~inside], x[~inside]) and (log_det[~inside] == 0).all()
    assert (y[inside].abs() <= 1.5 + 1e-12).all()
    back, log_det_back = rational_quadratic_spline(
        y.detach(), widths, heights, derivatives, bound=1.5, inverse=True
    )
    torch.testing.assert_close(back, x.detach(), atol=1e-9, rtol=0)
    torch.testing.assert_close(log_det_back, -log_det.detach(), atol=1e-8, rtol=0)
    # monotone: sorting x sorts y (for one set of knots)
    grid = torch.linspace(-3.0, 3.0, 601, dtype=torch.float64)
    same = tuple(t[:1].expand(601, -1) for t in (widths, heights, derivatives))
    out, _ = rational_quadratic_spline(grid, *same, bound=1.5)
    assert (out.diff() > 0).all()


def test_the_spline_passes_finite_gradients_from_beyond_the_box():
    """Inputs outside the box meet the spline only through torch.where; the
    clamped branch keeps every gradient finite (a NaN there would reach the
    network's weights even though the branch is not selected)."""
    generator = torch.Generator().manual_seed(4)
    logits = [t.float().requires_grad_(True) for t in _random_logits((6,), 5, generator, scale=5.0)]
    x = torch.tensor([-1e30, -3.0, -1.0, 0.0, 1.0, 1e30])  # float32, as the networks run
    for inverse in (False, True):
        y, log_det = rational_quadratic_spline(x, *logits, bound=2.0, inverse=inverse)
        grads = torch.autograd.grad((y + log_det).sum(), logits)
        assert all(torch.isfinite(g).all() for g in grads)
        assert all((g[[0, 5]] == 0).all() for g in grads)  # the identity beyond the box


def test_the_spline_refuses_mismatched_logits():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match=r"K widths, K heights and K - 1 derivatives"):
        rational_quadratic_spline(
            x, torch.zeros(3, 4), torch.zeros(3, 4), torch.zeros(3, 4), bound=1.0
        )
    with pytest.raises(ValueError, match=r"bins cannot all be"):
        rational_quadratic_spline(
            x, torch.zeros(3, 1001), torch.zeros(3, 1001), torch.zeros(3, 1000), bound=1.0
        )


@pytest.mark.parametrize("inverse", [False, True])
def test_the_packed_spline_is_the_spline_on_the_split_scaled_logits(inverse):
    """What the flows call: one (..., 3K - 1) conditioner output per element,
    width and height logits scaled; batched over two leading axes."""
    generator = torch.Generator().manual_seed(5)
    params = 3.0 * torch.randn(50, 7, 3 * 6 - 1, generator=generator, dtype=torch.float64)
    x = 5.0 * torch.rand(50, 7, generator=generator, dtype=torch.float64) - 2.5
    out, log_det = packed_rational_quadratic_spline(
        x, params, num_bins=6, bound=2.0, inverse=inverse, logit_scale=0.3
    )
    split = (0.3 * params[..., :6], 0.3 * params[..., 6:12], params[..., 12:])
    want, want_log_det = rational_quadratic_spline(x, *split, bound=2.0, inverse=inverse)
    torch.testing.assert_close(out, want, atol=1e-12, rtol=0)
    torch.testing.assert_close(log_det, want_log_det, atol=1e-12, rtol=0)
    assert out.shape == log_det.shape == (50, 7)
    with pytest.raises(ValueError, match=r"3K - 1 = 17 parameters per element, got 16"):
        packed_rational_quadratic_spline(x, params[..., :16], num_bins=6, bound=2.0)
    with pytest.raises(ValueError, match=r"params must be inputs' shape \(50, 7\) plus"):
        packed_rational_quadratic_spline(x, params[:10], num_bins=6, bound=2.0)
