"""Parallel tempering (replica exchange) on a box, for multimodal power posteriors.

A ladder of inverse temperatures beta_min = b_0 < b_1 < ... < b_{R-1} = beta
(hot to cold) runs one random-walk chain per rung, each targeting
p_{b_r}(theta) ∝ 1{theta in box} exp(b_r l(theta)). Hot rungs cross between
modes; swaps hand their states down to the cold rung. Swapping the states of
rungs r and r + 1 is accepted with probability

    min(1, exp((b_{r+1} - b_r) * (l(theta_r) - l(theta_{r+1})))),

which keeps the product of the rung targets invariant. Swaps alternate
between the even pairs (0, 1), (2, 3), ... and the odd pairs (1, 2), (3, 4),
... (the deterministic even–odd scheme), so a state can travel the whole
ladder in R iterations.

Several independent ladders run as one batch (axis 0 of every array), so one
``log_likelihood_fn`` call serves every rung of every ladder; their cold rungs
are the chains the diagnostics compare. Same BlackJAX shape as ``mcmc``:
``pt_init``, a pure ``pt_step(rng, state, betas, ...)``, the ladder passed in.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from gbi_eval._validation import (
    Seed,
    as_rng,
    check_beta,
    check_box,
    check_nonnegative_int,
    check_positive_int,
    check_probability,
    limit_numba_threads,
)
from gbi_eval.diagnostics import SamplingResult, mcmc_diagnostics
from gbi_eval.mcmc import Boundary, LogLikelihoodFn, RWMHState, rwmh_init, rwmh_step
from gbi_eval.tuning import (
    draws_per_chain,
    pooled_draws,
    robbins_monro_update,
    top_likelihood_starts,
)


class PTState(NamedTuple):
    """The state of a batch of ladders.

    Attributes:
        position: shape (n_ladders, n_rungs, d); rung 0 is the hottest.
        log_likelihood: cached, shape (n_ladders, n_rungs), finite.
    """

    position: np.ndarray
    log_likelihood: np.ndarray


class PTInfo(NamedTuple):
    """What one iteration (local moves, then one swap sweep) did.

    Attributes:
        acceptance_probability: mean local acceptance probability over the
            local steps, shape (n_ladders, n_rungs).
        swap_attempted: which pairs (r, r + 1) were proposed, shape (n_rungs - 1,).
        swap_accepted: which swaps happened, shape (n_ladders, n_rungs - 1);
            False for pairs not attempted.
    """

    acceptance_probability: np.ndarray
    swap_attempted: np.ndarray
    swap_accepted: np.ndarray


def geometric_ladder(beta_min: float, beta: float, n_rungs: int) -> np.ndarray:
    """Inverse temperatures spaced geometrically from ``beta_min`` to ``beta``, hot to cold.

    b_r = beta_min * (beta / beta_min)^(r / (R - 1)), r = 0, ..., R - 1.

    Example:
        >>> geometric_ladder(0.01, 1.0, 3)
        array([0.01, 0.1 , 1.  ])
    """
    beta = check_beta(beta)
    beta_min = check_beta(beta_min)
    n_rungs = check_positive_int(n_rungs, what="n_rungs")
    if n_rungs < 2:
        raise ValueError(f"a tempering ladder needs n_rungs >= 2, got {n_rungs}")
    if not beta_min < beta:
        raise ValueError(f"beta_min must be below beta, got beta_min={beta_min}, beta={beta}")
    return np.geomspace(beta_min, beta, n_rungs)


def pt_init(
    position: np.ndarray, log_likelihood_fn: LogLikelihoodFn, low: np.ndarray, high: np.ndarray
) -> PTState:
    """Build the state of ``n_ladders`` ladders from positions (n_ladders, n_rungs, d).

    Raises:
        ValueError: a start outside the box or with log-likelihood ``-inf``.
    """
    position = np.asarray(position, dtype=np.float64)
    if position.ndim != 3:
        raise ValueError(
            f"parallel tempering positions must have shape (n_ladders, n_rungs, d), got "
            f"{position.shape}"
        )
    n_ladders, n_rungs, d = position.shape
    flat = rwmh_init(position.reshape(n_ladders * n_rungs, d), log_likelihood_fn, low, high)
    return PTState(
        flat.position.reshape(n_ladders, n_rungs, d),
        flat.log_likelihood.reshape(n_ladders, n_rungs),
    )


def pt_step(
    rng: np.random.Generator,
    state: PTState,
    betas: np.ndarray,
    log_likelihood_fn: LogLikelihoodFn,
    low: np.ndarray,
    high: np.ndarray,
    scale: np.ndarray,
    *,
    swap_parity: int,
    n_local_steps: int = 5,
    boundary: Boundary = "reflect",
) -> tuple[PTState, PTInfo]:
    """One parallel-tempering iteration: local RW-MH moves, then one swap sweep.

    Args:
        rng: the source of randomness (advanced in place).
        state: the current ``PTState``.
        betas: the ladder, hot to cold, shape (n_rungs,).
        log_likelihood_fn: theta (m, d) -> (m,); called once per local step on
            every rung of every ladder.
        low: lower box corner, shape (d,).
        high: upper box corner, shape (d,).
        scale: proposal standard deviation per rung and coordinate, shape
            (n_rungs, d) (shared by the ladders) or (n_ladders, n_rungs, d).
        swap_parity: 0 proposes the pairs (0, 1), (2, 3), ...; 1 the pairs
            (1, 2), (3, 4), ...
        n_local_steps: random-walk steps of every rung before the swaps.
        boundary: how local moves treat the box (see ``mcmc.rwmh_step``).

    Returns:
        ``(new_state, info)``.
    """
    n_ladders, n_rungs, d = state.position.shape
    flat_scale = np.broadcast_to(scale, (n_ladders, n_rungs, d)).reshape(-1, d)
    flat_beta = np.broadcast_to(betas, (n_ladders, n_rungs)).reshape(-1)
    local = RWMHState(state.position.reshape(-1, d), state.log_likelihood.reshape(-1))
    acceptance = np.zeros(n_ladders * n_rungs)
    for _ in range(n_local_steps):
        local, info = rwmh_step(
            rng, local, flat_beta, log_likelihood_fn, low, high, flat_scale, boundary=boundary
        )
        acceptance += info.acceptance_probability
    # fresh arrays (the input state is never modified, even with no local step)
    position = local.position.reshape(n_ladders, n_rungs, d)
    log_likelihood = local.log_likelihood.reshape(n_ladders, n_rungs)
    if n_local_steps == 0:
        position, log_likelihood = position.copy(), log_likelihood.copy()

    lower = np.arange(swap_parity % 2, n_rungs - 1, 2)  # pairs (r, r + 1)
    upper = lower + 1
    gap = log_likelihood[:, lower] - log_likelihood[:, upper]
    log_ratio = (betas[upper] - betas[lower]) * gap
    swap = np.log(rng.random(log_ratio.shape)) < log_ratio  # (n_ladders, n_pairs)
    if lower.size:
        ladder, pair = np.nonzero(swap)
        lo, up = lower[pair], upper[pair]
        position[ladder, lo], position[ladder, up] = position[ladder, up], position[ladder, lo]
        log_likelihood[ladder, lo], log_likelihood[ladder, up] = (
            log_likelihood[ladder, up],
            log_likelihood[ladder, lo],
        )
    attempted = np.zeros(n_rungs - 1, dtype=bool)
    attempted[lower] = True
    accepted = np.zeros((n_ladders, n_rungs - 1), dtype=bool)
    accepted[:, lower] = swap
    info = PTInfo(
        (acceptance / max(n_local_steps, 1)).reshape(n_ladders, n_rungs), attempted, accepted
    )
    return PTState(position, log_likelihood), info


def parallel_tempering(
    log_likelihood_fn: LogLikelihoodFn,
    low: np.ndarray,
    high: np.ndarray,
    beta: float,
    n: int,
    seed: Seed,
    *,
    n_rungs: int = 16,
    beta_min: float = 0.01,
    n_ladders: int = 16,
    n_local_steps: int = 5,
    n_burnin: int = 1000,
    thin: int = 1,
    target_acceptance: float = 0.25,
    initial_positions: np.ndarray | None = None,
    initial_scale: np.ndarray | None = None,
    n_init_candidates: int = 2048,
    numba_threads: int | None = 1,
    warn: bool = True,
) -> SamplingResult:
    """Draw from a (multimodal) power posterior with parallel tempering.

    Each iteration runs ``n_local_steps`` random-walk steps on every rung,
    then one even–odd swap sweep (parities alternate). During the
    ``n_burnin`` iterations each rung's step size starts at
    ``initial_scale / sqrt(b_r)`` and is tuned by Robbins–Monro toward
    ``target_acceptance`` (averaged over ladders); then it is fixed and each
    ladder keeps its cold-rung state every ``thin`` iterations until
    ceil(n / n_ladders) (at least 4; 8 for one ladder) are kept. Total iterations:
    n_burnin + thin * ceil(n / n_ladders); the paper's protocol (App. D) is
    n_ladders=1, n_rungs=200, n_burnin=5000, thin=1, n=10000.

    Args:
        log_likelihood_fn: theta (m, d) -> (m,), ``-inf`` where impossible.
        low: lower box corner, shape (d,).
        high: upper box corner, shape (d,).
        beta: the target (coldest) inverse temperature, > beta_min.
        n: draws to return, > 0.
        seed: int or ``numpy.random.Generator``.
        n_rungs: ladder size R.
        beta_min: the hottest inverse temperature.
        n_ladders: independent ladders run as one batch.
        n_local_steps: local steps per rung between swap sweeps.
        n_burnin: tuning iterations, discarded.
        thin: iterations between kept cold-rung states.
        target_acceptance: local acceptance rate the tuning aims at.
        initial_positions: starts, shape (n_ladders, n_rungs, d); default
            ``top_likelihood_starts``.
        initial_scale: proposal standard deviation per coordinate at beta = 1,
            shape (d,); default (high - low) / 30 (0.2 on slcp's [-3, 3] box).
        n_init_candidates: prior draws screened for the default starts.
        numba_threads: numba threads while sampling (see ``sample_rwmh``).
        warn: emit a ``ConvergenceWarning`` when R-hat > 1.01 or ESS < n / 10.

    Returns:
        ``SamplingResult`` with ``samples`` (n, d), ``chains`` (the cold rung of
        every ladder, (n_ladders, n_draws, d)) and ``MCMCDiagnostics`` including
        swap rates per adjacent pair.

    Example:
        >>> loglik = lambda theta: -0.5 * np.sum((np.abs(theta) - 2.0) ** 2, axis=1) / 0.1
        >>> result = parallel_tempering(loglik, -4 * np.ones(1), 4 * np.ones(1), 1.0, 1000,
        ...                             seed=0, n_rungs=4, n_ladders=4, n_burnin=200, thin=4)
        >>> result.samples.shape, result.diagnostics.swap_rates.shape
        ((1000, 1), (3,))
        >>> bool(0.4 < np.mean(result.samples > 0) < 0.6)  # both modes, equal mass
        True
    """
    low, high = check_box(low, high)
    beta = check_beta(beta)
    n = check_positive_int(n)
    n_ladders = check_positive_int(n_ladders, what="n_ladders")
    n_local_steps = check_positive_int(n_local_steps, what="n_local_steps")
    n_burnin = check_nonnegative_int(n_burnin, what="n_burnin")
    thin = check_positive_int(thin, what="thin")
    target_acceptance = check_probability(target_acceptance, what="target_acceptance")
    betas = geometric_ladder(beta_min, beta, n_rungs)
    rng = as_rng(seed)
    d = low.shape[0]
    width = high - low

    if initial_positions is not None and np.shape(initial_positions) != (n_ladders, n_rungs, d):
        raise ValueError(
            f"initial_positions must have shape (n_ladders, n_rungs, d) = "
            f"({n_ladders}, {n_rungs}, {d}), got {np.shape(initial_positions)}"
        )
    if initial_scale is None:
        unit_scale = width / 30.0
    else:
        unit_scale = np.asarray(initial_scale, dtype=np.float64)
        if unit_scale.shape != (d,) or not np.all(unit_scale > 0):
            raise ValueError(f"initial_scale must be positive with shape ({d},), got {unit_scale}")
    base = np.minimum(unit_scale[None, :] / np.sqrt(betas)[:, None], width)  # (R, d)

    with limit_numba_threads(numba_threads):
        if initial_positions is None:
            initial_positions = top_likelihood_starts(
                log_likelihood_fn,
                low,
                high,
                n_ladders,
                n_rungs,
                rng,
                n_candidates=n_init_candidates,
            )
        state = pt_init(initial_positions, log_likelihood_fn, low, high)
        run = _run_ladders(
            rng,
            state,
            betas,
            log_likelihood_fn,
            low,
            high,
            base,
            n_burnin=n_burnin,
            thin=thin,
            n_draws=draws_per_chain(n, n_ladders),
            n_local_steps=n_local_steps,
            target_acceptance=target_acceptance,
        )
    chains, cold_acceptance, rung_acceptance, swap_rates = run
    diagnostics = mcmc_diagnostics(
        chains,
        cold_acceptance,
        n_target=n,
        method="parallel_tempering",
        swap_rates=swap_rates,
        rung_acceptance=rung_acceptance,
        betas=betas,
        warn=warn,
    )
    return SamplingResult(pooled_draws(chains, n, rng), diagnostics, chains)


def _run_ladders(
    rng: np.random.Generator,
    state: PTState,
    betas: np.ndarray,
    log_likelihood_fn: LogLikelihoodFn,
    low: np.ndarray,
    high: np.ndarray,
    base: np.ndarray,
    *,
    n_burnin: int,
    thin: int,
    n_draws: int,
    n_local_steps: int,
    target_acceptance: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Burn-in with per-rung tuning, then sampling.

    Returns (cold chains (L, m, d), cold acceptance (L,), rung acceptance (R,),
    swap rates (R - 1,)).
    """
    n_ladders, n_rungs, d = state.position.shape
    width = high - low
    log_factor = np.zeros(n_rungs)
    # a rung never needs steps wider than the box
    max_log_factor = np.log(np.min(width / base, axis=1))
    iteration = 0
    for t in range(n_burnin):
        scale = np.exp(log_factor)[:, None] * base
        state, info = pt_step(
            rng,
            state,
            betas,
            log_likelihood_fn,
            low,
            high,
            scale,
            swap_parity=iteration,
            n_local_steps=n_local_steps,
        )
        iteration += 1
        log_factor = robbins_monro_update(
            log_factor, info.acceptance_probability.mean(axis=0), target_acceptance, t
        )
        log_factor = np.minimum(log_factor, max_log_factor)

    scale = np.exp(log_factor)[:, None] * base
    chains = np.empty((n_ladders, n_draws, d))
    rung_acceptance = np.zeros((n_ladders, n_rungs))
    swaps_accepted = np.zeros(n_rungs - 1)
    swaps_attempted = np.zeros(n_rungs - 1)
    for k in range(n_draws):
        for _ in range(thin):
            state, info = pt_step(
                rng,
                state,
                betas,
                log_likelihood_fn,
                low,
                high,
                scale,
                swap_parity=iteration,
                n_local_steps=n_local_steps,
            )
            iteration += 1
            rung_acceptance += info.acceptance_probability
            swaps_attempted += info.swap_attempted * n_ladders
            swaps_accepted += info.swap_accepted.sum(axis=0)
        chains[:, k] = state.position[:, -1]
    steps = n_draws * thin
    swap_rates = np.divide(
        swaps_accepted,
        swaps_attempted,
        out=np.full(n_rungs - 1, np.nan),
        where=swaps_attempted > 0,
    )
    return chains, rung_acceptance[:, -1] / steps, rung_acceptance.mean(axis=0) / steps, swap_rates
