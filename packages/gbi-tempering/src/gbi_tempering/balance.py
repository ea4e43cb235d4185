r"""Does a surrogate's log-ratio hold far from the data? A check that needs no exact ratio.

For the exact likelihood-to-evidence ratio ``r(theta, x) = p(x | theta) / p(x)``
and any beta, the product of marginals and the joint give the same integral:

    E_{p(theta) p(x)}[r^beta] = ∫∫ p(theta) p(x)^(1 - beta) p(x | theta)^beta
                              = E_{p(theta, x)}[r^(beta - 1)].

A contrastive pool (gbi's Route B pool, ``routes.contrastive_pool``) holds draws
of both: each x with its own theta (the joint) and with other base parameters
(the product of marginals). Estimated on them with the surrogate's log-ratio
``s``, the log of the left side over the right side,

    excess(beta) = log mean_partners exp(beta s) - log mean_own exp((beta - 1) s),

is 0 up to sampling noise for a correct ratio. It is the log of the share of
the pool's weight ``r^beta / (r + M)`` that the prior draws carry over their
due share (where ``r`` is far below M for a partner and far above it for an own
theta). A classifier whose log-ratio saturates far from the data (it never
needs to tell how unlikely a far pair is, only that it is) gives ratios that
are far too large there, and a positive excess at small beta: the pool's
small-beta posteriors come out too broad.

Each mean's relative standard error is ``sqrt(1 / ESS - 1 / n)`` (the
delta method, with Kish's ESS of its terms), so the excess carries the
standard error of their sum; heavy tails make the own rows' mean at small beta
rest on few terms, which that ESS shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from gbi_tempering.ess import ess


@dataclass(frozen=True)
class PoolExcess:
    """The pool check per temperature.

    Attributes:
        beta: temperatures, shape (B,).
        excess: ``log mean_partners r^beta - log mean_own r^(beta - 1)``, shape (B,).
        standard_error: its delta-method standard error, shape (B,).
        partner_ess: Kish's ESS of the partners' terms ``r^beta``, shape (B,).
        own_ess: Kish's ESS of the own rows' terms ``r^(beta - 1)``, shape (B,).
    """

    beta: np.ndarray
    excess: np.ndarray
    standard_error: np.ndarray
    partner_ess: np.ndarray
    own_ess: np.ndarray

    def to_dict(self) -> dict[str, list[float]]:
        return {name: getattr(self, name).tolist() for name in self.__dataclass_fields__}


def _finite_scores(scores: object, name: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"{name} must have shape (n,), got {scores.shape}")
    scores = scores[np.isfinite(scores)]
    if scores.size < 2:
        raise ValueError(f"{name} needs at least 2 finite log-ratios, got {scores.size}")
    return scores


def pool_excess(own_scores: object, partner_scores: object, beta: object) -> PoolExcess:
    """The pool check ``excess(beta)`` (module docstring) from a surrogate's log-ratios.

    Args:
        own_scores: log-ratios of the matched pairs (each x with its own theta), (n,).
        partner_scores: log-ratios of x with other, independent base parameters, (m,).
        beta: temperatures, scalar or (B,), all > 0.

    Returns:
        a ``PoolExcess`` over ``beta``. Non-finite scores are left out (a
        surrogate's NaN is a failed pair, as ``SNISWeights`` drops it).

    Raises:
        ValueError: scores not one-dimensional or with fewer than 2 finite
            values, or a temperature that is not finite and positive.
    """
    own = _finite_scores(own_scores, "own_scores")
    partners = _finite_scores(partner_scores, "partner_scores")
    beta = np.atleast_1d(np.asarray(beta, dtype=np.float64))
    if beta.ndim != 1 or not np.all(np.isfinite(beta) & (beta > 0)):
        raise ValueError(f"beta must be finite and positive, shape (B,); got {beta!r}")
    log_partner = beta[:, None] * partners[None, :]  # (B, m)
    log_own = (beta[:, None] - 1.0) * own[None, :]  # (B, n)
    excess = (logsumexp(log_partner, axis=1) - np.log(partners.size)) - (
        logsumexp(log_own, axis=1) - np.log(own.size)
    )
    partner_ess, own_ess = ess(log_partner, axis=1), ess(log_own, axis=1)
    variance = (1 / partner_ess - 1 / partners.size) + (1 / own_ess - 1 / own.size)
    return PoolExcess(
        beta=beta,
        excess=excess,
        standard_error=np.sqrt(np.maximum(variance, 0.0)),
        partner_ess=partner_ess,
        own_ess=own_ess,
    )


@dataclass(frozen=True)
class LowRatios:
    """Matched pairs whose log-ratio lies where the exact ratio almost never does.

    Attributes:
        floor: ``-(log n + 3)``, with ``n`` the number of finite scores.
        count: scores below ``floor``.
        lowest: the lowest scores below it, ascending (at most 5), shape (k,).
        n: finite scores checked.
    """

    floor: float
    count: int
    lowest: np.ndarray
    n: int

    def to_dict(self) -> dict[str, float | int | list[float]]:
        return {
            "floor": self.floor,
            "count": self.count,
            "lowest": self.lowest.tolist(),
            "n": self.n,
        }


def low_ratios(own_scores: np.ndarray) -> LowRatios:
    r"""The matched pairs' log-ratios below ``-(log n + 3)``: a surrogate's misjudged pairs.

    For the exact ratio ``r`` and pairs drawn from the joint, ``E[1 / r] =
    ∫∫ p(theta) p(x) = 1``, so by Markov's inequality ``P(log r < -t) <=
    exp(-t)``: among ``n`` matched pairs the expected number below ``-(log n +
    3)`` is at most ``exp(-3) ≈ 0.05``. A surrogate that scores pairs there
    misjudges them, and at ``beta < 1`` their weights ``r^(beta - 1)`` are the
    largest of all: a few such pairs carry the whole weight (a lorenz96 NLE at
    10k simulations put 96 % of the beta = 0.1 weight on one pair scored -49
    whose exact score, by the same contrastive evidence, is +2.2).

    Args:
        own_scores: log-ratios of matched pairs, shape (n,); non-finite ones
            are left out (the weights drop them too).

    Returns:
        a ``LowRatios``.

    Raises:
        ValueError: not one-dimensional, or no finite score.
    """
    scores = np.asarray(own_scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"own_scores must have shape (n,), got {scores.shape}")
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        raise ValueError("own_scores holds no finite score")
    floor = -(float(np.log(scores.size)) + 3.0)
    below = np.sort(scores[scores < floor])
    return LowRatios(floor=floor, count=int(below.size), lowest=below[:5], n=int(scores.size))
