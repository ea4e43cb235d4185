"""Residual MLPs with LayerNorm: the building block of the ratio and score networks.

Paper App. A.1: "All MLPs use residual connections and LayerNorm", with a
LayerNorm after each block. Here the LayerNorm closes each block's branch:

    h <- h + LayerNorm(W2 silu(W1 h)),

preceded by a linear map to the hidden width and followed by a linear map to
the output width. Unlike a LayerNorm of the whole stream (``h <-
LayerNorm(h + ...)``), this keeps the input's magnitude on the identity path,
which a score (linear in the input far from the data) and a log-ratio
(quadratic) need: on the Gaussian test problem it lowered the score error at
sigma = 0.1 from about 16 % to 13 % and at sigma = 1 from 7 % to 4 %.

``PairStandardize`` holds the fixed standardization of (theta, x) pairs that
the ratio and score networks see (gbi-npe's ``Standardize``, float64 buffers).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gbi_surrogates._from_npe import (
    Standardize,
    feature_stats,
    shared_feature_stats,
    standardization_stats,
)


class ResidualBlock(nn.Module):
    """``h -> h + LayerNorm(W2 silu(W1 h))``, shape (b, width) to (b, width)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(width, width)
        self.linear2 = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.norm(self.linear2(nn.functional.silu(self.linear1(h))))


class ResidualMLP(nn.Module):
    """Linear to ``hidden_features``, ``num_blocks`` residual blocks, linear out.

    Args:
        in_features: input width.
        out_features: output width.
        hidden_features: width of the residual stream.
        num_blocks: residual blocks (each with its LayerNorm).

    Shapes:
        (b, in_features) -> (b, out_features).
    """

    def __init__(
        self, in_features: int, out_features: int, hidden_features: int, num_blocks: int
    ) -> None:
        super().__init__()
        self.input = nn.Linear(in_features, hidden_features)
        self.blocks = nn.Sequential(*(ResidualBlock(hidden_features) for _ in range(num_blocks)))
        self.output = nn.Linear(hidden_features, out_features)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.output(self.blocks(self.input(inputs)))


class NoiseEmbedding(nn.Module):
    """Embedding of ``log sigma``: a 2-layer MLP (paper App. A.1), then LayerNorm.

    Shapes:
        (b, 1) -> (b, out_features).
    """

    def __init__(self, hidden_features: int, out_features: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(1, hidden_features),
            nn.SiLU(),
            nn.Linear(hidden_features, out_features),
            nn.LayerNorm(out_features),
        )

    def forward(self, log_sigma: torch.Tensor) -> torch.Tensor:
        return self.net(log_sigma)


class PairStandardize(nn.Module):
    """``(theta, x) -> ((theta - shift) / scale, (x - shift) / scale)``, float64 buffers.

    Args:
        theta_features: d_theta.
        x_features: d_x.
    """

    def __init__(self, theta_features: int, x_features: int) -> None:
        super().__init__()
        self.theta = Standardize(theta_features)
        self.x = Standardize(x_features)

    def set_from(
        self,
        theta: np.ndarray,
        x: np.ndarray,
        *,
        tails: bool = False,
        shared_x: bool = False,
        x_tail_threshold: float | None = None,
    ) -> None:
        """Statistics of training pairs (n, d_theta), (n, d_x); constant columns get scale 1.

        With ``tails``, heavy-tailed features are standardized robustly and
        compressed in their tails (gbi-npe's ``feature_stats``): right for a
        classifier's inputs, wrong where the map must stay affine (the score
        model's coordinates). With ``shared_x`` (and ``tails``) every x feature
        gets one shared shift and scale (for x read by a stencil embedding).
        ``x_tail_threshold`` is where x's tails start (``feature_stats``).
        """
        self.theta.set(*(feature_stats if tails else standardization_stats)(theta))
        if not tails:
            self.x.set(*standardization_stats(x))
            return
        x_stats = shared_feature_stats if shared_x else feature_stats
        self.x.set(*x_stats(x, tail_threshold=x_tail_threshold))

    def forward(self, theta: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, d_theta), (b, d_x) -> standardized, float32."""
        return self.theta(theta).to(torch.float32), self.x(x).to(torch.float32)

    def to_dict(self) -> dict[str, dict[str, list[float]]]:
        """The statistics as JSON-able lists (for file headers)."""
        return {
            name: {"shift": module.shift.tolist(), "scale": module.scale.tolist()}
            for name, module in (("theta", self.theta), ("x", self.x))
        }
