"""Figures of a run: metrics against beta, posteriors across beta, HH predictive checks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gbi._threads import torch_threads_kept
from gbi.simulation import derive_seed


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_metrics(metrics_by_route: dict[str, dict[str, Any]], path: Path) -> Path:
    """C2ST and MMD² against beta, one line per route (like the paper's Figure 1)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for route, metrics in metrics_by_route.items():
        rows = metrics["rows"]
        betas = sorted({r["beta"] for r in rows})
        for ax, key in zip(axes, ("c2st", "mmd"), strict=True):
            med = [np.median([r[key] for r in rows if r["beta"] == b]) for b in betas]
            ax.plot(betas, med, marker="o", label=route)
    axes[0].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[0].set(xlabel="beta", ylabel="C2ST (median over observations)", ylim=(0.45, 1.02))
    axes[1].set(xlabel="beta", ylabel="MMD² (median)")
    axes[1].set_yscale("symlog", linthresh=1e-4)
    axes[0].legend(title="route")
    problem = next(iter(metrics_by_route.values()))["problem"]
    fig.suptitle(f"{problem}: amortized posterior against reference power posteriors")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_pairs_across_beta(
    posterior: Any,
    x_obs: np.ndarray,
    betas: tuple[float, ...],
    path: Path,
    *,
    theta_names: tuple[str, ...],
    low: np.ndarray,
    high: np.ndarray,
    references: dict[float, np.ndarray] | None = None,
    n: int = 2_000,
    seed: int = 0,
) -> Path:
    """Samples of the first two parameters at each beta; references beside them if given."""
    plt = _pyplot()
    cols = 2 if references else 1
    fig, axes = plt.subplots(
        len(betas), cols, figsize=(3.4 * cols, 3.0 * len(betas)), squeeze=False
    )
    for row, beta in enumerate(betas):
        samples = posterior.sample(n, x_obs, beta, seed=derive_seed(seed, f"pairs{row}"))
        panels = [("gbi", samples)]
        if references:
            panels.insert(0, ("reference", references[beta]))
        for col, (label, s) in enumerate(panels):
            ax = axes[row, col]
            ax.scatter(s[:, 0], s[:, 1] if s.shape[1] > 1 else np.zeros(len(s)), s=1, alpha=0.3)
            ax.set(xlim=(low[0], high[0]), title=f"{label}, beta = {beta:g}")
            if s.shape[1] > 1:
                ax.set(ylim=(low[1], high[1]), ylabel=theta_names[1])
            ax.set_xlabel(theta_names[0])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_marginals_across_beta(
    posterior: Any,
    x_obs: np.ndarray,
    betas: tuple[float, ...],
    path: Path,
    *,
    theta_names: tuple[str, ...],
    low: np.ndarray,
    high: np.ndarray,
    n: int = 5_000,
    seed: int = 0,
    title: str = "",
) -> Path:
    """1-D marginals of every parameter at several beta (like the paper's Figure 2)."""
    plt = _pyplot()
    d = len(theta_names)
    cols = min(d, 4)
    rows = -(-d // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for k, beta in enumerate(betas):
        s = posterior.sample(n, x_obs, beta, seed=derive_seed(seed, f"marg{k}"))
        for j in range(d):
            ax = axes[j // cols, j % cols]
            ax.hist(
                s[:, j],
                bins=50,
                range=(low[j], high[j]),
                density=True,
                histtype="step",
                label=f"beta = {beta:g}",
            )
            ax.set_xlabel(theta_names[j])
    for j in range(d, rows * cols):
        axes[j // cols, j % cols].axis("off")
    axes[0, 0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@torch_threads_kept()
def plot_predictive_traces(
    task: Any,
    posterior: Any,
    obs_index: int,
    betas: tuple[float, ...],
    path: Path,
    *,
    n_traces: int = 3,
    seed: int = 0,
    title: str = "",
) -> Path:
    """HH posterior-predictive voltage traces against the observation (paper Figure 3).

    For a real recording the recorded trace (junction potential applied) is
    drawn; for a synthetic observation, its own simulated trace. ``title``
    heads the figure when given.
    """
    plt = _pyplot()
    obs = task.observation(obs_index)
    protocol = task.protocol
    observed, label = _observed_trace(task, obs_index, obs)
    fig, axes = plt.subplots(len(betas), 1, figsize=(9, 2.4 * len(betas)), squeeze=False)
    for k, beta in enumerate(betas):
        theta = posterior.sample(n_traces, obs.x, beta, seed=derive_seed(seed, f"ppc{k}"))
        traces = task.simulate_traces(theta, seed=derive_seed(seed, f"ppc-sim{k}"))
        ax = axes[k, 0]
        if observed is not None:
            ax.plot(
                np.arange(observed.shape[0]) * protocol.dt,
                observed,
                color="black",
                lw=0.8,
                label=label,
            )
        for trace in traces:
            ax.plot(np.arange(trace.shape[0]) * protocol.dt, trace, lw=0.6, alpha=0.8)
        ax.set(ylabel="V (mV)", title=f"posterior predictive, beta = {beta:g}")
    axes[-1, 0].set_xlabel("time (ms)")
    axes[0, 0].legend(loc="upper right", fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _observed_trace(task: Any, obs_index: int, obs: Any) -> tuple[np.ndarray | None, str]:
    recordings = getattr(task, "recordings", ())
    if obs_index < len(recordings):
        return np.asarray(recordings[obs_index].voltage), "recorded"
    if np.all(np.isfinite(obs.theta)):
        trace = task.simulate_traces(obs.theta[None], seed=task.observation_seed)[0]
        return trace, "true theta (one simulation)"
    return None, ""


def plot_predictive_statistics(
    x_predictive: np.ndarray,
    x_obs: np.ndarray,
    betas: Sequence[float],
    path: Path,
    *,
    x_names: Sequence[str],
    observation_labels: Sequence[str] | None = None,
    quantiles: tuple[float, float] = (0.05, 0.95),
    title: str = "",
) -> Path:
    """Posterior-predictive summary statistics against the observed ones, as beta varies.

    One panel per (observation, statistic): the predictive median and the
    ``quantiles`` band of each statistic against beta (log axis), the observed
    value as a horizontal line. Rows of ``x_predictive`` with a non-finite
    entry (failed simulations) are left out of the band; a beta with fewer
    than two finite rows leaves a gap.

    Args:
        x_predictive: simulated statistics, shape (m, B, K, d) for m observations,
            B betas and K predictive draws each (NaN rows allowed); for a single
            observation also (B, K, d).
        x_obs: observed statistics, shape (m, d), or (d,) for a single observation.
        betas: the B temperatures, > 0, the order of axis 1 (axis 0 if 3-D).
        path: where the PNG is written.
        x_names: the d statistic names (panel titles).
        observation_labels: m row labels (default ``"observation j"``).
        quantiles: (lower, upper) of the band, 0 <= lower < upper <= 1.
        title: figure title.

    Returns:
        ``path``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x_pred = rng.normal(size=(2, 3, 50, 4))  # 2 obs, 3 betas, 50 draws, 4 statistics
        >>> out = plot_predictive_statistics(
        ...     x_pred, np.zeros((2, 4)), [0.1, 1.0, 2.0], Path("stats.png"),
        ...     x_names=("a", "b", "c", "d"))  # doctest: +SKIP
    """
    x_predictive = np.asarray(x_predictive, dtype=np.float64)
    x_obs = np.asarray(x_obs, dtype=np.float64)
    if x_obs.ndim == 1 and x_predictive.ndim == 3:
        x_obs, x_predictive = x_obs[None], x_predictive[None]
    if x_predictive.ndim != 4 or x_obs.ndim != 2:
        raise ValueError(
            "x_predictive must have shape (m, B, K, d) and x_obs (m, d) (or (B, K, d) and "
            f"(d,) for one observation), got {x_predictive.shape} and {x_obs.shape}"
        )
    m, n_betas, _, d = x_predictive.shape
    if x_obs.shape != (m, d):
        raise ValueError(
            f"x_obs must have shape (m, d) = {(m, d)} to match x_predictive "
            f"{x_predictive.shape}, got {x_obs.shape}"
        )
    betas_arr = np.asarray(betas, dtype=np.float64)
    if betas_arr.shape != (n_betas,) or not np.all(betas_arr > 0):
        raise ValueError(
            f"betas must be {n_betas} values > 0 (axis 1 of x_predictive), got {list(betas)}"
        )
    if len(x_names) != d:
        raise ValueError(f"x_names must name the {d} statistics, got {len(x_names)} names")
    if observation_labels is None:
        observation_labels = [f"observation {j}" for j in range(m)]
    if len(observation_labels) != m:
        raise ValueError(f"observation_labels must have {m} labels, got {len(observation_labels)}")
    lower, upper = quantiles
    if not 0.0 <= lower < upper <= 1.0:
        raise ValueError(f"quantiles must satisfy 0 <= lower < upper <= 1, got {quantiles}")

    # (m, B, 3, d): lower, median, upper over the finite rows of each (observation, beta)
    bands = np.full((m, n_betas, 3, d), np.nan)
    for j in range(m):
        for b in range(n_betas):
            rows = x_predictive[j, b]
            rows = rows[np.all(np.isfinite(rows), axis=1)]
            if rows.shape[0] >= 2:
                bands[j, b] = np.quantile(rows, (lower, 0.5, upper), axis=0)

    plt = _pyplot()
    legend_height = 0.45  # inches below the panels
    fig, axes = plt.subplots(m, d, figsize=(2.3 * d, 2.1 * m + legend_height), squeeze=False)
    band_label = f"{100 * lower:g}–{100 * upper:g} % predictive"
    for j in range(m):
        for i in range(d):
            ax = axes[j, i]
            ax.fill_between(
                betas_arr, bands[j, :, 0, i], bands[j, :, 2, i], alpha=0.3, label=band_label
            )
            ax.plot(betas_arr, bands[j, :, 1, i], marker="o", ms=3, label="predictive median")
            ax.axhline(x_obs[j, i], color="black", lw=1.0, ls="--", label="observed")
            ax.set_xscale("log")
            ax.set_xticks(betas_arr, [f"{b:g}" for b in betas_arr], fontsize=6)
            ax.minorticks_off()
            ax.tick_params(axis="y", labelsize=7)
            if j == 0:
                ax.set_title(x_names[i], fontsize=9)
            if j == m - 1:
                ax.set_xlabel("beta", fontsize=8)
            if i == 0:
                ax.set_ylabel(observation_labels[j], fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, legend_height / (2.1 * m + legend_height), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
