"""Random-walk Metropolis–Hastings on a box, for power posteriors.

The target is the power posterior of a box-uniform prior,

    p_beta(theta)  ∝  1{low <= theta <= high} * exp(beta * log_likelihood(theta)),

so inside the box the prior cancels from every acceptance ratio.

The kernel has the BlackJAX shape: ``rwmh_init`` builds an ``RWMHState``
that caches the log-likelihood of each chain, ``rwmh_step(rng, state, beta,
...)`` is a pure function returning ``(state, info)``, the randomness is an
explicit ``numpy.random.Generator`` and ``beta`` is an argument of every
step (so parallel tempering reuses the same kernel at many temperatures).
Every array carries a leading chain axis: a batch of chains costs one
``log_likelihood_fn`` call per step.

``sample_rwmh`` is the driver: dispersed starts, Robbins–Monro tuning of the
step size during burn-in (then fixed), thinning, and diagnostics.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np

from gbi_eval import _kernels
from gbi_eval._validation import (
    LogLikelihoodFn,
    Seed,
    as_rng,
    check_beta,
    check_box,
    check_nonnegative_int,
    check_positions,
    check_positive_int,
    check_probability,
    evaluate_log_likelihood,
    limit_numba_threads,
)
from gbi_eval.diagnostics import SamplingResult, mcmc_diagnostics
from gbi_eval.tuning import (
    covariance_factor,
    draws_per_chain,
    pooled_draws,
    resampled_starts,
    robbins_monro_update,
)

Boundary = Literal["reflect", "reject"]


class RWMHState(NamedTuple):
    """The state of a batch of chains.

    Attributes:
        position: shape (n_chains, d), inside the box.
        log_likelihood: the cached ``log_likelihood_fn(position)``, shape (n_chains,), finite.
    """

    position: np.ndarray
    log_likelihood: np.ndarray


class RWMHInfo(NamedTuple):
    """What one step did.

    Attributes:
        acceptance_probability: min(1, Metropolis ratio) per chain, shape (n_chains,).
        is_accepted: whether each chain moved, shape (n_chains,).
        proposal: the proposed positions, shape (n_chains, d).
    """

    acceptance_probability: np.ndarray
    is_accepted: np.ndarray
    proposal: np.ndarray


def reflect(theta: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Fold points back into the box by mirror reflection at its faces.

    Each coordinate is reflected as often as needed (a jump of several box
    widths folds back correctly): with w = high - low and
    y = (theta - low) mod 2w, the result is low + y for y <= w and
    low + 2w - y otherwise.

    Args:
        theta: shape (..., d).
        low: shape (d,).
        high: shape (d,).

    Returns:
        The reflected points, same shape as ``theta``.

    Example:
        >>> reflect(np.array([[1.2, -0.5], [-3.5, 0.0]]), np.array([0.0, -1.0]), np.ones(2))
        array([[ 0.8, -0.5],
               [ 0.5,  0. ]])
    """
    theta = np.asarray(theta, dtype=np.float64)
    flat = np.ascontiguousarray(theta.reshape(-1, theta.shape[-1]))
    out = np.empty_like(flat)
    _kernels.reflect_into(flat, np.asarray(low, np.float64), np.asarray(high, np.float64), out)
    return out.reshape(theta.shape)


def rwmh_init(
    position: np.ndarray, log_likelihood_fn: LogLikelihoodFn, low: np.ndarray, high: np.ndarray
) -> RWMHState:
    """Build the state of a batch of chains, evaluating their log-likelihood once.

    Args:
        position: starting points, shape (n_chains, d), inside the box.
        log_likelihood_fn: theta (n, d) -> (n,).
        low: lower box corner, shape (d,).
        high: upper box corner, shape (d,).

    Raises:
        ValueError: a start outside the box or with a log-likelihood of ``-inf``.
    """
    low, high = check_box(low, high)
    position = check_positions(position, low, high, what="initial positions")
    log_likelihood = evaluate_log_likelihood(log_likelihood_fn, position)
    impossible = ~np.isfinite(log_likelihood)
    if np.any(impossible):
        row = int(np.flatnonzero(impossible)[0])
        raise ValueError(
            "every chain must start where the likelihood is positive; "
            f"{int(impossible.sum())} start(s) have log-likelihood -inf, first at row {row}: "
            f"{position[row].tolist()}"
        )
    return RWMHState(position, log_likelihood)


def rwmh_step(
    rng: np.random.Generator,
    state: RWMHState,
    beta: float | np.ndarray,
    log_likelihood_fn: LogLikelihoodFn,
    low: np.ndarray,
    high: np.ndarray,
    scale: np.ndarray,
    *,
    boundary: Boundary = "reflect",
) -> tuple[RWMHState, RWMHInfo]:
    """One random-walk Metropolis–Hastings step of every chain.

    Proposal theta' = theta + S z with z ~ N(0, I). With a diagonal S
    (``scale`` of shape (n_chains, d) or (d,)) the proposal is reflected at the
    box faces; the reflected Gaussian kernel is symmetric for axis-aligned
    steps, so the acceptance probability is
    min(1, exp(beta * (l(theta') - l(theta)))). A full factor S (``scale`` of
    shape (n_chains, d, d)) is not symmetric under reflection (reflecting one
    coordinate flips the sign of its correlations), so it requires
    ``boundary="reject"``: proposals outside the box are rejected.

    Args:
        rng: the source of randomness (advanced in place).
        state: the current ``RWMHState``.
        beta: inverse temperature, a float or one per chain, shape (n_chains,).
        log_likelihood_fn: theta (n, d) -> (n,); called once, on all chains.
        low: lower box corner, shape (d,).
        high: upper box corner, shape (d,).
        scale: proposal standard deviations, shape (d,) or (n_chains, d), or
            lower-triangular factors, shape (n_chains, d, d).
        boundary: ``"reflect"`` (diagonal scale only) or ``"reject"``.

    Returns:
        ``(new_state, info)``.
    """
    position, log_likelihood = state
    n_chains, d = position.shape
    z = rng.standard_normal((n_chains, d))
    if scale.ndim == 3:
        if boundary == "reflect":
            raise ValueError(
                "a full proposal factor (scale of shape (n_chains, d, d)) needs "
                "boundary='reject': reflection is only symmetric for axis-aligned steps"
            )
        proposal = position + np.einsum("cij,cj->ci", scale, z)
    else:
        proposal = position + scale * z
    if boundary == "reflect":
        _kernels.reflect_into(proposal, low, high, proposal)
        inside = None
    elif boundary == "reject":
        inside = np.all((proposal >= low) & (proposal <= high), axis=1)
        proposal = np.where(inside[:, None], proposal, position)
    else:
        raise ValueError(f"boundary must be 'reflect' or 'reject', got {boundary!r}")
    proposal_log_likelihood = np.asarray(log_likelihood_fn(proposal), dtype=np.float64)
    if proposal_log_likelihood.shape != (n_chains,):
        raise ValueError(
            f"log_likelihood_fn must return shape ({n_chains},) for theta of shape "
            f"{proposal.shape}, got {proposal_log_likelihood.shape}"
        )
    if inside is not None:
        proposal_log_likelihood = np.where(inside, proposal_log_likelihood, -np.inf)
    new_position = np.empty_like(position)
    new_log_likelihood = np.empty_like(log_likelihood)
    acceptance_probability = np.empty(n_chains)
    is_accepted = np.empty(n_chains, dtype=np.bool_)
    _kernels.metropolis_select(
        position,
        log_likelihood,
        proposal,
        proposal_log_likelihood,
        np.broadcast_to(np.asarray(beta, dtype=np.float64), (n_chains,)),
        np.log(rng.random(n_chains)),
        new_position,
        new_log_likelihood,
        acceptance_probability,
        is_accepted,
    )
    new_state = RWMHState(new_position, new_log_likelihood)
    return new_state, RWMHInfo(acceptance_probability, is_accepted, proposal)


def sample_rwmh(
    log_likelihood_fn: LogLikelihoodFn,
    low: np.ndarray,
    high: np.ndarray,
    beta: float,
    n: int,
    seed: Seed,
    *,
    n_chains: int = 64,
    n_burnin: int = 2000,
    thin: int = 10,
    target_acceptance: float = 0.3,
    initial_positions: np.ndarray | None = None,
    initial_scale: np.ndarray | None = None,
    adapt_covariance: bool = False,
    diagnostics_transform: Callable[[np.ndarray], np.ndarray] | None = None,
    diagnostics_notes: str = "",
    numba_threads: int | None = 1,
    warn: bool = True,
) -> SamplingResult:
    """Draw from the power posterior of a box prior with adaptive random-walk MH.

    Runs ``n_chains`` chains as one batch. Burn-in: each chain's step size is
    tuned by Robbins–Monro toward ``target_acceptance``. With
    ``adapt_covariance`` the second half of burn-in switches each chain to a
    full Gaussian proposal shaped like that chain's own draws from the second
    quarter, scaled by 2.38 / sqrt(d) and tuned again; full proposals reject
    moves that leave the box, axis-aligned ones reflect them (see
    ``rwmh_step``). After burn-in every scale is fixed and each chain keeps
    every ``thin``-th state until ceil(n / n_chains) are kept
    (at least 4, or 8 for a single chain, for split R-hat).

    Args:
        log_likelihood_fn: theta (m, d) -> (m,), ``-inf`` where impossible.
        low: lower box corner, shape (d,).
        high: upper box corner, shape (d,).
        beta: inverse temperature, > 0.
        n: draws to return, > 0.
        seed: int or ``numpy.random.Generator``.
        n_chains: chains run together (one likelihood call per step for all).
        n_burnin: tuning steps per chain, discarded.
        thin: steps between kept states.
        target_acceptance: the acceptance rate the tuning aims at.
        initial_positions: starts, shape (n_chains, d); default: prior draws
            resampled by L^beta (``resampled_starts``).
        initial_scale: initial proposal standard deviation per coordinate,
            shape (d,); default (high - low) / 6.
        adapt_covariance: learn a full proposal covariance per chain during burn-in.
        diagnostics_transform: a map applied to the chains (n_chains, n_draws, d)
            before R-hat / ESS (e.g. folding a known symmetry of the target).
        diagnostics_notes: stored in the diagnostics.
        numba_threads: numba threads while sampling (the likelihood is called on
            small batches, where threads only add overhead); ``None``: unchanged.
        warn: emit a ``ConvergenceWarning`` when R-hat > 1.01 or ESS < n / 10.

    Returns:
        ``SamplingResult`` with ``samples`` (n, d), ``chains``
        (n_chains, n_draws, d) and ``MCMCDiagnostics``.

    Example:
        >>> loglik = lambda theta: -0.5 * np.sum(theta**2, axis=1)
        >>> result = sample_rwmh(loglik, -5 * np.ones(2), 5 * np.ones(2), beta=1.0, n=1000,
        ...                      seed=0, n_chains=4, n_burnin=500, thin=5)
        >>> result.samples.shape, result.diagnostics.converged
        ((1000, 2), True)
    """
    low, high = check_box(low, high)
    beta = check_beta(beta)
    n = check_positive_int(n)
    n_chains = check_positive_int(n_chains, what="n_chains")
    n_burnin = check_nonnegative_int(n_burnin, what="n_burnin")
    thin = check_positive_int(thin, what="thin")
    target_acceptance = check_probability(target_acceptance, what="target_acceptance")
    rng = as_rng(seed)
    d = low.shape[0]
    width = high - low

    if initial_positions is not None and np.shape(initial_positions) != (n_chains, d):
        raise ValueError(
            f"initial_positions must have shape (n_chains, d) = ({n_chains}, {d}), "
            f"got {np.shape(initial_positions)}"
        )
    if initial_scale is None:
        initial_scale = width / 6.0
    else:
        initial_scale = np.asarray(initial_scale, dtype=np.float64)
        if initial_scale.shape != (d,) or not np.all(initial_scale > 0):
            raise ValueError(
                f"initial_scale must be positive with shape ({d},), got {initial_scale}"
            )
    with limit_numba_threads(numba_threads):
        if initial_positions is None:
            initial_positions = resampled_starts(log_likelihood_fn, low, high, beta, n_chains, rng)
        state = rwmh_init(initial_positions, log_likelihood_fn, low, high)
        chains, acceptance = _run_chains(
            rng,
            state,
            beta,
            log_likelihood_fn,
            low,
            high,
            initial_scale,
            n_burnin=n_burnin,
            thin=thin,
            n_draws=draws_per_chain(n, n_chains),
            target_acceptance=target_acceptance,
            adapt_covariance=adapt_covariance,
        )

    diagnosed = chains if diagnostics_transform is None else diagnostics_transform(chains)
    diagnostics = mcmc_diagnostics(
        diagnosed,
        acceptance,
        n_target=n,
        method="rwmh",
        notes=diagnostics_notes,
        warn=warn,
    )
    return SamplingResult(pooled_draws(chains, n, rng), diagnostics, chains)


def _max_log_factor(base: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Per chain, the log factor at which a proposal's std first reaches the box width."""
    std = np.sqrt(np.sum(base**2, axis=2)) if base.ndim == 3 else base
    return np.log(np.min(width / std, axis=1))


def _scaled(base: np.ndarray, log_factor: np.ndarray) -> np.ndarray:
    factor = np.exp(log_factor)
    return factor[:, None, None] * base if base.ndim == 3 else factor[:, None] * base


def _run_chains(
    rng: np.random.Generator,
    state: RWMHState,
    beta: float,
    log_likelihood_fn: LogLikelihoodFn,
    low: np.ndarray,
    high: np.ndarray,
    initial_scale: np.ndarray,
    *,
    n_burnin: int,
    thin: int,
    n_draws: int,
    target_acceptance: float,
    adapt_covariance: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Burn-in with tuning, then fixed-kernel sampling; (chains (c, m, d), acceptance (c,))."""
    n_chains, d = state.position.shape
    base = np.broadcast_to(initial_scale, (n_chains, d)).copy()
    log_factor = np.zeros(n_chains)
    boundary: Boundary = "reflect"
    switch = n_burnin // 2 if adapt_covariance and n_burnin >= 40 else -1
    history = np.empty((max(switch - switch // 2, 0), n_chains, d))
    clock = 0
    max_log_factor = _max_log_factor(base, high - low)
    for t in range(n_burnin):
        if t == switch:
            base = covariance_factor(history, high - low)
            max_log_factor = _max_log_factor(base, high - low)
            log_factor = np.minimum(math.log(2.38 / math.sqrt(d)), max_log_factor)
            boundary = "reject"
            clock = 0
        scale = _scaled(base, log_factor)
        state, info = rwmh_step(
            rng, state, beta, log_likelihood_fn, low, high, scale, boundary=boundary
        )
        log_factor = robbins_monro_update(
            log_factor, info.acceptance_probability, target_acceptance, clock
        )
        # near-flat targets accept almost any step: stop growing once steps span the box
        log_factor = np.minimum(log_factor, max_log_factor)
        clock += 1
        if switch > 0 and switch // 2 <= t < switch:
            history[t - switch // 2] = state.position

    scale = _scaled(base, log_factor)
    chains = np.empty((n_chains, n_draws, d))
    accepted = np.zeros(n_chains)
    for k in range(n_draws):
        for _ in range(thin):
            state, info = rwmh_step(
                rng, state, beta, log_likelihood_fn, low, high, scale, boundary=boundary
            )
            accepted += info.acceptance_probability
        chains[:, k] = state.position
    return chains, accepted / (n_draws * thin)
