"""``gbi.train``: from a problem to an amortized power posterior, resumably."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gbi_npe
from gbi import routes
from gbi.config import (
    DEFAULT_POSTERIOR_EMBEDDING,
    DOWNSTREAM_SETTINGS,
    LEGACY_SETTINGS,
    POOL_SETTINGS,
    REUSABLE_ACROSS,
    UNREAD_SETTINGS,
    UPSTREAM_STAGES,
    RunConfig,
)
from gbi.problem import Problem, make_problem
from gbi.rundir import RunConfigMismatch, RunDirectory
from gbi.simulation import simulate_base_set


@dataclass
class TrainingResult:
    """What ``train`` returns.

    Attributes:
        posterior: the amortized posterior q(theta | x, beta) (gbi-npe's
            ``Posterior``: ``sample(n, x, beta, seed)``, ``log_prob``, ``beta_range``).
        report: the training report (ESS per beta, surrogate losses, dropped
            simulations, timings, and for ``auto`` what it chose and why).
        run_dir: the run directory, if one was used.
    """

    posterior: gbi_npe.Posterior
    report: dict[str, Any]
    run_dir: Path | None


def _log_fn(verbose: bool):
    def log(message: str) -> None:
        if verbose:
            print(f"[gbi] {message}", file=sys.stderr, flush=True)

    return log


def train(
    problem: str | Problem | Any,
    route: str = "b-nre",
    simulations: int = 10_000,
    beta_range: tuple[float, float] = (0.1, 2.0),
    seed: int = 0,
    device: str = "auto",
    executor: Executor | None = None,
    out: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    verbose: bool = True,
    task_options: dict[str, Any] | None = None,
    reuse: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    **settings: Any,
) -> TrainingResult:
    """Train an amortized posterior of ``problem`` for every beta in ``beta_range``.

    Args:
        problem: a built-in task name (``gbi_sims.list_tasks()``), a gbi-sims task,
            or ``gbi.Problem(low, high, simulator)`` for your own simulator.
        route: ``"b-nre"`` (default), ``"b-nle"``, ``"a"`` or ``"auto"``.
        simulations: size of the base simulation set.
        beta_range: ``(beta_min, beta_max)``, with beta_min <= 1 <= beta_max.
        seed: every random stream of the run derives from it.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        executor: a ``concurrent.futures.Executor`` (process pool, Dask, Ray) for
            the simulations.
        out: a run directory: finished stages are saved there and reused by a
            rerun; an interrupted run resumes. ``None`` keeps everything in memory.
        progress: progress bars (``None``: when stderr is a terminal).
        verbose: print what each stage does to stderr.
        task_options: options of the built-in task (e.g. ``{"recording": 518290966}``).
        reuse: another run directory whose simulations, surrogates, scores
            and synthesized pairs ``out`` takes over (hard links, else
            copies), so that a change to settings read after the surrogates
            (``gbi.config.DOWNSTREAM_SETTINGS``) trains no surrogate again.
            The posterior network's own settings (``flow``, ``flow_layers``,
            ``ema_decay``, ``per_temperature``, ``pair_sampling``,
            ``beta_sampling``, ``posterior_epochs``) retrain that network
            alone; ``pool_contrast``, ``nle_contrast``, the weights'
            ``stabilization`` and Route A's synthesis and ``auto`` settings
            also redo the scores or synthesized pairs they shape. Its
            configuration must equal this run's in every other setting
            (``gbi.RunConfigMismatch`` otherwise), except the route: a run of
            another route lends its simulations and the surrogates and scores
            they share (route auto trains the NRE of route b-nre and the score
            model of route a, on the same simulations with the same seeds, so
            taking them over gives the run it would train itself). A list of
            run directories is read in order; a file comes from the first that
            holds it (``reuse=["runs/slcp_a", "runs/slcp_b-nre"]`` for route
            auto trains neither surrogate). Needs ``out``.
        **settings: further ``gbi.RunConfig`` fields (``max_epochs``,
            ``stabilization``, ``flow``, ...).

    Returns:
        a ``TrainingResult`` with the posterior and the report.

    Example:
        >>> result = train("two_moons", simulations=2000, max_epochs=2,
        ...                verbose=False)  # doctest: +SKIP
        >>> result.posterior.sample(100, [0.0, 0.1], beta=0.5, seed=0).shape  # doctest: +SKIP
        (100, 2)
    """
    task_options = dict(task_options or {})
    prob = make_problem(problem, **task_options)
    config = RunConfig(
        problem=prob.name,
        route=route,
        simulations=simulations,
        beta_range=tuple(beta_range),
        seed=seed,
        device=device,
        task_options=task_options,
        **settings,
    )
    _warn_unread(config, settings)
    if reuse is not None and out is None:
        raise ValueError("reuse needs out: the run directory that takes the stages over")
    # resolved once, before simulating: a stencil that does not fit x fails now
    config, embedding = resolve_config(config, prob)
    if progress is None:
        progress = sys.stderr.isatty()
    log = _log_fn(verbose)
    run = None
    if out is not None:
        stored = config.to_dict()
        if not prob.builtin:
            stored["prior_low"] = prob.low.tolist()
            stored["prior_high"] = prob.high.tolist()
        try:
            run = RunDirectory(out, stored, LEGACY_SETTINGS, config.unread_settings)
        except RunConfigMismatch as err:
            raise RunConfigMismatch(str(err) + _reuse_hint(out, err), err.differences) from None
        for source in _reuse_sources(reuse):
            adopted = run.adopt(source, UPSTREAM_STAGES, REUSABLE_ACROSS)
            log(f"reusing from {source}: {', '.join(adopted) or 'nothing new'}")
        if run.has("posterior.safetensors") and run.has("report.json"):
            log(f"{run.path} holds a finished run: loading it")
            posterior = gbi_npe.Posterior.load(run.file("posterior.safetensors"))
            return TrainingResult(posterior, run.load_json("report.json"), run.path)
    return _run(prob, config, embedding, run, executor, progress, log)


def _warn_unread(config: RunConfig, settings: dict[str, Any]) -> None:
    """Warn about settings given a value other than their default that this run
    never reads (``RunConfig.unread_settings``): a flag of another route is a
    likely mistake, and silently ignoring it would hide that."""
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    ignored = sorted(
        name
        for name, value in settings.items()
        if name in config.unread_settings and value != defaults.get(name)
    )
    if not ignored:
        return
    route_unread = UNREAD_SETTINGS[config.route]

    def why(name: str) -> str:
        if name in route_unread:
            return f"route {config.route!r} does not use it"
        if name in POOL_SETTINGS:
            return "no contrastive pool is trained"
        return "route auto's auto_fallback 'weights' takes no Route A pairs"

    warnings.warn(
        "ignored, this run never reads them: "
        + "; ".join(f"{name} ({why(name)})" for name in ignored),
        UserWarning,
        stacklevel=3,
    )


def resolve_config(
    config: RunConfig, problem: Problem
) -> tuple[RunConfig, gbi_npe.EmbeddingConfig]:
    """How the run reads x, and its configuration with what depends on that resolved.

    ``embedding="auto"`` becomes the problem's stencil or x itself, and an unset
    ``posterior_embedding`` becomes ``"surrogate"`` for route b-nre where x is
    embedded and ``"own"`` where it is read as it is (``RunConfig``); ``train``
    stores the configuration returned.

    Raises:
        ValueError: a stencil that does not fit the problem's x, or an x
            embedding to share where the problem's x is read as it is.
    """
    embedding = routes.embedding_config(
        config, problem, problem.task.x_dim if problem.builtin else None
    )
    if config.posterior_embedding is None:
        chosen = "own" if embedding.kind == "identity" else DEFAULT_POSTERIOR_EMBEDDING
        config = dataclasses.replace(config, posterior_embedding=chosen)
    return config, embedding


def _reuse_sources(
    reuse: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
) -> list[Path]:
    """``reuse`` as a list of run directories (one path, or several in order)."""
    if reuse is None:
        return []
    if isinstance(reuse, (str, os.PathLike)):
        return [Path(reuse)]
    sources = [Path(r) for r in reuse]
    if not sources:
        raise ValueError("reuse is an empty list: give one or more run directories, or None")
    return sources


def _reuse_hint(out: str | os.PathLike[str], refused: RunConfigMismatch) -> str:
    """Where ``out``'s run was refused only for settings read after its surrogates:
    how to train the rest anew on its simulations and surrogates (``reuse=``); else
    nothing."""
    differing = refused.differences
    if not differing or set(differing) - set(DOWNSTREAM_SETTINGS):
        return ""
    return (
        " Only settings read after the surrogates differ: a new folder with "
        f"reuse={str(out)!r} (gbi train ... --out NEW --reuse {out}) trains the rest "
        "anew on this run's simulations and surrogates."
    )


def _run(
    problem: Problem,
    config: RunConfig,
    embedding: gbi_npe.EmbeddingConfig,
    run: RunDirectory | None,
    executor: Executor | None,
    progress: bool,
    log,
) -> TrainingResult:
    t0 = time.perf_counter()
    report: dict[str, Any] = {
        "problem": problem.name,
        "route": config.route,
        "config": config.to_dict(),
    }
    log(f"simulating {config.simulations} pairs of {problem.name}")
    base = simulate_base_set(
        problem,
        config.simulations,
        config.seed,
        run,
        chunk_size=config.chunk_size,
        executor=executor,
        progress=progress,
    )
    report["simulations"] = {
        "requested": base.n_requested,
        "dropped_nonfinite": base.n_dropped,
        "reused": base.n_reused,
        "seconds": base.seconds,
    }
    if base.n_dropped:
        log(f"dropped {base.n_dropped} simulations with non-finite output")
    if base.theta.shape[0] < 20:
        raise ValueError(
            f"only {base.theta.shape[0]} of {base.n_requested} simulations are finite: "
            "too few to train on"
        )
    # a user simulator's x is known only now: check the stencil before any training
    routes.check_x_width(embedding, problem, base.x.shape[1])
    report["embedding"] = embedding.kind
    if config.route in ("b-nre", "b-nle"):
        posterior = routes.route_b(
            config.route[2:], problem, base, config, run, progress, log, report, embedding
        )
    elif config.route == "a":
        posterior = routes.route_a(problem, base, config, run, progress, log, report, embedding)
    else:
        posterior = routes.route_auto(problem, base, config, run, progress, log, report, embedding)
    report["seconds_total"] = time.perf_counter() - t0
    report["beta_range"] = list(posterior.beta_range)
    if run is not None:
        posterior.save(
            run.file("posterior.safetensors"),
            metadata={"problem": problem.name, "route": config.route},
        )
        run.save_json("report.json", report)
        log(f"saved the posterior and report in {run.path}")
    return TrainingResult(posterior, report, None if run is None else run.path)
