"""Stabilizing importance weights: truncation, Pareto smoothing, defensive mixtures.

Each function takes log weights of shape (B, N) (one row per temperature) and
returns normalized, stabilized log weights of the same shape together with its
diagnostics, one value per row.

- Truncated importance sampling (Ionides 2008): the normalized weights are
  capped at ``sqrt(N)`` times their mean (``1 / sqrt(N)``) and renormalized.
- Pareto-smoothed importance sampling (Vehtari et al. 2024, JMLR 25(72)): the
  largest weights are replaced by expected order statistics of a generalized
  Pareto fit, through ArviZ's ``psislw``; its shape estimate ``k_hat`` says
  whether the weights are usable (k_hat < 0.7) or not.
- Defensive mixture (Hesterberg 1995): ``(1 - lam) w + lam / N``, a mixture
  of the target weights with the base distribution's uniform weights; it caps
  the loss of ESS at the price of a bias towards the base joint of size ``lam``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gbi_tempering.ess import normalize_log_weights

METHODS = ("none", "truncate", "psis", "defensive")


class Stabilized(NamedTuple):
    """Stabilized normalized log weights and diagnostics per row.

    Attributes:
        log_weights: shape (B, N), each row sums to one in exp space.
        truncated_fraction: shape (B,), share of weights capped (``truncate``).
        k_hat: shape (B,), generalized Pareto shape estimate (``psis``; NaN otherwise).
        mixing_weight: the defensive mixing weight (0 unless ``defensive``).
    """

    log_weights: np.ndarray
    truncated_fraction: np.ndarray
    k_hat: np.ndarray
    mixing_weight: float


def _as_rows(log_weights: np.ndarray) -> np.ndarray:
    lw = np.asarray(log_weights, dtype=np.float64)
    if lw.ndim != 2 or lw.shape[1] == 0:
        raise ValueError(f"log_weights must have shape (B, N) with N >= 1, got {lw.shape}")
    if np.any(np.isnan(lw)) or np.any(lw == np.inf):
        raise ValueError("log_weights contain NaN or +inf")
    return lw


def truncate(log_weights: np.ndarray) -> Stabilized:
    """Truncated IS: cap normalized weights at ``1/sqrt(N)`` (sqrt(N) times the mean)."""
    lw = normalize_log_weights(_as_rows(log_weights))
    n = lw.shape[1]
    cap = -0.5 * np.log(n)
    capped = lw > cap
    out = normalize_log_weights(np.minimum(lw, cap))
    nan = np.full(lw.shape[0], np.nan)
    return Stabilized(out, capped.mean(axis=1), nan, 0.0)


def pareto_smooth(log_weights: np.ndarray) -> Stabilized:
    """PSIS through ``arviz.psislw``; reports ``k_hat`` per row."""
    import arviz

    lw = normalize_log_weights(_as_rows(log_weights))
    # ArviZ's profile-likelihood fit of the Pareto shape exponentiates differences
    # of candidate log-likelihoods; an overflow there gives a candidate weight of
    # 0, which is the right value, so the warning says nothing to a user.
    with np.errstate(over="ignore"):
        smoothed, k_hat = arviz.psislw(lw.copy(), reff=1.0, normalize=True)
    smoothed = normalize_log_weights(np.asarray(smoothed, dtype=np.float64))
    k_hat = np.atleast_1d(np.asarray(k_hat, dtype=np.float64)).copy()
    constant = np.ptp(lw, axis=1) < 1e-12
    k_hat[constant | ~np.isfinite(k_hat)] = np.nan
    return Stabilized(smoothed, np.zeros(lw.shape[0]), k_hat, 0.0)


def defensive(log_weights: np.ndarray, mixing_weight: float) -> Stabilized:
    """Defensive mixture ``(1 - lam) w + lam / N`` with ``lam = mixing_weight`` in (0, 1)."""
    if not 0.0 < mixing_weight < 1.0:
        raise ValueError(f"mixing_weight must lie in (0, 1), got {mixing_weight}")
    lw = normalize_log_weights(_as_rows(log_weights))
    n = lw.shape[1]
    out = np.logaddexp(np.log1p(-mixing_weight) + lw, np.log(mixing_weight) - np.log(n))
    nan = np.full(lw.shape[0], np.nan)
    return Stabilized(out, np.zeros(lw.shape[0]), nan, float(mixing_weight))


def stabilize(
    log_weights: np.ndarray, method: str = "none", mixing_weight: float = 0.1
) -> Stabilized:
    """Apply one stabilization ``method`` (one of ``METHODS``) to rows of log weights."""
    if method == "none":
        lw = normalize_log_weights(_as_rows(log_weights))
        nan = np.full(lw.shape[0], np.nan)
        return Stabilized(lw, np.zeros(lw.shape[0]), nan, 0.0)
    if method == "truncate":
        return truncate(log_weights)
    if method == "psis":
        return pareto_smooth(log_weights)
    if method == "defensive":
        return defensive(log_weights, mixing_weight)
    raise ValueError(f"unknown stabilization {method!r}; choose one of {', '.join(METHODS)}")
