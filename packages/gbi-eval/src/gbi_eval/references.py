"""Reference draws from the power posteriors of the benchmark tasks (paper App. D).

    p_beta(theta | x_obs)  ∝  prior(theta) * p(x_obs | theta) ** beta,   beta > 0,

with a box-uniform prior. ``reference_posterior(task, x_obs, beta, n, seed)``
picks the sampler by ``task.name``:

- two_moons: adaptive random-walk MH with reflection, chains started on both
  sides of the fold (``two_moons_reference``);
- gaussian_mixture: exact rejection from a beta-scaled mixture envelope, valid
  for every beta > 0 (``gaussian_mixture_reference``);
- slcp: parallel tempering with a geometric ladder up to beta
  (``slcp_reference``);
- lorenz96: adaptive random-walk MH on the task's sufficient-statistics
  likelihood (``lorenz96_reference``).

Any object with ``name``, ``prior.low``, ``prior.high`` and a vectorized
``log_likelihood(theta (n, d), x (x_dim,)) -> (n,)`` fits (``LikelihoodTask``);
gbi-sims tasks do.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from scipy import special

from gbi_eval._validation import Seed, as_rng, check_beta, check_box, check_positive_int
from gbi_eval.diagnostics import SamplingResult
from gbi_eval.mcmc import resampled_starts, sample_rwmh
from gbi_eval.rejection import TruncatedIsotropicGaussianMixture, rejection_sample
from gbi_eval.tempering import parallel_tempering


class BoxPrior(Protocol):
    """A box-uniform prior: ``low`` and ``high`` corners, shape (d,)."""

    @property
    def low(self) -> np.ndarray: ...

    @property
    def high(self) -> np.ndarray: ...


class LikelihoodTask(Protocol):
    """What the reference samplers need from a task.

    Attributes:
        name: dispatch key (one of ``SUPPORTED_TASKS``).
        prior: the box-uniform prior.
    """

    @property
    def name(self) -> str: ...

    @property
    def prior(self) -> BoxPrior: ...

    def log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        """log p(x | theta), theta (n, d), one x (x_dim,): shape (n,), -inf where impossible."""
        ...


def _check_inputs(
    task: LikelihoodTask, x_obs: object, beta: object, n: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    low, high = check_box(task.prior.low, task.prior.high)
    x = np.asarray(x_obs, dtype=np.float64)
    if x.ndim == 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x_obs must be one observation, shape (x_dim,), got {np.shape(x_obs)}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"x_obs must be finite, got {x.tolist()}")
    return low, high, x, check_beta(beta), check_positive_int(n)


def _log_likelihood_fn(task: LikelihoodTask, x: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def log_likelihood_fn(theta: np.ndarray) -> np.ndarray:
        return task.log_likelihood(theta, x)

    return log_likelihood_fn


# -- two_moons ---------------------------------------------------------------


def _two_moons_mirror(theta: np.ndarray) -> np.ndarray:
    """(theta_1, theta_2) -> (-theta_2, -theta_1): leaves two_moons' likelihood unchanged."""
    return -theta[..., ::-1]


def _two_moons_fold(theta: np.ndarray) -> np.ndarray:
    """Map every point to the side theta_1 + theta_2 >= 0 of the fold."""
    below = (theta[..., 0] + theta[..., 1]) < 0
    return np.where(below[..., None], _two_moons_mirror(theta), theta)


def two_moons_reference(
    task: LikelihoodTask,
    x_obs: np.ndarray,
    beta: float,
    n: int,
    seed: Seed,
    *,
    n_chains: int = 16,
    n_burnin: int = 2000,
    thin: int = 40,
    target_acceptance: float = 0.3,
    adapt_covariance: bool = False,
    warn: bool = True,
) -> SamplingResult:
    """two_moons: adaptive RW-MH with reflection, chains on both sides of the fold.

    The likelihood depends on theta through |theta_1 + theta_2| and
    theta_2 - theta_1, so it is invariant under the mirror
    (theta_1, theta_2) -> (-theta_2, -theta_1), which maps the prior box to
    itself and swaps the two sides of the fold theta_1 + theta_2 = 0: each side
    carries exactly half the posterior mass, for every beta. Half the chains
    start at prior draws resampled by L^beta, the other half at their mirror
    images, so the two crescents are represented in their exact proportion even
    when no chain crosses the fold (at large beta they rarely do). Each chain's
    step size is tuned by Robbins–Monro toward ``target_acceptance`` during
    burn-in, then fixed (App. D: per-chain tuning to 0.3, reflection at the
    box, impossible points, ``-inf``, rejected). R-hat and ESS are computed on
    the chains folded onto one side (``diagnostics.notes`` says so), since the
    per-side target is what each chain explores. The defaults run 16 long
    chains rather than many short ones: R-hat <= 1.01 needs every chain to
    hold on the order of 100 effective draws, and the crescent's integrated
    autocorrelation time is some tens of steps.

    Args:
        task: a two_moons task (see ``LikelihoodTask``).
        x_obs: shape (2,).
        beta: inverse temperature, > 0.
        n: draws, > 0.
        seed: int or ``numpy.random.Generator``.
        n_chains: chains, even (half per side).
        n_burnin: tuning steps per chain.
        thin: steps between kept states.
        target_acceptance: tuning target.
        adapt_covariance: learn a full proposal covariance per chain during
            burn-in (see ``sample_rwmh``); off by default, as in App. D.
        warn: emit a ``ConvergenceWarning`` on failed diagnostics.

    Returns:
        ``SamplingResult``: samples (n, 2), chains, ``MCMCDiagnostics``.
    """
    low, high, x, beta, n = _check_inputs(task, x_obs, beta, n)
    n_chains = check_positive_int(n_chains, what="n_chains")
    if n_chains % 2:
        raise ValueError(f"n_chains must be even (half per side of the fold), got {n_chains}")
    rng = as_rng(seed)
    log_likelihood_fn = _log_likelihood_fn(task, x)
    half = resampled_starts(log_likelihood_fn, low, high, beta, n_chains // 2, rng)
    upper = _two_moons_fold(half)
    starts = np.concatenate([upper, _two_moons_mirror(upper)])
    return sample_rwmh(
        log_likelihood_fn,
        low,
        high,
        beta,
        n,
        rng,
        n_chains=n_chains,
        n_burnin=n_burnin,
        thin=thin,
        target_acceptance=target_acceptance,
        initial_positions=starts,
        adapt_covariance=adapt_covariance,
        diagnostics_transform=_two_moons_fold,
        diagnostics_notes="R-hat and ESS of the chains folded onto theta_1 + theta_2 >= 0",
        warn=warn,
    )


# -- gaussian_mixture --------------------------------------------------------

#: The paper's mixture: x | theta ~ 0.5 N(theta, 1 I) + 0.5 N(theta, 0.01 I).
_GM_WEIGHTS = (0.5, 0.5)
_GM_VARIANCES = (1.0, 0.01)


def gaussian_mixture_reference(
    task: LikelihoodTask,
    x_obs: np.ndarray,
    beta: float,
    n: int,
    seed: Seed,
) -> SamplingResult:
    """gaussian_mixture: exact rejection sampling, valid for every beta > 0.

    With L(theta) = a(theta) + b(theta), a = 0.5 N(x; theta, I),
    b = 0.5 N(x; theta, 0.01 I), the target is L^beta on the prior box.

    Envelope. For a, b >= 0:
      beta <= 1: (a + b)^beta <= a^beta + b^beta (t -> t^beta is concave with
        0^beta = 0, hence subadditive);
      beta >= 1: (a + b)^beta <= 2^(beta - 1) (a^beta + b^beta) (convexity of
        t -> t^beta: ((a + b) / 2)^beta <= (a^beta + b^beta) / 2).
    So L^beta <= c_beta E with c_beta = max(1, 2^(beta - 1)) and
    E(theta) = a^beta + b^beta. Each term is a Gaussian in theta:
    N(x; theta, S)^beta = K_beta(S) N(theta; x, S / beta) with
    log K_beta(s^2 I) = (d / 2) [(1 - beta) log(2 pi s^2) - log beta], so E is a
    mixture of N(x, I / beta) and N(x, 0.01 I / beta) with weights
    ∝ 0.5^beta K_beta (the paper's beta-scaled envelope). Proposals come from
    that mixture truncated to the box; a proposal is accepted with probability
    L^beta / (c_beta E) <= 1. The accepted draws are i.i.d. from the power
    posterior. The same two inequalities reversed (concavity for beta <= 1,
    superadditivity for beta >= 1) bound the acceptance probability below by
    2^-|beta - 1| at every theta, so rejection stays efficient at any beta.

    The envelope is checked against ``task.log_likelihood`` at every proposal
    (a RuntimeError if it ever fails to dominate, i.e. the task is not this
    mixture).

    Args:
        task: a gaussian_mixture task with a 2-D box prior (any box).
        x_obs: shape (2,).
        beta: inverse temperature, > 0.
        n: draws, > 0.
        seed: int or ``numpy.random.Generator``.

    Returns:
        ``SamplingResult``: samples (n, 2) and ``RejectionDiagnostics``.
    """
    low, high, x, beta, n = _check_inputs(task, x_obs, beta, n)
    d = low.shape[0]
    if x.shape[0] != d:
        raise ValueError(f"x_obs must have shape ({d},) for gaussian_mixture, got {x.shape}")
    variances = np.asarray(_GM_VARIANCES)
    log_k = 0.5 * d * ((1.0 - beta) * np.log(2.0 * np.pi * variances) - np.log(beta))
    envelope = TruncatedIsotropicGaussianMixture(
        weights=np.exp(log_k - log_k.max()),
        means=np.tile(x, (2, 1)),
        stds=np.sqrt(variances / beta),
        low=low,
        high=high,
    )
    log_c = max(0.0, (beta - 1.0) * math.log(2.0))
    log_weights = np.log(np.asarray(_GM_WEIGHTS))

    def log_accept(theta: np.ndarray) -> np.ndarray:
        sq = np.sum((theta - x) ** 2, axis=1)[:, None]  # (m, 1)
        log_components = (  # log(w_i N(x; theta, s_i^2 I)), (m, 2)
            log_weights - 0.5 * d * np.log(2.0 * np.pi * variances) - 0.5 * sq / variances
        )
        log_envelope = special.logsumexp(beta * log_components, axis=1)
        return beta * task.log_likelihood(theta, x) - log_c - log_envelope

    return rejection_sample(envelope, log_accept, n, seed)


# -- slcp --------------------------------------------------------------------


def slcp_reference(
    task: LikelihoodTask,
    x_obs: np.ndarray,
    beta: float,
    n: int,
    seed: Seed,
    *,
    n_rungs: int = 16,
    n_ladders: int = 16,
    n_local_steps: int = 5,
    n_burnin: int = 1000,
    thin: int = 20,
    beta_min: float = 0.01,
    target_acceptance: float = 0.25,
    warn: bool = True,
) -> SamplingResult:
    """slcp: parallel tempering with a geometric ladder from beta_min to beta.

    The likelihood depends on theta_3 and theta_4 only through their squares,
    so the posterior has four sign-symmetric modes of equal mass; the hot rungs
    (near the prior) cross between them and even–odd swaps hand the crossings
    down to the target rung, so every mode carries its mass. Starts: the
    highest-likelihood of 2048 prior draws (App. D). Rung step sizes start at
    0.2 / sqrt(b_r) per coordinate and are tuned toward 0.25 during burn-in.
    The paper runs one ladder of 200 rungs for 15 000 iterations (5 000
    burn-in); the defaults here run ``n_ladders`` shorter ladders in one batch,
    which gives independent chains for R-hat at a fraction of the cost. If
    beta <= beta_min the ladder starts at beta / 10 instead.

    Args:
        task: an slcp task (5-D box prior).
        x_obs: shape (8,).
        beta: inverse temperature, > 0.
        n: draws, > 0.
        seed: int or ``numpy.random.Generator``.
        n_rungs: ladder size.
        n_ladders: independent ladders.
        n_local_steps: local RW-MH steps per rung between swap sweeps.
        n_burnin: tuning iterations.
        thin: iterations between kept target-rung states.
        beta_min: hottest inverse temperature.
        target_acceptance: tuning target of the local moves.
        warn: emit a ``ConvergenceWarning`` on failed diagnostics.

    Returns:
        ``SamplingResult``: samples (n, 5), target-rung chains, ``MCMCDiagnostics``
        with swap rates.
    """
    low, high, x, beta, n = _check_inputs(task, x_obs, beta, n)
    beta_min = check_beta(beta_min)
    return parallel_tempering(
        _log_likelihood_fn(task, x),
        low,
        high,
        beta,
        n,
        seed,
        n_rungs=n_rungs,
        beta_min=min(beta_min, beta / 10.0),
        n_ladders=n_ladders,
        n_local_steps=n_local_steps,
        n_burnin=n_burnin,
        thin=thin,
        target_acceptance=target_acceptance,
        warn=warn,
    )


# -- lorenz96 ----------------------------------------------------------------


def lorenz96_reference(
    task: LikelihoodTask,
    x_obs: np.ndarray,
    beta: float,
    n: int,
    seed: Seed,
    *,
    n_chains: int = 32,
    n_burnin: int = 2000,
    thin: int = 10,
    target_acceptance: float = 0.3,
    adapt_covariance: bool = True,
    warn: bool = True,
) -> SamplingResult:
    """lorenz96: adaptive random-walk MH on (b0, b1, sigma_e).

    The task's likelihood is an exact product of Gaussian Euler–Maruyama
    transitions evaluated from sufficient statistics of x_obs, so a batch of
    chains costs one cheap call per step. Chains start at prior draws
    resampled by L^beta; proposals start at one sixth of the prior width per
    coordinate, reflected at the box, with the step tuned by Robbins–Monro
    toward 0.3 (App. D). With ``adapt_covariance`` (default) the second half
    of burn-in learns each chain's proposal covariance (b0 and b1 are strongly
    correlated); those proposals reject moves leaving the box.

    Args:
        task: a lorenz96 task (3-D box prior).
        x_obs: shape (168,).
        beta: inverse temperature, > 0.
        n: draws, > 0.
        seed: int or ``numpy.random.Generator``.
        n_chains: chains run as one batch.
        n_burnin: tuning steps per chain.
        thin: steps between kept states.
        target_acceptance: tuning target.
        adapt_covariance: learn a full proposal covariance during burn-in.
        warn: emit a ``ConvergenceWarning`` on failed diagnostics.

    Returns:
        ``SamplingResult``: samples (n, 3), chains, ``MCMCDiagnostics``.
    """
    low, high, x, beta, n = _check_inputs(task, x_obs, beta, n)
    return sample_rwmh(
        _log_likelihood_fn(task, x),
        low,
        high,
        beta,
        n,
        seed,
        n_chains=n_chains,
        n_burnin=n_burnin,
        thin=thin,
        target_acceptance=target_acceptance,
        adapt_covariance=adapt_covariance,
        warn=warn,
    )


_REFERENCES: dict[str, Callable[..., SamplingResult]] = {
    "two_moons": two_moons_reference,
    "gaussian_mixture": gaussian_mixture_reference,
    "slcp": slcp_reference,
    "lorenz96": lorenz96_reference,
}
#: Task names ``reference_posterior`` knows.
SUPPORTED_TASKS: tuple[str, ...] = tuple(_REFERENCES)


def reference_posterior(
    task: LikelihoodTask,
    x_obs: np.ndarray,
    beta: float,
    n: int,
    seed: Seed,
    **options: Any,
) -> SamplingResult:
    """Reference draws from p_beta(theta | x_obs) ∝ prior(theta) p(x_obs | theta)^beta.

    Dispatches on ``task.name`` to the App. D sampler of that task
    (``two_moons_reference``, ``gaussian_mixture_reference``,
    ``slcp_reference``, ``lorenz96_reference``); ``options`` go to it
    (chain counts, burn-in, thinning, ladder size, ...).

    Args:
        task: a ``LikelihoodTask`` (e.g. ``gbi_sims.get_task("two_moons")``).
        x_obs: one observation, shape (x_dim,).
        beta: inverse temperature, > 0.
        n: draws, > 0.
        seed: int or ``numpy.random.Generator``.
        **options: keyword arguments of the task's sampler.

    Returns:
        ``SamplingResult`` with ``samples`` (n, d) and ``diagnostics``.

    Raises:
        ValueError: an unsupported task name, or bad ``x_obs``, ``beta`` or ``n``.
    """
    name = getattr(task, "name", None)
    if name not in _REFERENCES:
        raise ValueError(
            f"no reference sampler for task {name!r}; supported tasks: {', '.join(SUPPORTED_TASKS)}"
        )
    return _REFERENCES[name](task, x_obs, beta, n, seed, **options)
