"""Judging a trained run: C2ST and MMD against reference samplers across beta."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import gbi_eval
import gbi_npe
from gbi._threads import torch_threads_kept
from gbi.problem import make_problem
from gbi.rundir import RunDirectory, read_config
from gbi.simulation import derive_seed

DEFAULT_BETAS = (0.1, 0.5, 1.0, 1.5)


@dataclass(frozen=True)
class Run:
    """A finished run directory, opened for use."""

    path: Path
    config: dict[str, Any]
    posterior: gbi_npe.Posterior

    @property
    def task_name(self) -> str:
        return self.config["problem"]


def open_run(path: str | Path, device: str = "cpu") -> Run:
    """Open a finished run directory (``gbi train --out DIR``).

    Args:
        path: the run directory.
        device: where the posterior runs: ``"cpu"``, ``"cuda"`` or ``"auto"``
            (CUDA when present).

    Raises:
        FileNotFoundError: not a run directory, or its training has not finished.
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a gbi run directory (no config.json)")
    if not (path / "posterior.safetensors").is_file():
        raise FileNotFoundError(
            f"{path} has no trained posterior yet: rerun the same `gbi train` command to finish it"
        )
    config = read_config(path / "config.json")
    where = str(gbi_npe.resolve_device(device))
    return Run(path, config, gbi_npe.Posterior.load(path / "posterior.safetensors", device=where))


@torch_threads_kept()
def reference_samples(
    task: Any, obs_index: int, beta: float, n: int, seed: int, cache: RunDirectory | None
) -> np.ndarray:
    """Reference draws of p_beta(theta | x_obs), cached in the run directory."""
    name = f"references/{task.name}_obs{obs_index}_beta{beta:g}_n{n}_seed{seed}.npz"
    if cache is not None and cache.has(name):
        return cache.load_npz(name)["theta"]
    x_obs = task.observation(obs_index).x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gbi_eval.ConvergenceWarning)
        result = gbi_eval.reference_posterior(task, x_obs, beta, n, seed)
    if cache is not None:
        cache.save_npz(name, theta=result.samples)
    return result.samples


def evaluate(
    run_dir: str | Path,
    betas: tuple[float, ...] = DEFAULT_BETAS,
    observations: tuple[int, ...] = (0,),
    n: int = 2_000,
    seed: int = 0,
    progress: bool = False,
    device: str = "cpu",
) -> dict[str, Any]:
    """C2ST and MMD of the run's posterior against reference samples.

    For each observation index and beta: ``n`` reference draws
    (``gbi_eval.reference_posterior``, cached under ``references/``) against
    ``n`` draws of the amortized posterior. Writes ``metrics.json``.

    Returns:
        ``{"rows": [{"observation", "beta", "c2st", "mmd", ...}], ...}``.

    Raises:
        ValueError: the problem has no reference sampler (no tractable likelihood,
            or a user problem), a beta outside the trained range, or an
            observation index the task does not have.
    """
    run = open_run(run_dir, device)
    if run.task_name not in gbi_eval.SUPPORTED_TASKS:
        raise ValueError(
            f"no reference sampler for {run.task_name!r}: evaluation needs a task with a "
            f"tractable likelihood ({', '.join(gbi_eval.SUPPORTED_TASKS)})"
        )
    low, high = run.posterior.beta_range
    bad = [b for b in betas if not low <= b <= high]
    if bad:
        raise ValueError(f"betas {bad} lie outside the trained range [{low}, {high}]")
    problem = make_problem(run.task_name, **run.config.get("task_options", {}))
    task = problem.task
    for i in observations:  # before any reference is drawn
        task.check_observation_index(i)
    cache = RunDirectory(run.path, run.config)
    rows = []
    items = [(i, b) for i in observations for b in betas]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc="evaluate", unit="(x, beta)")
    for obs_index, beta in items:
        t0 = time.perf_counter()
        ref = reference_samples(task, obs_index, beta, n, derive_seed(seed, "reference"), cache)
        t_ref = time.perf_counter() - t0
        with torch_threads_kept():  # a task's observation may be simulated
            x_obs = task.observation(obs_index).x
        t0 = time.perf_counter()
        q = run.posterior.sample(n, x_obs, beta, seed=derive_seed(seed, f"q{obs_index}"))
        t_q = time.perf_counter() - t0
        rows.append(
            {
                "observation": obs_index,
                "beta": float(beta),
                "c2st": gbi_eval.c2st(ref, q, seed=seed),
                "mmd": gbi_eval.mmd(ref, q),
                "n": n,
                "reference_seconds": t_ref,
                "posterior_seconds": t_q,
            }
        )
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    metrics = {
        "problem": run.task_name,
        "route": run.config["route"],
        "simulations": run.config["simulations"],
        "rows": rows,
    }
    cache.save_json("metrics.json", metrics)
    return metrics


def metrics_table(metrics: dict[str, Any]) -> str:
    """A plain-text table of ``evaluate``'s rows."""
    lines = [f"{'obs':>4} {'beta':>6} {'C2ST':>7} {'MMD^2':>10}"]
    for row in metrics["rows"]:
        lines.append(
            f"{row['observation']:>4} {row['beta']:>6.2f} {row['c2st']:>7.3f} {row['mmd']:>10.2e}"
        )
    return "\n".join(lines)
