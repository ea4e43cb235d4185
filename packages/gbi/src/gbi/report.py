"""``gbi report``: the figures of a finished run."""

from __future__ import annotations

from pathlib import Path

import gbi_eval
from gbi import figures
from gbi._threads import torch_threads_kept
from gbi.evaluation import open_run, reference_samples
from gbi.problem import make_problem
from gbi.rundir import RunDirectory
from gbi.simulation import derive_seed

PAIR_BETAS = (0.1, 0.7, 1.5)
HH_BETAS = (0.1, 1.0, 2.0)


def _in_range(betas: tuple[float, ...], low: float, high: float) -> tuple[float, ...]:
    return tuple(b for b in betas if low <= b <= high)


def make_report(
    run_dir: str | Path,
    *,
    observation: int = 0,
    n: int = 2_000,
    seed: int = 0,
    device: str = "cpu",
) -> list[Path]:
    """Write the run's figures to ``DIR/figures`` and return their paths.

    - ``metrics_vs_beta.png``: C2ST and MMD against beta (after ``gbi evaluate``);
    - ``pairs_across_beta.png``: posterior samples at several beta, beside the
      reference samples where the task has a reference sampler;
    - hodgkin_huxley: ``marginals_across_beta.png`` and ``predictive_traces.png``.
    """
    run = open_run(run_dir, device)
    out = run.path / "figures"
    out.mkdir(exist_ok=True)
    written: list[Path] = []
    cache = RunDirectory(run.path, run.config)
    if cache.has("metrics.json"):
        metrics = cache.load_json("metrics.json")
        written.append(
            figures.plot_metrics({metrics["route"]: metrics}, out / "metrics_vs_beta.png")
        )
    try:
        problem = make_problem(run.task_name, **run.config.get("task_options", {}))
    except ValueError:
        return written  # a user problem: no built-in observations to plot against
    task = problem.task
    low, high = run.posterior.beta_range
    with torch_threads_kept():  # a task's observation may be simulated
        x_obs = task.observation(observation).x
    if task.name == "hodgkin_huxley":
        betas = _in_range(HH_BETAS, low, high)
        written.append(
            figures.plot_marginals_across_beta(
                run.posterior,
                x_obs,
                betas,
                out / "marginals_across_beta.png",
                theta_names=problem.theta_names,
                low=problem.low,
                high=problem.high,
                seed=seed,
                title=f"hodgkin_huxley observation {observation}",
            )
        )
        written.append(
            figures.plot_predictive_traces(
                task,
                run.posterior,
                observation,
                _in_range((0.1, 1.0), low, high),
                out / "predictive_traces.png",
                seed=seed,
            )
        )
        return written
    betas = _in_range(PAIR_BETAS, low, high)
    references = None
    if task.name in gbi_eval.SUPPORTED_TASKS:
        references = {
            b: reference_samples(task, observation, b, n, derive_seed(seed, "reference"), cache)
            for b in betas
        }
    written.append(
        figures.plot_pairs_across_beta(
            run.posterior,
            x_obs,
            betas,
            out / "pairs_across_beta.png",
            theta_names=problem.theta_names,
            low=problem.low,
            high=problem.high,
            references=references,
            n=n,
            seed=seed,
        )
    )
    return written
