"""Burn-in tuning and starting points shared by the MCMC samplers.

Robbins–Monro adaptation of proposal scales (used during burn-in only, then
frozen so the kernel stays a fixed Markov chain), per-chain covariance
estimates for full proposals, dispersed starting points, and the pooling of
kept draws.
"""

from __future__ import annotations

import numpy as np

from gbi_eval._validation import LogLikelihoodFn, Seed, as_rng, check_box, evaluate_log_likelihood


def robbins_monro_update(
    log_scale: np.ndarray,
    acceptance_probability: np.ndarray,
    target: float,
    iteration: int,
    *,
    decay: float = 0.6,
) -> np.ndarray:
    """One Robbins–Monro step on the log of a proposal scale.

    log s_{t+1} = log s_t + (t + 1)^(-decay) * (a_t - target), with a_t the
    acceptance probability of step t. The gains sum to infinity and their
    squares do not (0.5 < decay <= 1), so s_t settles where the mean
    acceptance equals ``target``. Used during burn-in only; the scale is then
    fixed, which keeps the kernel a valid Markov chain.

    Args:
        log_scale: current log scale factor(s), any shape broadcastable with
            ``acceptance_probability``.
        acceptance_probability: the latest acceptance probabilities.
        target: the acceptance rate aimed at, in (0, 1).
        iteration: t, counted from 0 since adaptation (re)started.
        decay: the gain exponent, in (0.5, 1].

    Returns:
        The updated log scale.
    """
    return log_scale + (iteration + 1.0) ** (-decay) * (acceptance_probability - target)


def resampled_starts(
    log_likelihood_fn: LogLikelihoodFn,
    low: np.ndarray,
    high: np.ndarray,
    beta: float,
    n_chains: int,
    seed: Seed,
    *,
    n_candidates: int = 4096,
) -> np.ndarray:
    """Dispersed starting points: prior draws resampled with weights L(theta)^beta.

    Draws ``n_candidates`` points uniformly in the box and picks ``n_chains`` of
    them by systematic resampling with weights proportional to
    exp(beta * l(theta)) (sampling-importance-resampling from the prior). The
    starts spread over the whole posterior, every mode roughly in proportion
    to its mass, and all have a finite log-likelihood.

    Returns:
        shape (n_chains, d).

    Raises:
        RuntimeError: no candidate has a finite log-likelihood.
    """
    low, high = check_box(low, high)
    rng = as_rng(seed)
    candidates = low + (high - low) * rng.random((n_candidates, low.shape[0]))
    log_weights = beta * evaluate_log_likelihood(log_likelihood_fn, candidates)
    if not np.any(np.isfinite(log_weights)):
        raise RuntimeError(
            f"none of {n_candidates} prior draws has a finite log-likelihood; pass "
            "initial_positions explicitly"
        )
    weights = np.exp(log_weights - np.max(log_weights))
    cumulative = np.cumsum(weights / weights.sum())
    cumulative[-1] = 1.0
    points = (rng.random() + np.arange(n_chains)) / n_chains
    index = np.minimum(np.searchsorted(cumulative, points, side="left"), n_candidates - 1)
    return candidates[rng.permutation(index)]


def covariance_factor(history: np.ndarray, width: np.ndarray, shrinkage: float = 0.1) -> np.ndarray:
    """Per-chain Cholesky factors of the burn-in covariance, shrunk toward its diagonal.

    history: (t, c, d) -> factors (c, d, d). A small multiple of the box width
    keeps a chain that never moved from a singular factor.
    """
    centered = history - history.mean(axis=0)
    cov = np.einsum("tci,tcj->cij", centered, centered) / max(history.shape[0] - 1, 1)
    diag = np.einsum("cii->ci", cov)
    cov = (1.0 - shrinkage) * cov
    idx = np.arange(cov.shape[1])
    cov[:, idx, idx] += shrinkage * diag + (1e-6 * width) ** 2
    return np.linalg.cholesky(cov)


def top_likelihood_starts(
    log_likelihood_fn: LogLikelihoodFn,
    low: np.ndarray,
    high: np.ndarray,
    n_ladders: int,
    n_rungs: int,
    seed: Seed,
    *,
    n_candidates: int = 2048,
) -> np.ndarray:
    """Ladder starts: the highest-likelihood of ``n_candidates`` prior draws.

    The n_ladders * n_rungs best candidates (at least ``n_candidates`` are
    drawn, more if needed) are dealt out so that the colder a rung, the better
    its start, and every ladder gets starts of similar quality.

    Returns:
        shape (n_ladders, n_rungs, d).
    """
    low, high = check_box(low, high)
    rng = as_rng(seed)
    m = max(n_candidates, 4 * n_ladders * n_rungs)
    candidates = low + (high - low) * rng.random((m, low.shape[0]))
    log_likelihood = evaluate_log_likelihood(log_likelihood_fn, candidates)
    order = np.argsort(-log_likelihood, kind="stable")[: n_ladders * n_rungs]
    if not np.all(np.isfinite(log_likelihood[order])):
        raise RuntimeError(
            f"fewer than {n_ladders * n_rungs} of {m} prior draws have a finite "
            "log-likelihood; pass initial_positions explicitly"
        )
    # best -> coldest rung; within a rung, consecutive candidates go to different ladders
    best_first = candidates[order].reshape(n_rungs, n_ladders, -1)
    return best_first[::-1].transpose(1, 0, 2).copy()


def draws_per_chain(n: int, n_chains: int) -> int:
    """Kept draws per chain for n draws in all: ceil(n / n_chains), at least 4 (8 for one chain).

    The minimum is what split R-hat needs (two halves of at least two draws per chain).
    """
    return max(-(-n // n_chains), 4 if n_chains > 1 else 8)


def pooled_draws(chains: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from chains (c, m, d): the first draws of every chain, shuffled.

    Keeps draws 0..k-1 of every chain, where k = ceil(n / c), dropping surplus
    draws from the last ones, so every chain contributes (almost) equally.
    """
    c, m, d = chains.shape
    # Chains in random order first: when n is not a multiple of c, which chains
    # give one draw fewer (for n < c: which chains give any) must be random, or
    # n = 1 would always return chain 0 (on two_moons: always one side of the fold).
    order = rng.permutation(c)
    by_draw = chains[order].transpose(1, 0, 2).reshape(c * m, d)[:n]
    return by_draw[rng.permutation(by_draw.shape[0])]
