"""Temperatures: distributions to draw beta from during training, and beta features.

A continuous beta is drawn fresh for every minibatch item (Route B with a
log-uniform beta, paper §4.2); ``GridBeta`` draws from a finite grid instead.
Both satisfy the ``BetaDistribution`` protocol, which is all ``fit`` needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class BetaDistribution(Protocol):
    """A distribution of temperatures on ``[low, high]``."""

    @property
    def low(self) -> float: ...

    @property
    def high(self) -> float: ...

    def sample(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` independent draws, float64 array (size,)."""
        ...

    def validation_grid(self, k: int) -> np.ndarray:
        """At most ``k`` fixed temperatures spanning the support, for validation."""
        ...


@dataclass(frozen=True)
class LogUniformBeta:
    """log beta ~ Uniform(log low, log high).

    Example:
        >>> import numpy as np
        >>> d = LogUniformBeta(0.1, 2.0)
        >>> b = d.sample(5, np.random.default_rng(0))
        >>> bool(((b >= 0.1) & (b <= 2.0)).all())
        True
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and 0 < self.low <= self.high):
            raise ValueError(
                f"LogUniformBeta needs 0 < low <= high (finite), got low={self.low}, "
                f"high={self.high}"
            )

    def sample(self, size: int, rng: np.random.Generator) -> np.ndarray:
        log_beta = rng.uniform(math.log(self.low), math.log(self.high), size)
        return np.clip(np.exp(log_beta), self.low, self.high)

    def validation_grid(self, k: int) -> np.ndarray:
        if self.low == self.high:
            return np.array([float(self.low)])
        return np.geomspace(self.low, self.high, k)


@dataclass(frozen=True)
class GridBeta:
    """beta drawn uniformly from a finite set of temperatures."""

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        values = tuple(sorted({float(v) for v in self.values}))
        if not values or not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"GridBeta needs a non-empty set of finite betas > 0, got {values}")
        object.__setattr__(self, "values", values)

    @property
    def low(self) -> float:
        return self.values[0]

    @property
    def high(self) -> float:
        return self.values[-1]

    def sample(self, size: int, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self.values)[rng.integers(0, len(self.values), size)]

    def validation_grid(self, k: int) -> np.ndarray:
        values = np.asarray(self.values)
        if values.size <= k:
            return values
        return values[np.unique(np.linspace(0, values.size - 1, k).round().astype(int))]


@dataclass(frozen=True)
class TiltedBeta:
    """A base distribution reweighted by a tabulated tilt: density ``∝ base(beta) t(beta)``.

    ``t`` is given at temperatures ``grid`` and interpolated linearly in
    ``log beta`` (constant beyond the ends). Draws come from ``base`` by
    rejection, each kept with probability ``t(beta) / max t``, so any base
    distribution works; a tilt of at least ``floor`` everywhere keeps the
    acceptance rate at least ``floor / max t``. ``low``, ``high`` and the
    validation grid are the base's: tilting changes where training spends its
    draws, not which temperatures are judged.

    Example:
        >>> import numpy as np
        >>> d = TiltedBeta(LogUniformBeta(0.1, 2.0), (0.1, 1.0, 2.0), (0.1, 1.0, 1.0))
        >>> b = d.sample(20_000, np.random.default_rng(0))
        >>> bool((b >= 0.1).all() and (b <= 2.0).all()), bool(np.mean(b < 0.3) < 0.2)
        (True, True)
    """

    base: BetaDistribution
    grid: tuple[float, ...]
    tilt: tuple[float, ...]

    def __post_init__(self) -> None:
        grid = np.asarray(self.grid, dtype=np.float64)
        tilt = np.asarray(self.tilt, dtype=np.float64)
        if grid.ndim != 1 or grid.size == 0 or tilt.shape != grid.shape:
            raise ValueError(
                f"TiltedBeta needs grid and tilt of the same length >= 1, got {grid.shape} "
                f"and {tilt.shape}"
            )
        if not (np.isfinite(grid).all() and (grid > 0).all() and (np.diff(grid) > 0).all()):
            raise ValueError(f"TiltedBeta's grid must be finite, > 0 and increasing, got {grid}")
        if not (np.isfinite(tilt).all() and (tilt >= 0).all() and tilt.max() > 0):
            raise ValueError(f"TiltedBeta's tilt must be finite, >= 0 and not all 0, got {tilt}")
        object.__setattr__(self, "grid", tuple(grid.tolist()))
        object.__setattr__(self, "tilt", tuple(tilt.tolist()))

    @property
    def low(self) -> float:
        return self.base.low

    @property
    def high(self) -> float:
        return self.base.high

    def density_ratio(self, beta: np.ndarray) -> np.ndarray:
        """``t(beta) / max t``: the acceptance probability of a base draw, shape of ``beta``."""
        t = np.interp(np.log(beta), np.log(np.asarray(self.grid)), np.asarray(self.tilt))
        return t / max(self.tilt)

    def sample(self, size: int, rng: np.random.Generator) -> np.ndarray:
        out = np.empty(0)
        empty_rounds = 0
        while out.size < size:
            need = size - out.size
            proposal = np.asarray(self.base.sample(2 * need + 16, rng), dtype=np.float64)
            keep = rng.random(proposal.size) < self.density_ratio(proposal)
            empty_rounds = 0 if keep.any() else empty_rounds + 1
            if empty_rounds == 100:
                raise ValueError(
                    "TiltedBeta: the tilt is zero wherever the base distribution draws beta"
                )
            out = np.concatenate([out, proposal[keep][:need]])
        return out

    def validation_grid(self, k: int) -> np.ndarray:
        return self.base.validation_grid(k)


def beta_features(beta: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """Features of beta fed to the network.

    Args:
        beta: shape (b,), positive.
        names: features from ``("log_beta", "beta", "inv_beta")``.

    Returns:
        shape (b, len(names)), same dtype as ``beta``.
    """
    columns = []
    for name in names:
        if name == "log_beta":
            columns.append(torch.log(beta))
        elif name == "beta":
            columns.append(beta)
        elif name == "inv_beta":
            columns.append(1.0 / beta)
        else:  # guarded by EstimatorSpec
            raise ValueError(f"unknown beta feature {name!r}")
    return torch.stack(columns, dim=-1)
