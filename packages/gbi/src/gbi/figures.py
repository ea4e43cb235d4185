"""Figures of a run: metrics against beta, posteriors across beta, HH predictive traces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

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
    samples = posterior.sample(n, x_obs, np.asarray(betas, dtype=float)[0], seed=seed)
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


def plot_predictive_traces(
    task: Any,
    posterior: Any,
    obs_index: int,
    betas: tuple[float, ...],
    path: Path,
    *,
    n_traces: int = 3,
    seed: int = 0,
) -> Path:
    """HH posterior-predictive voltage traces against the observation (paper Figure 3).

    For a real recording the recorded trace (junction potential applied) is
    drawn; for a synthetic observation, its own simulated trace.
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
