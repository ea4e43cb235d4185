"""Simulation-based calibration and expected coverage at any temperature beta.

Given pairs (theta_i, x_i) with theta_i | x_i ~ p_beta(theta | x_i) and a
sampler q(theta | x, beta), draw L samples from q(. | x_i, beta) for each pair
and rank theta_i among them. If q equals p_beta(. | x) for every x, theta_i
and the L samples are exchangeable, so the rank is uniform on {0, ..., L}
(Talts et al. 2018). At beta = 1 the pairs can be the usual prior-predictive
ones (theta ~ prior, x ~ simulator); at beta != 1 theta must come from the
power posterior of x, e.g. from a reference sampler (``reference_pairs``).

Ranks are randomized between ties, u = (rank + U) / (L + 1) with U ~ U(0, 1),
which makes u exactly U(0, 1) under calibration; uniformity is tested with a
Kolmogorov–Smirnov test per parameter.

Expected coverage (Hermans et al. 2022): the credible region of level alpha
holds the alpha fraction of q's samples that are most central under a
statistic, and coverage(alpha) is the fraction of pairs whose theta_i falls
inside it; a calibrated q gives coverage(alpha) = alpha, an overconfident one
falls below the diagonal. Centrality is q's density when ``log_prob_fn`` is
given (highest-density regions); otherwise the distance to the mean of the
L + 1 points {theta_i, samples} in units of their standard deviations, a
symmetric function of all L + 1 points, so exchangeability (and the exact
diagonal under calibration) is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from gbi_eval._validation import Seed, as_rng, as_samples, check_beta, check_positive_int
from gbi_eval.references import LikelihoodTask, reference_posterior

#: ``sample_fn(x, beta, n)``: x (x_dim,) -> theta samples (n, d).
SampleFn = Callable[[np.ndarray, float, int], np.ndarray]
#: ``log_prob_fn(theta, x, beta)``: theta (n, d), x (x_dim,) -> (n,).
LogProbFn = Callable[[np.ndarray, np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class CalibrationResult:
    """Ranks, uniformity tests and coverage of a sampler at one beta.

    Attributes:
        beta: the temperature checked.
        n_posterior_samples: L, samples drawn per pair.
        ranks: rank of theta_i among the L samples per parameter (number of
            samples below it), shape (m, d), in 0..L.
        rank_pvalues: KS p-value of the randomized ranks per parameter, shape (d,).
        joint_ranks: number of samples more central than theta_i, shape (m,).
        joint_pvalue: KS p-value of the randomized joint ranks.
        coverage_levels: credibility levels alpha, shape (k,).
        coverage: expected coverage of the joint credible regions, shape (k,).
        marginal_coverage: coverage of central marginal intervals, shape (k, d).
        coverage_statistic: ``"log_prob"`` or ``"distance"`` (see module doc).
    """

    beta: float
    n_posterior_samples: int
    ranks: np.ndarray
    rank_pvalues: np.ndarray
    joint_ranks: np.ndarray
    joint_pvalue: float
    coverage_levels: np.ndarray
    coverage: np.ndarray
    marginal_coverage: np.ndarray
    coverage_statistic: str


def check_calibration(
    sample_fn: SampleFn,
    theta: np.ndarray,
    x: np.ndarray,
    beta: float,
    n_posterior_samples: int,
    seed: Seed,
    *,
    log_prob_fn: LogProbFn | None = None,
    coverage_levels: np.ndarray | None = None,
) -> CalibrationResult:
    """SBC ranks and expected coverage of ``sample_fn`` at temperature ``beta``.

    Args:
        sample_fn: ``sample_fn(x_i, beta, L) -> (L, d)``, the sampler checked.
        theta: shape (m, d), with theta_i | x_i ~ p_beta(theta | x_i).
        x: shape (m, x_dim), the matching observations.
        beta: inverse temperature, > 0.
        n_posterior_samples: L, samples per pair.
        seed: int or Generator; randomizes ties (the sampler owns its own randomness).
        log_prob_fn: optional ``log_prob_fn(theta, x_i, beta) -> (n,)`` of the
            sampler; then coverage uses highest-density regions.
        coverage_levels: levels alpha in (0, 1); default 0.05, 0.10, ..., 0.95.

    Returns:
        A ``CalibrationResult``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(100, 1))
        >>> theta = x + rng.normal(size=(100, 1)) / np.sqrt(2.0)  # N(x, 1 / beta), beta = 2
        >>> exact = lambda x_i, beta, n: x_i + rng.normal(size=(n, 1)) / np.sqrt(beta)
        >>> result = check_calibration(exact, theta, x, 2.0, 99, seed=1)
        >>> result.ranks.shape, bool(result.rank_pvalues[0] > 0.01)
        ((100, 1), True)
    """
    theta = as_samples(theta, what="theta")
    x = as_samples(x, what="x")
    if x.shape[0] != theta.shape[0]:
        raise ValueError(
            f"theta and x must pair up row by row, got {theta.shape[0]} and {x.shape[0]} rows"
        )
    beta = check_beta(beta)
    n_samples = check_positive_int(n_posterior_samples, what="n_posterior_samples")
    if coverage_levels is None:
        levels = np.linspace(0.05, 0.95, 19)
    else:
        levels = np.asarray(coverage_levels, dtype=np.float64).reshape(-1)
        if levels.size == 0 or not np.all((levels > 0) & (levels < 1)):
            raise ValueError(f"coverage_levels must lie in (0, 1), got {levels}")
    rng = as_rng(seed)
    m, d = theta.shape
    ranks = np.empty((m, d), dtype=np.int64)
    ties = np.empty((m, d), dtype=np.int64)
    joint_ranks = np.empty(m, dtype=np.int64)
    joint_ties = np.empty(m, dtype=np.int64)
    for i in range(m):
        samples = as_samples(
            sample_fn(x[i], beta, n_samples), what=f"sample_fn output for pair {i}", dim=d
        )
        if samples.shape[0] != n_samples:
            raise ValueError(
                f"sample_fn must return ({n_samples}, {d}) samples, got {samples.shape}"
            )
        ranks[i] = np.sum(samples < theta[i], axis=0)
        ties[i] = np.sum(samples == theta[i], axis=0)
        if log_prob_fn is None:
            pooled = np.concatenate([theta[i : i + 1], samples])
            std = pooled.std(axis=0)
            z = (pooled - pooled.mean(axis=0)) / np.where(std > 0, std, 1.0)
            spread = np.sum(z**2, axis=1)  # smaller is more central
        else:
            spread = -np.asarray(
                log_prob_fn(np.concatenate([theta[i : i + 1], samples]), x[i], beta),
                dtype=np.float64,
            )
            if spread.shape != (n_samples + 1,):
                raise ValueError(
                    f"log_prob_fn must return shape ({n_samples + 1},), got {spread.shape}"
                )
        joint_ranks[i] = np.sum(spread[1:] < spread[0])
        joint_ties[i] = np.sum(spread[1:] == spread[0])

    # randomized ranks: uniform on (0, 1) exactly when calibrated
    u = (ranks + rng.random((m, d)) * (ties + 1)) / (n_samples + 1)
    u_joint = (joint_ranks + rng.random(m) * (joint_ties + 1)) / (n_samples + 1)
    rank_pvalues = np.array([stats.kstest(u[:, j], "uniform").pvalue for j in range(d)])
    joint_pvalue = float(stats.kstest(u_joint, "uniform").pvalue)
    coverage = np.mean(u_joint[None, :] <= levels[:, None], axis=1)
    marginal = np.mean(np.abs(u[None, :, :] - 0.5) <= levels[:, None, None] / 2, axis=1)
    return CalibrationResult(
        beta=beta,
        n_posterior_samples=n_samples,
        ranks=ranks,
        rank_pvalues=rank_pvalues,
        joint_ranks=joint_ranks,
        joint_pvalue=joint_pvalue,
        coverage_levels=levels,
        coverage=coverage,
        marginal_coverage=marginal,
        coverage_statistic="distance" if log_prob_fn is None else "log_prob",
    )


def reference_pairs(
    task: LikelihoodTask, x: np.ndarray, beta: float, seed: Seed, **options: Any
) -> np.ndarray:
    """One reference draw theta_i ~ p_beta(theta | x_i) per observation.

    Pairs (theta_i, x_i) built this way have theta_i | x_i distributed as the
    power posterior (up to the reference sampler's accuracy), which is what
    ``check_calibration`` needs at beta != 1. Take x_i from the simulator
    (x_i ~ p(x | theta'_i), theta'_i ~ prior); then theta'_i itself is a valid
    partner only at beta = 1.

    Args:
        task: a ``LikelihoodTask`` that ``reference_posterior`` supports.
        x: observations, shape (m, x_dim).
        beta: inverse temperature, > 0.
        seed: int or Generator; each x_i gets its own child stream.
        **options: passed to ``reference_posterior`` (e.g. ``n_burnin``).

    Returns:
        theta, shape (m, d).
    """
    x = as_samples(x, what="x")
    beta = check_beta(beta)
    rng = as_rng(seed)
    children = rng.spawn(x.shape[0])
    return np.concatenate(
        [
            reference_posterior(task, x[i], beta, 1, children[i], **options).samples
            for i in range(x.shape[0])
        ]
    )


def plot_calibration(
    result: CalibrationResult,
    *,
    n_bins: int | None = None,
    parameter_names: list[str] | None = None,
) -> Any:
    """Rank histograms (one per parameter) and the expected-coverage curve.

    Each histogram shows a 99 % band of bin counts under uniform ranks
    (binomial quantiles); the coverage panel shows the joint coverage and the
    diagonal of a calibrated sampler.

    Args:
        result: a ``CalibrationResult``.
        n_bins: histogram bins; default about m / 10, between 2 and 20, at most L + 1.
        parameter_names: one label per parameter.

    Returns:
        A ``matplotlib.figure.Figure``.

    Raises:
        ImportError: matplotlib is missing (install ``gbi-eval[plot]``).
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plot_calibration needs matplotlib, the optional 'plot' extra of gbi-eval: "
            "pip install 'gbi-eval[plot]'"
        ) from err
    m, d = result.ranks.shape
    total = result.n_posterior_samples + 1
    if n_bins is None:
        n_bins = int(min(max(m // 10, 2), 20, total))
    n_bins = check_positive_int(n_bins, what="n_bins")
    names = parameter_names or [f"theta_{j + 1}" for j in range(d)]
    if len(names) != d:
        raise ValueError(f"parameter_names needs {d} names, got {len(names)}")
    fig, axes = plt.subplots(1, d + 1, figsize=(3.0 * (d + 1), 2.8), squeeze=False)
    edges = np.linspace(0, total, n_bins + 1)
    bin_prob = np.diff(np.floor(edges)) / total  # ranks 0..L are integers
    low, high = stats.binom.ppf([[0.005], [0.995]], m, bin_prob[None, :])  # (2, n_bins)
    for j in range(d):
        ax = axes[0, j]
        ax.hist(result.ranks[:, j], bins=np.floor(edges) - 0.5, color="C0", alpha=0.8)
        ax.fill_between(
            np.repeat(np.floor(edges) - 0.5, 2)[1:-1],
            np.repeat(low, 2),
            np.repeat(high, 2),
            color="0.5",
            alpha=0.3,
            linewidth=0,
        )
        ax.set_title(f"{names[j]} (p = {result.rank_pvalues[j]:.2g})")
        ax.set_xlabel("rank")
    ax = axes[0, d]
    ax.plot([0, 1], [0, 1], color="0.5", linestyle="--")
    ax.plot(result.coverage_levels, result.coverage, marker="o", color="C1")
    ax.set_xlabel("credibility level")
    ax.set_ylabel("expected coverage")
    ax.set_title(f"coverage, beta = {result.beta:g}")
    fig.tight_layout()
    return fig
