"""Fixed bijections around the learned density: box-to-real logit and standardization.

The learned density lives on an unbounded, standardized space ``y``. For a box
prior ``[low, high]`` the inputs pass through

    u = (theta - low) / (high - low),    z = log u - log(1 - u),    y = (z - shift) / scale

so that ``log q(theta) = log q_y(y) + log|dy/dtheta|`` with

    log|dy/dtheta| = sum_j [ -log(high_j - low_j) - log u_j - log(1 - u_j) - log scale_j ].

Sampling runs the map backwards, so every sample lies in the box (no
rejection). All of this is computed in float64; the networks run in float32.

Heavy tails. A feature whose spread is dominated by a few extreme values (a
simulator that sometimes blows up, such as lorenz96, reaches 1e167 where the
bulk is of order 1) cannot be standardized by its mean and standard deviation:
the standard deviation overflows or squeezes the bulk to zero, and float32
networks see infinities. ``feature_stats`` detects such features (standard
deviation over ``HEAVY_TAIL_RATIO`` times the robust scale IQR / 1.349, or not
finite) and standardizes them by median and robust scale, then compresses
beyond ``TAIL_THRESHOLD`` robust units logarithmically:

    g(z) = z                                  for |z| <= c
    g(z) = sign(z) (c + log(1 + |z| - c))     for |z| >  c

a C^1 monotone bijection of R (identity on the bulk, so ordinary features are
untouched), with ``log g'(z) = -log(1 + |z| - c)`` in the tails, which the
density's Jacobian includes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gbi_npe.config import check_tail_threshold

# u is clamped to [_EPS, 1 - _EPS] (in float64) before the logit, so a point on
# the box boundary gets a large but finite z instead of an infinite one.
_EPS = 1e-12

# A feature whose (unweighted) standard deviation is below this fraction of
# max(1, |mean|) is treated as constant: it is centred but not scaled.
CONSTANT_TOLERANCE = 1e-12

# The weighted standard deviation is floored at this fraction of the unweighted
# one, so collapsed weights cannot blow standardized values up.
WEIGHTED_SCALE_FLOOR = 0.1

# A feature is heavy-tailed when its standard deviation exceeds this many robust
# scales (IQR / 1.349; the two agree for a normal, and differ by < 2 for a t(3)).
HEAVY_TAIL_RATIO = 10.0

# Heavy-tailed features are compressed logarithmically beyond this many robust scales.
TAIL_THRESHOLD = 3.0

_IQR_TO_SIGMA = 1.3489795003921634  # IQR of the standard normal


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


def feature_stats(
    values: np.ndarray, weights: np.ndarray | None = None, *, tail_threshold: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``standardization_stats`` plus heavy-tail handling: ``(shift, scale, tail)``.

    Features whose standard deviation is not finite or exceeds
    ``HEAVY_TAIL_RATIO`` robust scales get ``shift`` = median, ``scale`` =
    IQR / 1.349 (unweighted: a few extreme rows must not set the scale) and
    ``tail`` = ``tail_threshold``; every other feature gets exactly
    ``standardization_stats``'s values and ``tail`` = inf (no compression).

    Args:
        values: shape (n, d), finite (magnitudes up to float64's range).
        weights: shape (n,), non-negative, or ``None``.
        tail_threshold: robust units past which heavy-tailed features are
            compressed, > 0; ``None``: ``TAIL_THRESHOLD`` (3).

    Returns:
        ``(shift, scale, tail)``, each shape (d,), float64.

    Example:
        >>> v = np.c_[np.linspace(-1, 1, 101), np.r_[np.linspace(-1, 1, 100), 1e150]]
        >>> shift, scale, tail = feature_stats(v)
        >>> tail.tolist()
        [inf, 3.0]
    """
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        shift, scale = standardization_stats(values, weights)
        std = values.std(axis=0)
    q25, median, q75 = np.quantile(values, [0.25, 0.5, 0.75], axis=0)
    robust = (q75 - q25) / _IQR_TO_SIGMA
    heavy = (robust > 0) & ~(np.isfinite(std) & (std <= HEAVY_TAIL_RATIO * robust))
    shift = np.where(heavy, median, shift)
    scale = np.where(heavy, robust, scale)
    tail = np.where(heavy, _tail_threshold(tail_threshold), np.inf)
    return shift, scale, tail


def _tail_threshold(value: float | None) -> float:
    """``value``, checked (``config.check_tail_threshold``), or ``TAIL_THRESHOLD`` for None."""
    checked = check_tail_threshold(value)
    return TAIL_THRESHOLD if checked is None else checked


def shared_feature_stats(
    values: np.ndarray, weights: np.ndarray | None = None, *, tail_threshold: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``feature_stats`` of all features pooled into one: the same values for every feature.

    For inputs whose features are one quantity laid out on a grid (a path, a
    field), such as those a stencil embedding reads: a single shift and scale
    keep the relations between neighbouring cells that per-feature
    standardization would distort.

    Args:
        values: shape (n, d).
        weights: shape (n,), non-negative, or ``None``.
        tail_threshold: as for ``feature_stats``.

    Returns:
        ``(shift, scale, tail)``, each shape (d,), every entry equal.

    Example:
        >>> shift, scale, tail = shared_feature_stats(np.array([[0.0, 2.0], [2.0, 4.0]]))
        >>> shift.tolist(), scale.tolist()
        ([2.0, 2.0], [1.4142135623730951, 1.4142135623730951])
    """
    values = np.asarray(values, dtype=np.float64)
    n, d = values.shape
    pooled_weights = None if weights is None else np.repeat(np.asarray(weights, np.float64), d)
    stats = feature_stats(values.reshape(n * d, 1), pooled_weights, tail_threshold=tail_threshold)
    return tuple(np.full(d, s[0]) for s in stats)  # type: ignore[return-value]


class Standardize(nn.Module):
    """``v -> g((v - shift) / scale)`` with float64 buffers.

    ``g`` is the identity, or for features with a finite ``tail`` threshold the
    logarithmic tail compression of the module docstring.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(features, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(features, dtype=torch.float64))
        self.register_buffer("tail", torch.full((features,), torch.inf, dtype=torch.float64))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # type: ignore[override]
        # Models saved before heavy-tail handling have no ``tail``: no compression.
        key = prefix + "tail"
        if key not in state_dict and prefix + "shift" in state_dict:
            state_dict[key] = torch.full_like(self.tail, torch.inf)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def set(self, shift: np.ndarray, scale: np.ndarray, tail: np.ndarray | None = None) -> None:
        """Store new statistics (shape (features,) each, ``scale > 0``, ``tail > 0`` or inf)."""
        shift = torch.as_tensor(np.asarray(shift, dtype=np.float64))
        scale = torch.as_tensor(np.asarray(scale, dtype=np.float64))
        if tail is None:
            tail = np.full(self.tail.shape, np.inf)
        tail = torch.as_tensor(np.asarray(tail, dtype=np.float64))
        if (
            shift.shape != self.shift.shape
            or scale.shape != self.scale.shape
            or tail.shape != self.tail.shape
        ):
            raise ValueError(
                f"standardization needs shape {tuple(self.shift.shape)}, got "
                f"{tuple(shift.shape)}, {tuple(scale.shape)} and {tuple(tail.shape)}"
            )
        if not (torch.isfinite(shift).all() and torch.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("standardization needs finite shift and finite scale > 0")
        if not (tail > 0).all():
            raise ValueError("tail thresholds must be > 0 (inf: no compression)")
        self.shift.copy_(shift)
        self.scale.copy_(scale)
        self.tail.copy_(tail)

    @property
    def has_tails(self) -> bool:
        return bool(torch.isfinite(self.tail).any())

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        """(b, d) -> (b, d), float64."""
        return self.forward_and_log_det(values)[0]

    def forward_and_log_det(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, d) -> (y (b, d), log|dy/dv| (b,)), float64."""
        z = (values.to(torch.float64) - self.shift) / self.scale
        log_det = (-torch.log(self.scale).sum()).expand(z.shape[0])
        # (traced by torch.compile without the shortcut: the same values, no host sync)
        if not torch.compiler.is_compiling() and not self.has_tails:
            return z, log_det
        c, finite = self._finite_tail()
        excess = torch.where(finite, torch.clamp(z.abs() - c, min=0.0), 0.0)
        y = torch.where(excess > 0, torch.sign(z) * (c + torch.log1p(excess)), z)
        return y, log_det - torch.log1p(excess).sum(dim=-1)

    def _finite_tail(self) -> tuple[torch.Tensor, torch.Tensor]:
        # inf thresholds replaced by 0 where unused, so no inf * 0 reaches a gradient
        finite = torch.isfinite(self.tail)
        return torch.where(finite, self.tail, 0.0), finite

    def inverse(self, values: torch.Tensor) -> torch.Tensor:
        """(b, d) -> (b, d), float64."""
        return self.inverse_and_log_det(values)[0]

    def inverse_and_log_det(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, d) y -> (v (b, d), the forward log|dy/dv| at v (b,)), float64."""
        y = y.to(torch.float64)
        log_det = (-torch.log(self.scale).sum()).expand(y.shape[0])
        z = y
        if self.has_tails:
            c, finite = self._finite_tail()
            # |y| - c above ~700 would overflow float64: such a y is no data point
            over = torch.where(finite, torch.clamp(y.abs() - c, min=0.0, max=700.0), 0.0)
            z = torch.where(over > 0, torch.sign(y) * (c + torch.expm1(over)), y)
            log_det = log_det - over.sum(dim=-1)  # log1p(|z| - c) = over in the tails
        return z * self.scale + self.shift, log_det


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
        y, log_det_standardize = self.standardize.forward_and_log_det(z)
        return y, log_det + log_det_standardize

    def inverse(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(b, d) ``y`` -> (inputs (b, d), forward ``log|dy/dinputs|`` (b,)), float64."""
        z, log_det_standardize = self.standardize.inverse_and_log_det(y)
        if self.box is None:
            return z, log_det_standardize
        inputs, log_det = self.box.inverse(z)
        return inputs, log_det + log_det_standardize
