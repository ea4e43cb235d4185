r"""Self-normalized importance weights of a base simulation set, for any temperature.

The base set ``(theta_i, x_i) ~ prior(theta) p(x | theta)`` is reused for every
beta. With per-pair scores ``s_i`` (paper §4.2, eq. 9)

- NLE form: ``s_i = log p_hat(x_i | theta_i)`` and ``m(x) = 1``;
- NRE form: ``s_i = log r_hat(theta_i, x_i) ≈ log p(x_i | theta_i) / p(x_i)`` and
  ``m(x) = p(x)^(1 - beta)``;

the unnormalized log weight is ``(beta - 1) * s_i`` in both cases, and the
normalized weight is ``w_i(beta) = exp((beta - 1) s_i) / sum_j exp((beta - 1) s_j)``,
normalized globally over the whole base set for each beta (never within a
minibatch: paper Prop. B.2).

More generally the log weight is ``beta * s_i + c_i`` with per-pair offsets
``c_i`` (default ``-s_i``, the two forms above). gbi's contrastive pool uses
``c_i = -log(r_i + M)``: pairs from a mixture of the joint and M product-of-
marginals draws per x, weighted by multiple importance sampling.

Continuous beta: the log normalizer ``log Z(beta) = logsumexp_j (beta - 1) s_j``
is computed exactly on a grid over the beta range, with its exact derivative
``d log Z / d beta = sum_j w_j(beta) s_j``, and interpolated by a cubic Hermite
spline in between (error below ``h^4 / 384`` times the fourth cumulant of the
scores under the weights, for grid step ``h``; ~1e-10 on typical problems), so
a trainer can draw beta log-uniformly and query single weights in O(1).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.interpolate import CubicHermiteSpline
from scipy.special import logsumexp

from gbi_tempering.ess import ess
from gbi_tempering.stabilize import METHODS, stabilize

FORMS = ("nle", "nre", "pool")

#: below this relative ESS the weights of a temperature count as collapsed
#: (``WeightDiagnostics.collapsed``; ``SNISWeights`` warns there by default)
MIN_RELATIVE_ESS = 0.01


class ESSCollapseWarning(UserWarning):
    """The effective sample size collapsed at some temperatures."""


@dataclass(frozen=True)
class WeightDiagnostics:
    """Per-beta diagnostics of (stabilized) SNIS weights.

    Attributes:
        beta: temperatures, shape (B,).
        ess: effective sample size of the weights used, shape (B,).
        relative_ess: ``ess / n``, shape (B,).
        raw_ess: ESS of the raw (unstabilized) weights, shape (B,).
        k_hat: generalized Pareto shape of the raw weights' tail (PSIS), shape (B,);
            NaN where the weights are constant (beta = 1: no tail to fit).
        truncated_fraction: share of weights capped by truncation, shape (B,).
        method: the stabilization used.
        mixing_weight: the defensive mixing weight (0 unless ``defensive``).
        n: number of pairs weighted.
        n_dropped: pairs dropped because their score was not finite.
    """

    beta: np.ndarray
    ess: np.ndarray
    relative_ess: np.ndarray
    raw_ess: np.ndarray
    k_hat: np.ndarray
    truncated_fraction: np.ndarray
    method: str
    mixing_weight: float
    n: int
    n_dropped: int

    def collapsed(self, min_relative_ess: float = MIN_RELATIVE_ESS) -> np.ndarray:
        """The betas whose relative ESS is below ``min_relative_ess``."""
        return self.beta[self.relative_ess < min_relative_ess]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists of floats)."""
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = value.tolist() if isinstance(value, np.ndarray) else value
        return out


def _as_beta(beta: object) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(beta, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"beta must be a scalar or a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"beta must be finite and > 0, got {arr[~(np.isfinite(arr) & (arr > 0))]}")
    return arr


class SNISWeights:
    """Globally normalized SNIS weights of one base set, for any beta > 0.

    Args:
        scores: per-pair scores ``s_i``, shape (N,): log-likelihoods (``form="nle"``)
            or log-ratios (``form="nre"``).
        form: ``"nle"``, ``"nre"`` or ``"pool"`` (recorded for reports; the
            weights depend only on scores and offsets).
        offsets: per-pair offsets ``c_i``, shape (N,): the log weight is
            ``beta * s_i + c_i``. Default ``-s_i`` (``(beta - 1) s_i``).
        method: stabilization, one of ``"none"``, ``"truncate"``, ``"psis"``,
            ``"defensive"`` (see ``gbi_tempering.stabilize``).
        mixing_weight: the defensive mixture's weight on the base distribution.
        beta_range: ``(beta_min, beta_max)`` served by ``log_weights_fn``.
        grid_size: grid points over ``beta_range`` (log-spaced).
        nonfinite: ``"drop"`` removes pairs with a non-finite score (their count is
            ``n_dropped`` and ``kept`` is the mask of pairs kept); ``"raise"`` refuses them.
        min_relative_ess: ``diagnostics`` warns for betas below this relative ESS.

    Example:
        >>> w = SNISWeights(np.array([0.0, 1.0, 2.0, 3.0]))
        >>> np.round(np.exp(w.log_weights(0.5)[0]), 3)
        array([0.455, 0.276, 0.167, 0.102])
    """

    def __init__(
        self,
        scores: np.ndarray,
        *,
        form: str = "nle",
        offsets: np.ndarray | None = None,
        method: str = "none",
        mixing_weight: float = 0.1,
        beta_range: tuple[float, float] = (0.1, 2.0),
        grid_size: int = 257,
        nonfinite: str = "drop",
        min_relative_ess: float = MIN_RELATIVE_ESS,
    ) -> None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim != 1 or scores.size == 0:
            raise ValueError(f"scores must be a non-empty 1-D array (N,), got shape {scores.shape}")
        if form not in FORMS:
            raise ValueError(f"form must be one of {FORMS}, got {form!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method == "defensive" and not 0.0 < mixing_weight < 1.0:
            raise ValueError(f"mixing_weight must lie in (0, 1), got {mixing_weight}")
        if nonfinite not in ("drop", "raise"):
            raise ValueError(f"nonfinite must be 'drop' or 'raise', got {nonfinite!r}")
        bounds = np.asarray(beta_range, dtype=np.float64)
        if bounds.shape != (2,) or not (np.isfinite(bounds).all() and 0 < bounds[0] < bounds[1]):
            raise ValueError(
                f"beta_range must be (beta_min, beta_max) with 0 < beta_min < beta_max, "
                f"got {beta_range}"
            )
        low, high = float(bounds[0]), float(bounds[1])
        if grid_size < 2:
            raise ValueError(f"grid_size must be at least 2, got {grid_size}")
        offsets = -scores if offsets is None else np.asarray(offsets, dtype=np.float64)
        if offsets.shape != scores.shape:
            raise ValueError(
                f"offsets must have the shape of scores {scores.shape}, got {offsets.shape}"
            )
        finite = np.isfinite(scores) & np.isfinite(offsets)
        if not finite.all() and nonfinite == "raise":
            raise ValueError(
                f"{int((~finite).sum())} of {scores.size} scores are not finite "
                "(pass nonfinite='drop' to drop those pairs)"
            )
        if not finite.any():
            raise ValueError("no finite scores: nothing to weight")
        self.kept = finite
        self.n_dropped = int((~finite).sum())
        self.scores = scores[finite]
        self.offsets = offsets[finite]
        self.form = form
        self.method = method
        self.mixing_weight = float(mixing_weight) if method == "defensive" else 0.0
        self.beta_range = (low, high)
        self.min_relative_ess = float(min_relative_ess)
        self.grid = np.geomspace(low, high, grid_size)
        log_z, dlog_z = self._log_normalizer_exact(self.grid)
        self._log_z_spline = CubicHermiteSpline(self.grid, log_z, dlog_z)
        self._grid_log_weights: np.ndarray | None = None

    @property
    def n(self) -> int:
        """Number of pairs weighted (after dropping non-finite scores)."""
        return self.scores.size

    # -- exact, per beta ------------------------------------------------------

    def _log_normalizer_exact(self, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        log_z = np.empty(beta.size)
        dlog_z = np.empty(beta.size)
        for k, b in enumerate(beta):
            a = b * self.scores + self.offsets
            log_z[k] = logsumexp(a)
            dlog_z[k] = np.sum(np.exp(a - log_z[k]) * self.scores)
        return log_z, dlog_z

    def raw_log_weights(self, beta: object) -> np.ndarray:
        """Unstabilized normalized log weights, shape (B, n), exact."""
        beta = _as_beta(beta)
        a = beta[:, None] * self.scores[None, :] + self.offsets[None, :]
        return a - logsumexp(a, axis=1, keepdims=True)

    def _stabilized(self, beta: np.ndarray):
        return stabilize(self.raw_log_weights(beta), self.method, self.mixing_weight or 0.1)

    def log_weights(self, beta: object) -> np.ndarray:
        """Stabilized normalized log weights at each beta, shape (B, n), exact.

        Row ``k`` sums to one (in exp space) over all ``n`` kept pairs.
        """
        return self._stabilized(_as_beta(beta)).log_weights

    # -- continuous beta, O(1) per query ------------------------------------------

    def log_normalizer(self, beta: object) -> np.ndarray:
        """``log Z(beta) = logsumexp_j (beta s_j + c_j)``, shape (B,).

        Spline-interpolated inside ``beta_range``, exact outside it.
        """
        beta = _as_beta(beta)
        inside = (beta >= self.grid[0]) & (beta <= self.grid[-1])
        out = np.empty(beta.size)
        out[inside] = self._log_z_spline(beta[inside])
        if np.any(~inside):
            out[~inside] = self._log_normalizer_exact(beta[~inside])[0]
        return out

    def _checked_query(self, beta: object, index: object) -> tuple[np.ndarray, np.ndarray]:
        """``(beta, index)`` of a per-pair query, checked against this set of pairs;
        beta clipped onto ``beta_range`` (it may overshoot it by rounding only)."""
        beta = _as_beta(beta)
        index = np.asarray(index)
        if index.shape != beta.shape or not np.issubdtype(index.dtype, np.integer):
            raise ValueError(
                f"index must be an integer array shaped like beta {beta.shape}, got "
                f"{index.dtype} {index.shape}"
            )
        if index.size and (index.min() < 0 or index.max() >= self.n):
            raise ValueError(f"index must lie in [0, {self.n}), got {index.min()}..{index.max()}")
        low, high = self.beta_range
        if np.any(beta < low * (1 - 1e-12)) or np.any(beta > high * (1 + 1e-12)):
            raise ValueError(
                f"beta must lie in beta_range {self.beta_range}, got {beta.min()}..{beta.max()}"
            )
        return np.clip(beta, low, high), index

    def log_weights_fn(self, beta: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Log normalized weight of pair ``index[j]`` at temperature ``beta[j]``.

        The contract of gbi-npe's trainer: for every beta, ``exp`` of this over all
        pairs sums to one. ``index`` counts kept pairs (``0 <= index < n``).

        - ``none`` and ``defensive``: exact up to the spline of ``log Z`` (above).
        - ``truncate`` and ``psis``: the stabilized weights are computed exactly on
          the beta grid and interpolated linearly in log space between the two
          neighbouring grid points.

        Args:
            beta: shape (b,), inside ``beta_range``.
            index: shape (b,), integers.

        Returns:
            shape (b,), float64.
        """
        beta, index = self._checked_query(beta, index)
        if self.method in ("none", "defensive"):
            raw = beta * self.scores[index] + self.offsets[index] - self._log_z_spline(beta)
            if self.method == "none":
                return raw
            lam = self.mixing_weight
            return np.logaddexp(np.log1p(-lam) + raw, np.log(lam) - np.log(self.n))
        if self._grid_log_weights is None:
            self._grid_log_weights = self._stabilized(self.grid).log_weights
        k = np.clip(np.searchsorted(self.grid, beta, side="right") - 1, 0, self.grid.size - 2)
        t = (beta - self.grid[k]) / (self.grid[k + 1] - self.grid[k])
        grid_lw = self._grid_log_weights
        return (1.0 - t) * grid_lw[k, index] + t * grid_lw[k + 1, index]

    # -- diagnostics ----------------------------------------------------------

    def diagnostics(self, beta: object, *, warn: bool = True) -> WeightDiagnostics:
        """ESS, relative ESS, k_hat and stabilization diagnostics per beta.

        Warns with ``ESSCollapseWarning``, naming the betas, where the relative ESS
        of the weights used falls below ``min_relative_ess``.
        """
        beta = _as_beta(beta)
        raw = self.raw_log_weights(beta)
        used = stabilize(raw, self.method, self.mixing_weight or 0.1)
        k_hat = used.k_hat if self.method == "psis" else stabilize(raw, "psis").k_hat
        e = ess(used.log_weights)
        diag = WeightDiagnostics(
            beta=beta,
            ess=e,
            relative_ess=e / self.n,
            raw_ess=ess(raw),
            k_hat=k_hat,
            truncated_fraction=used.truncated_fraction,
            method=self.method,
            mixing_weight=self.mixing_weight,
            n=self.n,
            n_dropped=self.n_dropped,
        )
        bad = diag.collapsed(self.min_relative_ess)
        if warn and bad.size:
            low_ess = diag.ess[diag.relative_ess < self.min_relative_ess]
            warnings.warn(
                f"SNIS effective sample size collapsed (relative ESS < {self.min_relative_ess}) "
                f"at beta = {', '.join(f'{b:.3g}' for b in bad)}; ESS there: "
                f"{', '.join(f'{v:.1f}' for v in low_ess)}"
                f" of {self.n}. Consider stabilization, more simulations, or Route A.",
                ESSCollapseWarning,
                stacklevel=2,
            )
        return diag


class SwitchedWeights:
    """One set of weights below a temperature and another from there on, over one set of pairs.

    gbi's contrastive pool pairs each x with its own theta and M prior draws
    (``low``, multiple importance sampling): below the temperatures where the
    matched pairs alone keep their effective sample size, the prior draws
    carry the broad power posteriors; from there on the matched pairs' own
    weights (``high``, over the own-theta rows only) need nothing of the
    surrogate far from the data. Both are normalized over their own pairs, so
    each temperature's weights sum to one over ``low``'s pairs.

    Args:
        low: the weights used at ``beta < beta_switch``, over n pairs.
        high: the weights used at ``beta >= beta_switch``, over a subset of them.
        beta_switch: the temperature at which ``high`` takes over.
        high_index: for each of ``low``'s kept pairs, shape (n,), its index among
            ``high``'s kept pairs, or -1 for a pair that ``high`` does not weight
            (zero weight from ``beta_switch`` on). Every kept pair of ``high``
            must appear exactly once.

    Raises:
        ValueError: ``high_index`` has the wrong shape or does not map onto
            ``high``'s pairs one to one; ``beta_switch`` is not finite and > 0.
    """

    def __init__(
        self, low: SNISWeights, high: SNISWeights, beta_switch: float, high_index: np.ndarray
    ) -> None:
        high_index = np.asarray(high_index)
        if high_index.shape != (low.n,) or not np.issubdtype(high_index.dtype, np.integer):
            raise ValueError(
                f"high_index must be an integer array of shape ({low.n},), one entry per kept "
                f"pair of low; got {high_index.dtype} {high_index.shape}"
            )
        mapped = high_index[high_index >= 0]
        if mapped.size and mapped.max() >= high.n:
            raise ValueError(f"high_index points past high's {high.n} kept pairs")
        if not np.array_equal(np.bincount(mapped, minlength=high.n), np.ones(high.n, np.int64)):
            raise ValueError("high_index must name every kept pair of high exactly once")
        if not (np.isfinite(beta_switch) and beta_switch > 0):
            raise ValueError(f"beta_switch must be finite and > 0, got {beta_switch}")
        self.low, self.high = low, high
        self.beta_switch = float(beta_switch)
        self.high_index = high_index.astype(np.int64)
        self.n, self.kept, self.n_dropped, self.form = low.n, low.kept, low.n_dropped, low.form

    def log_weights(self, beta: object) -> np.ndarray:
        """Normalized log weights at each beta over ``low``'s kept pairs, shape (B, n)."""
        beta = _as_beta(beta)
        out = np.full((beta.size, self.n), -np.inf)
        below = beta < self.beta_switch
        if below.any():
            out[below] = self.low.log_weights(beta[below])
        if not below.all():
            rows = self.high_index >= 0
            high = self.high.log_weights(beta[~below])
            out[np.ix_(~below, rows)] = high[:, self.high_index[rows]]
        return out

    def log_weights_fn(self, beta: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Log normalized weight of pair ``index[j]`` at ``beta[j]`` (gbi-npe's contract)."""
        beta, index = self.low._checked_query(beta, index)
        out = np.full(beta.shape, -np.inf)
        below = beta < self.beta_switch
        if below.any():
            out[below] = self.low.log_weights_fn(beta[below], index[below])
        if not below.all():
            mapped = self.high_index[index]
            take = ~below & (mapped >= 0)
            if take.any():
                out[take] = self.high.log_weights_fn(beta[take], mapped[take])
        return out

    def diagnostics(self, beta: object, *, warn: bool = True) -> WeightDiagnostics:
        """Each temperature's diagnostics from the weights that serve it (``relative_ess``
        is over the pairs those weights cover: all pairs below the switch, ``high``'s
        from it on); warns as ``SNISWeights.diagnostics`` does for the temperatures
        ``high`` serves (the pool below the switch exists because ``high`` collapses
        there)."""
        beta = _as_beta(beta)
        below = beta < self.beta_switch
        parts = []
        if below.any():
            parts.append((below, self.low.diagnostics(beta[below], warn=False)))
        if not below.all():
            parts.append((~below, self.high.diagnostics(beta[~below], warn=warn)))
        picked = {}
        for name in ("ess", "relative_ess", "raw_ess", "k_hat", "truncated_fraction"):
            values = np.empty(beta.shape)
            for where, diag in parts:
                values[where] = getattr(diag, name)
            picked[name] = values
        return WeightDiagnostics(
            beta=beta,
            method=self.low.method,
            mixing_weight=self.low.mixing_weight,
            n=self.n,
            n_dropped=self.n_dropped,
            **picked,
        )
