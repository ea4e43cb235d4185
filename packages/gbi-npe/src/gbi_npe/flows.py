"""Conditional neural spline flows (Durkan et al. 2019), coupling or autoregressive.

A ``SplineFlow`` is a density of standardized, unbounded ``y`` (b, d) given
network features ``h`` (b, e). Base distribution: standard normal. Layer
directions follow normflows: ``layer(z, h)`` maps noise towards data (used
for sampling), ``layer.inverse(y, h)`` maps data towards noise (used for
``log_prob``); both return ``log|det|`` of the map they apply. Coupling layers
run our mask-free spline (``gbi_npe.splines``) on our residual conditioner
(``gbi_npe.resnet``) and keep normflows' parameter names; autoregressive layers
run the same spline on normflows' MADE (its names too); coupling layers with
the unconditional transform of older files are normflows' own.
"""

from __future__ import annotations

import math

import normflows as nf
import torch
from normflows.flows.neural_spline.autoregressive import (
    MaskedPiecewiseRationalQuadraticAutoregressive,
)
from normflows.flows.neural_spline.coupling import PiecewiseRationalQuadraticCoupling
from torch import nn

from .config import SplineFlowConfig
from .resnet import ResidualNet
from .splines import packed_rational_quadratic_spline

_LOG_2PI = math.log(2.0 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), (b, d) -> (b,)."""
    return -0.5 * (z * z).sum(dim=-1) - 0.5 * z.shape[-1] * _LOG_2PI


class _Reverse(nf.flows.Flow):
    """Reverses the feature order (between autoregressive layers)."""

    def forward(self, z: torch.Tensor, context: torch.Tensor | None = None):
        return z.flip(-1), torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)

    def inverse(self, z: torch.Tensor, context: torch.Tensor | None = None):
        return self.forward(z, context)


def _conditioner(config: SplineFlowConfig, context_features: int):
    """The factory of a coupling's residual conditioner network (normflows' signature)."""

    def make_net(in_features: int, out_features: int) -> nn.Module:
        return ResidualNet(
            in_features=in_features,
            out_features=out_features,
            context_features=context_features,
            hidden_features=config.hidden_features,
            num_blocks=config.num_blocks,
            dropout=config.dropout,
        )

    return make_net


class _Coupling(nn.Module):
    """Spline the ``transform_features`` of y given its ``identity_features`` and h.

    The parameter and buffer names are those of normflows'
    ``PiecewiseRationalQuadraticCoupling`` (without its unconditional
    transform), so either loads the other's weights; the spline is
    ``gbi_npe.splines`` (one pass over the whole batch, no masks).
    """

    def __init__(self, config: SplineFlowConfig, context_features: int, mask: torch.Tensor) -> None:
        super().__init__()
        features = torch.arange(len(mask))
        self.register_buffer("identity_features", features[mask <= 0])
        self.register_buffer("transform_features", features[mask > 0])
        self.num_bins = config.num_bins
        self.tail_bound = config.tail_bound
        # as normflows: softmax logits scaled down by the conditioner's width at init
        self.logit_scale = 1.0 / math.sqrt(config.hidden_features)
        self.transform_net = _conditioner(config, context_features)(
            len(self.identity_features), len(self.transform_features) * (3 * config.num_bins - 1)
        )

    def _apply_spline(self, y: torch.Tensor, h: torch.Tensor | None, inverse: bool):
        identity = y.index_select(1, self.identity_features)
        params = self.transform_net(identity, h).view(y.shape[0], len(self.transform_features), -1)
        out, log_det = packed_rational_quadratic_spline(
            y.index_select(1, self.transform_features),
            params,
            num_bins=self.num_bins,
            bound=self.tail_bound,
            inverse=inverse,
            logit_scale=self.logit_scale,
        )
        return y.index_copy(1, self.transform_features, out), log_det.sum(dim=-1)

    def forward(self, y: torch.Tensor, h: torch.Tensor | None = None):
        """Data towards noise: ``(z (b, d), log|det| (b,))``."""
        return self._apply_spline(y, h, inverse=False)

    def inverse(self, z: torch.Tensor, h: torch.Tensor | None = None):
        """Noise towards data: ``(y (b, d), log|det| (b,))`` of that map."""
        return self._apply_spline(z, h, inverse=True)


class _NamedTransform(nf.flows.Flow):
    """A spline transform held under the attribute ``_name`` (the saved layout).

    The transform maps data towards noise; this layer's ``forward`` is its
    inverse (normflows' convention: noise towards data).
    """

    _name: str

    def forward(self, z: torch.Tensor, context: torch.Tensor | None = None):
        z, log_det = getattr(self, self._name).inverse(z, context)
        return z, log_det.view(-1)

    def inverse(self, z: torch.Tensor, context: torch.Tensor | None = None):
        z, log_det = getattr(self, self._name)(z, context)
        return z, log_det.view(-1)


class _SplineCoupling(_NamedTransform):
    """A rational-quadratic spline coupling layer.

    ``mask`` marks the features transformed (1) given the others (0) and h. The
    parameters sit under ``prqct``, as in normflows' ``CoupledRationalQuadraticSpline``,
    so flows saved with that wrapper load unchanged. With the unconditional
    transform (flows saved before it became optional) the layer is normflows'
    own coupling; without it, ``_Coupling``.
    """

    _name = "prqct"

    def __init__(
        self,
        config: SplineFlowConfig,
        context_features: int,
        mask: torch.Tensor,
        unconditional_transform: bool,
    ) -> None:
        super().__init__()
        if unconditional_transform:
            coupling = PiecewiseRationalQuadraticCoupling(
                mask=mask,
                transform_net_create_fn=_conditioner(config, context_features),
                num_bins=config.num_bins,
                tails="linear",
                tail_bound=config.tail_bound,
                apply_unconditional_transform=True,
            )
        else:
            coupling = _Coupling(config, context_features, mask)
        self.add_module(self._name, coupling)


class _ConditionalSpline1d(_SplineCoupling):
    """The 1-D layer of both kinds: a spline of the single feature whose knots depend on h.

    normflows' coupling wrapper would give the single feature to the identity
    half (an empty, parameter-less transform); here it is always transformed.
    Saved 1-D flows hold it under ``spline``.
    """

    _name = "spline"

    def __init__(self, config: SplineFlowConfig, context_features: int) -> None:
        super().__init__(config, context_features, torch.ones(1), unconditional_transform=False)


class _MaskFreeAutoregressive(MaskedPiecewiseRationalQuadraticAutoregressive):
    """normflows' autoregressive spline transform (its MADE, its parameter names)
    with the spline evaluated by ``gbi_npe.splines``: the same map, without the
    boolean masks that split each batch (and break a compiled graph)."""

    def _elementwise(self, inputs: torch.Tensor, params: torch.Tensor, inverse: bool = False):
        b, d = inputs.shape
        params = params.view(b, d, self._output_dim_multiplier())
        # (normflows scales the logits by a network width only where the
        # network has a ``hidden_features`` attribute, which its MADE has not)
        out, log_det = packed_rational_quadratic_spline(
            inputs, params, num_bins=self.num_bins, bound=self.tail_bound, inverse=inverse
        )
        return out, log_det.sum(dim=1)


class _AutoregressiveSpline(_NamedTransform):
    """An autoregressive spline layer, saved under ``mprqat`` as normflows'
    ``AutoregressiveRationalQuadraticSpline`` (whose weights it loads; its
    networks are built in the same order, so a seed gives the same weights)."""

    _name = "mprqat"

    def __init__(self, features: int, context_features: int, config: SplineFlowConfig) -> None:
        super().__init__()
        self.mprqat = _MaskFreeAutoregressive(
            features=features,
            hidden_features=config.hidden_features,
            context_features=context_features,
            num_bins=config.num_bins,
            tails="linear",
            tail_bound=config.tail_bound,
            num_blocks=config.num_blocks,
            use_residual_blocks=True,
            random_mask=False,
            permute_mask=False,
            activation=nn.ReLU(),
            dropout_probability=config.dropout,
            use_batch_norm=False,
            init_identity=True,
        )


def _make_layers(features: int, context_features: int, config: SplineFlowConfig) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(config.num_layers):
        if features == 1:
            # Both kinds coincide in 1-D (and normflows' 1-D MADE would carry a
            # fully masked, dead input weight).
            layers.append(_ConditionalSpline1d(config, context_features))
        elif config.kind == "coupling":
            mask = torch.zeros(features, dtype=torch.uint8)
            mask[(i + 1) % 2 :: 2] = 1  # normflows' alternating masks
            layers.append(
                _SplineCoupling(config, context_features, mask, config.unconditional_transform)
            )
        else:
            layers.append(_AutoregressiveSpline(features, context_features, config))
            if features > 1 and i < config.num_layers - 1:
                layers.append(_Reverse())
    return layers


class SplineFlow(nn.Module):
    """Conditional neural spline flow (coupling or autoregressive).

    Args:
        features: dimension ``d`` of ``y``.
        context_features: dimension ``e`` of the network features ``h``.
        config: layer kind and sizes.
    """

    def __init__(self, features: int, context_features: int, config: SplineFlowConfig) -> None:
        super().__init__()
        self.features = features
        self.context_features = context_features
        self.noise_features = features
        self.layers = nn.ModuleList(_make_layers(features, context_features, config))

    def log_prob(self, y: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """log q(y | h): y (b, d), h (b, e) -> (b,)."""
        z = y
        total = torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
        for layer in reversed(self.layers):
            z, log_det = layer.inverse(z, h)
            total = total + log_det
        return standard_normal_log_prob(z) + total

    def sample_from_noise(
        self, noise: torch.Tensor, h: torch.Tensor, with_log_prob: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Push standard-normal noise through the flow.

        Args:
            noise: shape (m, n, d).
            h: network features, one row per observation, shape (m, e).
            with_log_prob: also return log q(y | h).

        Returns:
            ``y`` (m, n, d) and, if asked, log q (m, n) (else ``None``).
        """
        m, n, d = noise.shape
        z = noise.reshape(m * n, d)
        rows = h[:, None, :].expand(m, n, h.shape[-1]).reshape(m * n, -1)
        total = torch.zeros(m * n, dtype=z.dtype, device=z.device) if with_log_prob else None
        for layer in self.layers:
            z, log_det = layer(z, rows)
            if total is not None:
                total = total + log_det
        y = z.reshape(m, n, d)
        if total is None:
            return y, None
        log_q = standard_normal_log_prob(noise.reshape(m * n, d)) - total
        return y, log_q.reshape(m, n)
