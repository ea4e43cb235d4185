r"""Annealed Langevin synthesis of tempered pairs (paper §4.1, Route A, Phase II).

Target: the tempered joint ``p_beta(theta, x) ∝ prior(theta) p(x | theta)^beta``,
whose conditional of theta given x is the power posterior. With a joint score
model ``s(theta, x, sigma) ≈ ∇_(theta, x) log p_sigma(theta, x)`` of the base
joint, its gradient is (paper eq. 5)

    g = beta * s(theta, x, sigma) - (beta - 1) * (∇_theta log prior(theta), 0),

where ``∇ log prior`` is zero inside a box-uniform prior. Starting from
base-joint pairs, each noise level ``sigma_l`` of a decreasing ladder runs
``steps_per_level`` updates

    z <- z + eta_l g(z) + sqrt(2 eta_l) xi,   eta_l = step_scale * sigma_l^2,

(Song & Ermon 2019's annealed Langevin schedule: step sizes proportional to
sigma^2, so the step relative to the level's noise variance is constant and
stable at every level), and theta is reflected back into the prior box after every update.

BlackJAX shape: ``init`` builds a ``LangevinState``; ``step(rng, state, beta,
sigma, step_size, score_fn, low, high)`` is pure and returns
``(state, LangevinInfo)``; ``synthesize`` runs the ladder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

ScoreFn = Callable[[np.ndarray, np.ndarray, float], np.ndarray]
PriorScoreFn = Callable[[np.ndarray], np.ndarray]


class LangevinState(NamedTuple):
    """Pairs being moved: theta (n, d_theta), x (n, d_x)."""

    theta: np.ndarray
    x: np.ndarray


class LangevinInfo(NamedTuple):
    """Diagnostics of one step.

    Attributes:
        score_norm_mean: mean Euclidean norm of the drift ``g`` over pairs.
        score_norm_max: its maximum.
        reflected_fraction: share of pairs whose theta was reflected at the box.
    """

    score_norm_mean: float
    score_norm_max: float
    reflected_fraction: float


class LangevinDiagnostics(NamedTuple):
    """Per-level summaries of a ``synthesize`` run, each of shape (L,)."""

    sigmas: np.ndarray
    step_sizes: np.ndarray
    score_norm_mean: np.ndarray
    score_norm_max: np.ndarray
    reflected_fraction: np.ndarray


def reflect(theta: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reflect ``theta`` (n, d) into the box ``[low, high]`` (folding, any distance).

    Returns:
        the reflected theta and a (n,) mask of rows that needed reflection.
    """
    width = high - low
    outside = np.any((theta < low) | (theta > high), axis=1)
    u = np.mod(theta - low, 2.0 * width)
    folded = low + np.where(u > width, 2.0 * width - u, u)
    return np.where(outside[:, None], folded, theta), outside


def init(theta: np.ndarray, x: np.ndarray) -> LangevinState:
    """Start from base-joint pairs ``theta`` (n, d_theta) and ``x`` (n, d_x)."""
    theta = np.array(theta, dtype=np.float64, ndmin=2)
    x = np.array(x, dtype=np.float64, ndmin=2)
    if theta.ndim != 2 or x.ndim != 2 or theta.shape[0] != x.shape[0]:
        raise ValueError(
            f"theta and x must be (n, d_theta) and (n, d_x) with the same n, got "
            f"{theta.shape} and {x.shape}"
        )
    if theta.shape[0] == 0:
        raise ValueError("theta and x are empty")
    if not (np.isfinite(theta).all() and np.isfinite(x).all()):
        raise ValueError("theta and x must be finite")
    return LangevinState(theta, x)


def step(
    rng: np.random.Generator,
    state: LangevinState,
    beta: np.ndarray,
    sigma: float,
    step_size: float,
    score_fn: ScoreFn,
    low: np.ndarray,
    high: np.ndarray,
    prior_score_fn: PriorScoreFn | None = None,
) -> tuple[LangevinState, LangevinInfo]:
    """One Langevin update of every pair (pure: returns a new state).

    Args:
        rng: source of the Gaussian noise.
        state: current pairs.
        beta: temperature per pair, shape (n,).
        sigma: noise level passed to ``score_fn``.
        step_size: eta.
        score_fn: ``score_fn(theta, x, sigma) -> (n, d_theta + d_x)`` joint score.
        low, high: prior box, shape (d_theta,).
        prior_score_fn: ``∇_theta log prior(theta) -> (n, d_theta)``; ``None`` means
            a box-uniform prior (zero inside the box).
    """
    theta, x = state
    d = theta.shape[1]
    score = np.asarray(score_fn(theta, x, sigma), dtype=np.float64)
    if score.shape != (theta.shape[0], d + x.shape[1]):
        raise ValueError(
            f"score_fn must return shape {(theta.shape[0], d + x.shape[1])}, got {score.shape}"
        )
    if not np.isfinite(score).all():
        raise ValueError(f"score_fn returned non-finite values at sigma={sigma}")
    drift = beta[:, None] * score
    if prior_score_fn is not None:
        drift[:, :d] -= (beta - 1.0)[:, None] * np.asarray(prior_score_fn(theta))
    noise = rng.standard_normal(drift.shape)
    z = np.concatenate([theta, x], axis=1) + step_size * drift + np.sqrt(2.0 * step_size) * noise
    new_theta, reflected = reflect(z[:, :d], low, high)
    norms = np.linalg.norm(drift, axis=1)
    info = LangevinInfo(float(norms.mean()), float(norms.max()), float(reflected.mean()))
    return LangevinState(new_theta, z[:, d:]), info


def synthesize(
    score_fn: ScoreFn,
    theta: np.ndarray,
    x: np.ndarray,
    beta: np.ndarray | float,
    low: np.ndarray,
    high: np.ndarray,
    *,
    sigmas: np.ndarray,
    steps_per_level: int = 20,
    step_scale: float = 0.1,
    seed: int | np.random.Generator = 0,
    prior_score_fn: PriorScoreFn | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, LangevinDiagnostics]:
    """Move base-joint pairs to the tempered joint at each pair's beta.

    Args:
        score_fn: ``score_fn(theta, x, sigma) -> (n, d_theta + d_x)``.
        theta: starting parameters, shape (n, d_theta), inside the box.
        x: starting data, shape (n, d_x).
        beta: temperature, scalar or shape (n,), > 0.
        low, high: prior box, shape (d_theta,).
        sigmas: the noise ladder, decreasing, shape (L,).
        steps_per_level: Langevin steps at each level.
        step_scale: ``eta_l = step_scale * sigma_l^2`` (dimensionless; below 1).
        seed: int or Generator.
        prior_score_fn: gradient of a non-uniform log prior, if any.
        progress: show a progress bar over levels.

    Returns:
        theta (n, d_theta), x (n, d_x), and per-level ``LangevinDiagnostics``.
    """
    state = init(theta, x)
    n, d = state.theta.shape
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    if low.shape != (d,) or high.shape != (d,) or not np.all(high > low):
        raise ValueError(f"low and high must have shape ({d},) with high > low")
    beta_arr = np.broadcast_to(np.asarray(beta, dtype=np.float64), (n,)).copy()
    if not np.all(np.isfinite(beta_arr)) or np.any(beta_arr <= 0):
        raise ValueError("beta must be finite and > 0")
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.ndim != 1 or sigmas.size == 0 or np.any(sigmas <= 0) or np.any(np.diff(sigmas) > 0):
        raise ValueError("sigmas must be a non-empty, positive, decreasing 1-D array")
    if steps_per_level < 1 or step_scale <= 0:
        raise ValueError("steps_per_level must be >= 1 and step_scale > 0")
    if not np.all((state.theta >= low) & (state.theta <= high)):
        raise ValueError("starting theta must lie inside the prior box")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    step_sizes = step_scale * sigmas**2
    means, maxes, reflected = [], [], []
    levels = range(sigmas.size)
    if progress:
        from tqdm.auto import tqdm

        levels = tqdm(levels, desc="Langevin synthesis", unit="level")
    for level in levels:
        infos = []
        for _ in range(steps_per_level):
            state, info = step(
                rng,
                state,
                beta_arr,
                float(sigmas[level]),
                float(step_sizes[level]),
                score_fn,
                low,
                high,
                prior_score_fn,
            )
            infos.append(info)
        means.append(np.mean([i.score_norm_mean for i in infos]))
        maxes.append(np.max([i.score_norm_max for i in infos]))
        reflected.append(np.mean([i.reflected_fraction for i in infos]))
    diagnostics = LangevinDiagnostics(
        sigmas, step_sizes, np.array(means), np.array(maxes), np.array(reflected)
    )
    return state.theta, state.x, diagnostics
