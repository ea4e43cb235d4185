"""Fixed bijections around the learned density: box-to-real logit and standardization.

The learned density lives on an unbounded, standardized space ``y``. For a box
prior ``[low, high]`` the inputs pass through

    u = (theta - low) / (high - low),    z = log u - log(1 - u),    y = (z - shift) / scale

so that ``log q(theta) = log q_y(y) + log|dy/dtheta|`` with

    log|dy/dtheta| = sum_j [ -log(high_j - low_j) - log u_j - log(1 - u_j) - log scale_j ].

Sampling runs the map backwards, so every sample lies in the box (no
rejection). All of this is computed in float64; the networks run in float32.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# u is clamped to [_EPS, 1 - _EPS] (in float64) before the logit, so a point on
# the box boundary gets a large but finite z instead of an infinite one.
_EPS = 1e-12

# A feature whose (unweighted) standard deviation is below this fraction of
# max(1, |mean|) is treated as constant: it is centred but not scaled.
CONSTANT_TOLERANCE = 1e-12

# The weighted standard deviation is floored at this fraction of the unweighted
# one, so collapsed weights cannot blow standardized values up.
WEIGHTED_SCALE_FLOOR = 0.1


def standardization_stats(
    values: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Shift and scale that standardize ``values`` under ``weights``.

    Args:
        values: shape (n, d), finite.
        weights: shape (n,), non-negative (normalized here), or ``None`` for
            equal weights.

    Returns:
        ``(shift, scale)``, each shape (d,), float64, ``scale > 0``. A constant
        feature (such as lorenz96's x_0) gets ``scale = 1`` (no division by
        zero, no NaN); otherwise ``scale`` is the weighted standard deviation,
        floored at ``WEIGHTED_SCALE_FLOOR`` times the unweighted one.

    Example:
        >>> shift, scale = standardization_stats(np.array([[1.0, 5.0], [3.0, 5.0]]))
        >>> shift.tolist(), scale.tolist()
        ([2.0, 5.0], [1.0, 1.0])
    """
    values = np.asarray(values, dtype=np.float64)
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    constant = std <= CONSTANT_TOLERANCE * np.maximum(1.0, np.abs(mean))
    if weights is None:
        shift, scale = mean, std
    else:
        w = np.asarray(weights, dtype=np.float64)
        w = w / w.sum()
        shift = w @ values
        scale = np.sqrt(np.maximum(w @ (values - shift) ** 2, 0.0))
        scale = np.maximum(scale, WEIGHTED_SCALE_FLOOR * std)
    shift = np.where(constant, mean, shift)
    scale = np.where(constant, 1.0, scale)
    return shift, scale


class Standardize(nn.Module):
    """Affine map ``v -> (v - shift) / scale`` with float64 buffers."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(features, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(features, dtype=torch.float64))

    def set(self, shift: np.ndarray, scale: np.ndarray) -> None:
        """Store new statistics (shape (features,) each, ``scale > 0``)."""
        shift = torch.as_tensor(np.asarray(shift, dtype=np.float64))
        scale = torch.as_tensor(np.asarray(scale, dtype=np.float64))
        if shift.shape != self.shift.shape or scale.shape != self.scale.shape:
            raise ValueError(
                f"standardization needs shape {tuple(self.shift.shape)}, got "
                f"{tuple(shift.shape)} and {tuple(scale.shape)}"
            )
        if not (torch.isfinite(shift).all() and torch.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("standardization needs finite shift and finite scale > 0")
        self.shift.copy_(shift)
        self.scale.copy_(scale)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """(b, d) -> (b, d), float64."""
        return (values.to(torch.float64) - self.shift) / self.scale

    def inverse(self, values: torch.Tensor) -> torch.Tensor:
        """(b, d) -> (b, d), float64."""
        return values.to(torch.float64) * self.scale + self.shift

    def log_abs_det(self) -> torch.Tensor:
        """log|d forward / d v|, a scalar (the same for every row)."""
        return -torch.log(self.scale).sum()


class BoxLogit(nn.Module):
    """Bijection from the open box ``(low, high)`` to R^d (an elementwise logit)."""

    def __init__(self, low: tuple[float, ...], high: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("low", torch.tensor(low, dtype=torch.float64))
        self.register_buffer("high", torch.tensor(high, dtype=torch.float64))

    @property
    def width(self) -> torch.Tensor:
        return self.high - self.low

    def contains(self, theta: torch.Tensor) -> torch.Tensor:
        """Boolean (b,): the row lies in the closed box."""
        return ((theta >= self.low) & (theta <= self.high)).all(dim=-1)

    def forward(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Box -> R^d.

        Args:
            theta: shape (b, d), inside the closed box (points on the boundary
                are moved ``1e-12`` of the width inside).

        Returns:
            ``z`` shape (b, d) and ``log|dz/dtheta|`` shape (b,), float64.
        """
        u = ((theta.to(torch.float64) - self.low) / self.width).clamp(_EPS, 1.0 - _EPS)
        log_u, log_1mu = torch.log(u), torch.log1p(-u)
        log_det = (-torch.log(self.width) - log_u - log_1mu).sum(dim=-1)
        return log_u - log_1mu, log_det

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """R^d -> open box.

        Args:
            z: shape (b, d).

        Returns:
            ``theta`` shape (b, d), strictly inside the box, and the forward
            ``log|dz/dtheta|`` at it, shape (b,), float64.
        """
        z = z.to(torch.float64)
        theta = self.low + self.width * torch.sigmoid(z)
        inner_low = torch.nextafter(self.low, self.high)
        inner_high = torch.nextafter(self.high, self.low)
        theta = torch.minimum(torch.maximum(theta, inner_low), inner_high)
        log_det = (-torch.log(self.width) + F.softplus(z) + F.softplus(-z)).sum(dim=-1)
        return theta, log_det


class InputTransform(nn.Module):
    """Inputs -> standardized unbounded space: optional ``BoxLogit``, then ``Standardize``."""

    def __init__(
        self,
        features: int,
        low: tuple[float, ...] | None = None,
        high: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__()
        self.box = None if low is None or high is None else BoxLogit(low, high)
        self.standardize = Standardize(features)

    def unbounded(self, inputs: torch.Tensor) -> torch.Tensor:
        """Inputs (b, d) mapped to R^d before standardization (for statistics)."""
        if self.box is None:
            return inputs.to(torch.float64)
        return self.box(inputs)[0]

    def in_support(self, inputs: torch.Tensor) -> torch.Tensor:
        """Boolean (b,): inside the closed box (always true without a box)."""
        if self.box is None:
            return torch.ones(inputs.shape[0], dtype=torch.bool, device=inputs.device)
        return self.box.contains(inputs)

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, d) inputs -> (``y`` (b, d), ``log|dy/dinputs|`` (b,)), float64."""
        inputs = inputs.to(torch.float64)
        if self.box is None:
            z, log_det = (
                inputs,
                torch.zeros(inputs.shape[0], dtype=torch.float64, device=inputs.device),
            )
        else:
            z, log_det = self.box(inputs)
        return self.standardize(z), log_det + self.standardize.log_abs_det()

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, d) ``y`` -> (inputs (b, d), forward ``log|dy/dinputs|`` (b,)), float64."""
        z = self.standardize.inverse(y)
        if self.box is None:
            log_det = torch.zeros(z.shape[0], dtype=torch.float64, device=z.device)
            return z, log_det + self.standardize.log_abs_det()
        inputs, log_det = self.box.inverse(z)
        return inputs, log_det + self.standardize.log_abs_det()
