"""Calibration of the amortized posterior: SBC ranks and expected coverage at several betas.

For each task and each beta in {0.3, 1, 1.5}, m pairs (theta_i, x_i) with
theta_i | x_i ~ p_beta(theta | x_i) and L draws of q(theta | x_i, beta) per
pair go through ``gbi_eval.check_calibration``: per-parameter KS tests of the
randomized SBC ranks, a KS test of the joint (highest-density) ranks, and the
expected coverage of q's highest-density regions, coverage(alpha) against alpha.

Pairs. The x_i are prior-predictive draws (``task.prior.sample``,
``task.simulate``), the same for every beta. At beta = 1 the generating theta
is an exact posterior draw. At beta != 1, theta_i is one reference draw from
p_beta(theta | x_i) (``gbi_eval.reference_posterior``; slcp: parallel
tempering), cached in ``benchmarks/_work/calibration/`` per (task, beta, m,
seed). Each reference call asks for 16 draws (one per chain or ladder of the
default samplers, at the same cost as one draw: every chain runs its burn-in
and at least 4 kept steps anyway) and keeps the first of the shuffled draws,
i.e. the draw of a uniformly chosen chain. (Before commit 1de4545,
``gbi_eval.reference_pairs`` took chain 0's draw for every pair, and two_moons'
chain 0 stays on one side of the fold: about 90 % of its pairs sat there
instead of 50 %. This benchmark found that bug.)

The q side: the m x L draws come from one batched ``posterior.sample`` call,
and log q of all m (L + 1) points (theta_i and its draws) from one batched
``posterior.log_prob`` call; ``check_calibration`` is then fed these rows back
(``_replay_fns``), so it costs no network call of its own.

Budget (2 shared cores, after the models are trained). Measured: one reference
pair takes about 0.05 s on two_moons and 0.3 s on slcp (the 16-ladder
parallel-tempering run); on one torch thread, q's batched draws and
``log_prob`` cost about 20 us per point on two_moons and 25 us on slcp
(5-layer spline flow). With m = 1000 and L = 200 that is
2 betas x 1000 x (0.05 + 0.3) s = 700 s of reference pairs (once; cached
afterwards) plus 3 betas x 0.4 M points x (20 + 25) us = about 55 s of q, so
about 13 minutes for the first run and 1-2 minutes for a rerun. m = 1000
puts the binomial tolerance on coverage at 2 sqrt(alpha (1 - alpha) / m)
<= 0.032; L = 200 resolves coverage levels and ranks to 0.005, far below
that. m dominates the power of every test, so the budget goes to m rather
than L.

Anchor: at beta = 1, ``sbi``'s NPE (NSF, sbi's defaults) trained on the same
simulations is checked on the same pairs (``--no-anchor`` skips it): whether a
miscalibration at beta = 1 is gbi's or the budget's. Its draws and log q are
cached beside the reference pairs.

Torch runs on one thread by default (``--threads``): on two cores shared with
other work, two OpenMP threads made the same draws up to 100x slower.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from _common import ROOT, WORK_DIR, route_variant, run_name, trained_run

TASKS = ("two_moons", "slcp")
LIKELIHOOD_TASKS = ("two_moons", "gaussian_mixture", "slcp", "lorenz96")
BETAS = (0.3, 1.0, 1.5)
#: the route whose record is ``calibration`` (other routes write ``calibration-<route>``)
ROUTE = "b-nre"
PAIRS = 1000
SAMPLES = 200
#: reference draws per call: one per chain (two_moons) or ladder (slcp) of the defaults.
REFERENCE_DRAWS = 16
#: KS p-values below this count as a rejection of uniform ranks.
KS_LEVEL = 0.01
CACHE_DIR = WORK_DIR / "calibration"
FIGURES_DIR = ROOT / "docs" / "figures"


def record_name(args: argparse.Namespace) -> str:
    """The record this run writes: ``calibration`` for the default route, else
    ``calibration-<route>`` (its own section and figures)."""
    return route_variant("calibration", args.route, ROUTE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gbi import ROUTES

    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=LIKELIHOOD_TASKS)
    parser.add_argument("--betas", nargs="+", type=float, default=list(BETAS))
    parser.add_argument("--route", default=ROUTE, choices=ROUTES)
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=PAIRS, help="m, calibration pairs")
    parser.add_argument("--samples", type=int, default=SAMPLES, help="L, q draws per pair")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="training epochs bound (smoke runs)"
    )
    parser.add_argument("--tag", default="", help="suffix of the run directories")
    parser.add_argument(
        "--no-anchor",
        dest="anchor",
        action="store_false",
        help="skip sbi's NPE (trained on the same simulations, checked at beta = 1)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (0: torch's default)"
    )


# -- pairs ------------------------------------------------------------------------------


def _stream(seed: int, task: str, *labels: int) -> np.random.Generator:
    """A random stream of its own per (seed, task, labels), independent of training's."""
    return np.random.default_rng([seed, zlib.crc32(task.encode()), 0xCA1B, *labels])


def _observations(task: Any, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """m prior-predictive pairs (theta_i, x_i): theta_i ~ prior, x_i ~ p(x | theta_i)."""
    rng = _stream(seed, task.name)
    theta = task.prior.sample(m, seed=rng)
    x = task.simulate(theta, seed=rng)
    if not np.all(np.isfinite(x)):
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise RuntimeError(f"{task.name}: {bad} of {m} calibration simulations are not finite")
    return theta, x


def _reference_thetas(
    task: Any, x: np.ndarray, beta: float, seed: int
) -> tuple[np.ndarray, float, bool]:
    """One draw of p_beta(theta | x_i) per row of x (m, x_dim), cached on disk.

    Returns:
        theta (m, d), the seconds it took to make them (when they were made),
        and whether they came from the cache.
    """
    import gbi_eval

    m = x.shape[0]
    path = CACHE_DIR / f"{task.name}_beta{beta:g}_m{m}_s{seed}.npz"
    if path.is_file():
        with np.load(path) as stored:
            if np.array_equal(stored["x"], x):
                return stored["theta"], float(stored["seconds"]), True
    children = _stream(seed, task.name, 1, round(beta * 1e6)).spawn(m)
    theta = np.empty((m, task.prior.dim))
    start = time.perf_counter()
    with warnings.catch_warnings():
        # R-hat / ESS of 16 chains x 4 kept steps say nothing; each chain is past burn-in.
        warnings.simplefilter("ignore", gbi_eval.ConvergenceWarning)
        for i in range(m):
            draws = gbi_eval.reference_posterior(task, x[i], beta, REFERENCE_DRAWS, children[i])
            theta[i] = draws.samples[0]
    seconds = time.perf_counter() - start
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, theta=theta, x=x, seconds=seconds)
    tmp.replace(path)
    return theta, seconds, False


# -- q ------------------------------------------------------------------------------------


def _replay_fns(
    x: np.ndarray, samples: np.ndarray, log_q: np.ndarray
) -> tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]:
    """``sample_fn`` / ``log_prob_fn`` for ``check_calibration`` that return precomputed rows.

    ``check_calibration`` visits the pairs in order, calling ``sample_fn`` then
    ``log_prob_fn`` for each; both check that they are asked about the pair they hold.

    Args:
        x: the observations, shape (m, x_dim).
        samples: q's draws, shape (m, L, d).
        log_q: log q of [theta_i, draws of pair i], shape (m, L + 1).
    """
    position = [-1]

    def sample_fn(x_i: np.ndarray, beta: float, n: int) -> np.ndarray:
        position[0] += 1
        i = position[0]
        if i >= x.shape[0] or n != samples.shape[1] or not np.array_equal(x_i, x[i]):
            raise RuntimeError(f"check_calibration asked for pair {i} out of order")
        return samples[i]

    def log_prob_fn(theta: np.ndarray, x_i: np.ndarray, beta: float) -> np.ndarray:
        i = position[0]
        if not (np.array_equal(x_i, x[i]) and np.array_equal(theta[1:], samples[i])):
            raise RuntimeError(f"check_calibration asked for log q of pair {i} out of order")
        return log_q[i]

    return sample_fn, log_prob_fn


def _shape_of_ranks(u: np.ndarray, marginal_error: float) -> str:
    """A word for non-uniform ranks u (m,) in (0, 1) of one parameter."""
    m = u.shape[0]
    z = (u.mean() - 0.5) / np.sqrt(1.0 / (12.0 * m))
    if z > 3:
        return "q too low"  # theta_i tends to lie above q's draws
    if z < -3:
        return "q too high"
    return "q too narrow" if marginal_error < 0 else "q too wide"


#: a cell's pair fields at beta = 1, where the simulations' own theta are exact draws.
EXACT_PAIRS = {
    "pair_source": "exact",
    "pair_seconds": 0.0,
    "pairs_cached": False,
    "pair_seconds_each": 0.0,
}


def _one_beta(
    task: Any,
    posterior: Any,
    theta_true: np.ndarray,
    x: np.ndarray,
    beta: float,
    args: argparse.Namespace,
) -> tuple[dict[str, Any], Any]:
    m, n_samples = x.shape[0], args.samples
    cell: dict[str, Any] = {"beta": beta}
    label = round(beta * 1e6)  # own streams per beta
    if beta == 1.0:
        theta = theta_true
        cell.update(EXACT_PAIRS)
    else:
        print(f"   {task.name}: reference pairs at beta = {beta:g} (cached after)", flush=True)
        theta, seconds, cached = _reference_thetas(task, x, beta, args.seed)
        cell.update(pair_source="reference", pair_seconds=seconds, pairs_cached=cached)
    cell["pair_seconds_each"] = cell["pair_seconds"] / m

    if args.threads > 0:  # again: numba's OpenMP layer (simulator, references) resets it
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    samples = posterior.sample(n_samples, x, beta, seed=_stream(args.seed, task.name, 2, label))
    cell["sample_seconds"] = time.perf_counter() - start
    points = np.concatenate([theta[:, None, :], samples], axis=1)  # (m, L + 1, d)
    start = time.perf_counter()
    log_q = posterior.log_prob(
        points.reshape(-1, points.shape[-1]), np.repeat(x, n_samples + 1, axis=0), beta
    ).reshape(m, n_samples + 1)
    cell["log_prob_seconds"] = time.perf_counter() - start
    return _judge(cell, theta, x, beta, samples, log_q, args.seed, task.name)


def _judge(
    cell: dict[str, Any],
    theta: np.ndarray,
    x: np.ndarray,
    beta: float,
    samples: np.ndarray,
    log_q: np.ndarray,
    seed: int,
    task_name: str,
) -> tuple[dict[str, Any], Any]:
    """``check_calibration`` on precomputed draws (m, L, d) and log q (m, L + 1);
    fills ``cell`` with its tests, coverage errors and verdict."""
    import gbi_eval

    m, n_samples = samples.shape[:2]
    label = round(beta * 1e6)
    cell["theta_outside_support"] = int(np.sum(~np.isfinite(log_q[:, 0])))
    sample_fn, log_prob_fn = _replay_fns(x, samples, log_q)
    start = time.perf_counter()
    result = gbi_eval.check_calibration(
        sample_fn,
        theta,
        x,
        beta,
        n_samples,
        seed=_stream(seed, task_name, 3, label),
        log_prob_fn=log_prob_fn,
    )
    cell["check_seconds"] = time.perf_counter() - start

    levels, coverage = result.coverage_levels, result.coverage
    error = coverage - levels
    worst = int(np.argmax(np.abs(error)))
    tolerance = 2.0 * np.sqrt(levels[worst] * (1.0 - levels[worst]) / m)
    u = (result.ranks + 0.5) / (n_samples + 1)
    marginal_error = (result.marginal_coverage - levels[:, None]).mean(axis=0)
    cell.update(
        rank_pvalues=result.rank_pvalues.tolist(),
        joint_pvalue=result.joint_pvalue,
        coverage_statistic=result.coverage_statistic,
        coverage_levels=levels.tolist(),
        coverage=coverage.tolist(),
        marginal_coverage=result.marginal_coverage.tolist(),
        max_coverage_error=float(np.abs(error[worst])),
        worst_level=float(levels[worst]),
        worst_signed_error=float(error[worst]),
        mean_signed_error=float(error.mean()),
        tolerance=float(tolerance),
        within_tolerance=bool(abs(error[worst]) <= tolerance),
        mean_rank=u.mean(axis=0).tolist(),
        rank_shape=[_shape_of_ranks(u[:, j], float(marginal_error[j])) for j in range(u.shape[1])],
    )
    return cell, result


def _anchor(
    task: Any, simulations: int, theta: np.ndarray, x: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    """sbi's NPE (NSF, sbi's defaults) on the run's own simulations, checked at beta = 1
    on the same pairs as q: what the single-beta tool's calibration is at this budget.

    sbi's posterior is used as its users get it: draws by rejection inside the
    prior box, and ``log_prob`` without the leakage normalization (HPD ranks
    compare log q at one x, which a constant does not change). Its draws and
    log q are cached in ``benchmarks/_work/calibration/``; a failed training is
    recorded, not raised (as in the accuracy benchmark).
    """
    m, n_samples = theta.shape[0], args.samples
    bound = "" if args.max_epochs is None else f"_e{args.max_epochs}"
    name = f"sbi_{task.name}_n{simulations}_m{m}_L{n_samples}_s{args.seed}{bound}.npz"
    path = CACHE_DIR / name
    stored = {}
    if path.is_file():
        with np.load(path) as cached:
            stored = dict(cached)
    if stored and np.array_equal(stored["x"], x):
        training = json.loads(str(stored["training"]))
        print(f"   {task.name}: sbi's NPE (anchor), cached", flush=True)
    else:
        training, stored = _anchor_draws(task, simulations, theta, x, args)
        if "failed" in training:
            return {"training": training}
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, x=x, training=json.dumps(training), **stored)
        tmp.replace(path)
    cell: dict[str, Any] = {"beta": 1.0, **EXACT_PAIRS}
    cell["sample_seconds"] = float(stored["sample_seconds"])
    cell["log_prob_seconds"] = float(stored["log_prob_seconds"])
    samples, log_q = stored["samples"], stored["log_q"]
    cell, _ = _judge(cell, theta, x, 1.0, samples, log_q, args.seed, task.name)
    return {"training": training, **cell}


def _anchor_draws(
    task: Any, simulations: int, theta: np.ndarray, x: np.ndarray, args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train sbi's NPE; its L draws per x (m, L, d) and log q of [theta_i, draws] (m, L + 1)."""
    from bench_accuracy import train_sbi_npe

    import gbi

    print(f"   {task.name}: sbi's NPE on the same {simulations} simulations (anchor)", flush=True)
    base = gbi.simulate_base_set(gbi.make_problem(task.name), simulations, args.seed)
    start = time.perf_counter()
    try:
        posterior, training = train_sbi_npe(task, base.theta, base.x, args.seed, args.max_epochs)
    except (ValueError, RuntimeError) as error:  # sbi refuses a non-finite loss
        reason = str(error).strip().splitlines()[0]
        return {"seconds": time.perf_counter() - start, "failed": reason}, {}
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    m, n_samples = x.shape[0], args.samples
    x_t = torch.as_tensor(x, dtype=torch.float32)
    start = time.perf_counter()
    samples = torch.stack(
        [posterior.sample((n_samples,), x=x_t[i], show_progress_bars=False) for i in range(m)]
    )
    sample_seconds = time.perf_counter() - start
    points = torch.cat([torch.as_tensor(theta, dtype=torch.float32)[:, None], samples], dim=1)
    start = time.perf_counter()
    with torch.no_grad():  # (L + 1, m): sbi's batched log_prob takes sample dim first
        log_q = posterior.log_prob_batched(points.transpose(0, 1), x=x_t, norm_posterior=False)
    return training, {
        "samples": samples.numpy().astype(np.float64),
        "log_q": log_q.transpose(0, 1).numpy().astype(np.float64),
        "sample_seconds": sample_seconds,
        "log_prob_seconds": time.perf_counter() - start,
    }


# -- figure --------------------------------------------------------------------------------


def _figure(task: Any, results: list[Any], path) -> None:
    """Coverage curves of every beta (left) and rank histograms, one row per beta."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    d = task.prior.dim
    rows = len(results)
    fig = plt.figure(figsize=(4.2 + 2.2 * d, 0.4 + 2.0 * max(rows, 2)))
    grid = fig.add_gridspec(rows, d + 1, width_ratios=[1.9] + [1.0] * d)
    ax = fig.add_subplot(grid[:, 0])
    m = results[0].ranks.shape[0]
    alpha = np.linspace(0.0, 1.0, 101)
    band = 2.0 * np.sqrt(alpha * (1.0 - alpha) / m)
    ax.fill_between(alpha, alpha - band, alpha + band, color="0.85", linewidth=0)
    ax.plot([0, 1], [0, 1], color="0.4", linestyle="--", linewidth=1)
    for k, result in enumerate(results):
        ax.plot(
            result.coverage_levels,
            result.coverage,
            marker="o",
            markersize=3,
            color=f"C{k}",
            label=f"beta = {result.beta:g}",
        )
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal")
    ax.set_xlabel("credibility level alpha")
    ax.set_ylabel("expected coverage (HPD)")
    ax.set_title(f"coverage, m = {m} pairs", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    names = list(getattr(task, "theta_names", ())) or [f"theta_{j + 1}" for j in range(d)]
    for k, result in enumerate(results):
        total = result.n_posterior_samples + 1
        n_bins = int(min(max(m // 10, 2), 20, total))
        edges = np.floor(np.linspace(0, total, n_bins + 1))
        bin_prob = np.diff(edges) / total
        low, high = stats.binom.ppf([[0.005], [0.995]], m, bin_prob[None, :])
        for j in range(d):
            hist = fig.add_subplot(grid[k, j + 1])
            hist.hist(result.ranks[:, j], bins=edges - 0.5, color=f"C{k}", alpha=0.7)
            hist.fill_between(  # 99 % band of each bin's count under uniform ranks
                np.repeat(edges - 0.5, 2)[1:-1],
                np.repeat(low, 2),
                np.repeat(high, 2),
                color="0.2",
                alpha=0.25,
                linewidth=0,
                zorder=3,
            )
            hist.set_yticks([])
            hist.set_title(f"{names[j]}, p = {result.rank_pvalues[j]:.2g}", fontsize=8)
            if j == 0:
                hist.set_ylabel(f"beta = {result.beta:g}", fontsize=9)
            if k == rows - 1:
                hist.set_xlabel("rank", fontsize=8)
            hist.tick_params(labelsize=7)
    fig.suptitle(
        f"{task.name}: HPD coverage (band: ±2 binomial sd) and SBC ranks among "
        f"L = {results[0].n_posterior_samples} draws\n(band: 99 % range of a bin's count "
        "under uniform ranks; p: KS test)",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the benchmark --------------------------------------------------------------------------


def _one_task(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import gbi_sims

    task = gbi_sims.get_task(name)
    settings = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    print(f"   {name}: trained posterior ({args.route}, {args.simulations} simulations)")
    start = time.perf_counter()
    trained = trained_run(
        name, args.route, args.simulations, seed=args.seed, tag=args.tag, **settings
    )
    model_seconds = time.perf_counter() - start
    posterior = trained.posterior
    start = time.perf_counter()
    theta_true, x = _observations(task, args.pairs, args.seed)
    cells, results = [], []
    for beta in args.betas:
        print(f"   {name}: beta = {beta:g}", flush=True)
        cell, result = _one_beta(task, posterior, theta_true, x, beta, args)
        cells.append(cell)
        results.append(result)
    anchor = None
    if args.anchor and 1.0 in args.betas:
        anchor = _anchor(task, args.simulations, theta_true, x, args)
    figure = FIGURES_DIR / f"calibration_{name}{route_variant('', args.route, ROUTE, '_')}.png"
    _figure(task, results, figure)
    return {
        "task": name,
        "run": run_name(name, args.route, args.simulations, args.seed, args.tag),
        "theta_names": list(task.theta_names),
        "model_seconds": model_seconds,
        "training_seconds": trained.report.get("seconds_total"),
        "seconds": time.perf_counter() - start,
        "figure": str(figure.relative_to(ROOT / "docs")),
        "cells": cells,
        "anchor": anchor,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    for beta in args.betas:
        if not beta > 0:
            raise ValueError(f"--betas must be positive, got {beta}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    return {
        "route": args.route,
        "simulations": args.simulations,
        "pairs": args.pairs,
        "samples": args.samples,
        "seed": args.seed,
        "max_epochs": args.max_epochs,
        "tag": args.tag,
        "torch_threads": torch.get_num_threads(),
        "tasks": [_one_task(name, args) for name in args.tasks],
    }


def _trained_anchor(task: dict[str, Any]) -> dict[str, Any] | None:
    """A task's sbi anchor cell, or None where it was skipped or failed to train."""
    anchor = task.get("anchor")
    return anchor if anchor and "failed" not in anchor["training"] else None


def _verdict(cell: dict[str, Any]) -> str:
    if cell["within_tolerance"]:
        return "calibrated"
    return "over-confident" if cell["worst_signed_error"] < 0 else "under-confident"


def _summary(task: dict[str, Any]) -> str:
    """One sentence per task from the numbers: the verdict at each beta, and rank failures."""
    parts = []
    for cell in task["cells"]:
        verdict = _verdict(cell)
        detail = (
            f"max |coverage - alpha| = {cell['max_coverage_error']:.3f} "
            f"{'<=' if cell['within_tolerance'] else '>'} {cell['tolerance']:.3f}"
        )
        if verdict != "calibrated":
            detail += (
                f", coverage {cell['worst_level'] + cell['worst_signed_error']:.2f} "
                f"at alpha = {cell['worst_level']:.2f}"
            )
        parts.append(f"{verdict} at beta = {cell['beta']:g} ({detail})")
    sentence = f"**{task['task']}**: " + "; ".join(parts) + "."
    anchor = _trained_anchor(task)
    if anchor:
        sentence += (
            f" sbi's NPE on the same simulations, at beta = 1: {_verdict(anchor)} "
            f"(max |coverage - alpha| = {anchor['max_coverage_error']:.3f}, "
            f"{anchor['training']['epochs']} epochs, {anchor['training']['seconds']:.0f} s)."
        )
    rejected = []
    for cell in task["cells"]:
        bad = [
            f"{task['theta_names'][j]} ({cell['rank_shape'][j]}, p = {p:.2g})"
            for j, p in enumerate(cell["rank_pvalues"])
            if p < KS_LEVEL
        ]
        if bad:
            rejected.append(f"at beta = {cell['beta']:g}: " + ", ".join(bad))
    if rejected:
        sentence += (
            f" Marginal SBC ranks are not uniform (KS p < {KS_LEVEL:g}) "
            + "; ".join(rejected)
            + "."
        )
    else:
        sentence += f" No marginal SBC rank test rejects uniformity at p < {KS_LEVEL:g}."
    return sentence


def at_a_glance(record: dict[str, Any]) -> list[str]:
    """One markdown bullet per task for the top of docs/results.md: the largest
    HPD coverage error and the verdict at each beta."""
    lines = []
    for task in record["tasks"]:
        cells = task["cells"]
        lines.append(
            f"{task['task']}, route {record['route']}, {record['simulations'] // 1000}k: "
            "largest |coverage - alpha| "
            + ", ".join(
                f"{c['max_coverage_error']:.3f} at beta {c['beta']:g} ({_verdict(c)})"
                for c in cells
            )
            + (
                f"; sbi's NPE at beta 1: {anchor['max_coverage_error']:.3f} ({_verdict(anchor)})"
                if (anchor := _trained_anchor(task))
                else ""
            )
            + "."
        )
    return lines


def to_markdown(record: dict[str, Any]) -> str:
    m, n_samples = record["pairs"], record["samples"]
    lines = [
        f"Route {record['route']}, {record['simulations']:,} simulations"
        + (f", at most {record['max_epochs']} epochs" if record.get("max_epochs") else "")
        + f"; m = {m} prior-predictive pairs, L = {n_samples} draws of q per pair. At "
        "beta = 1 theta_i is the generating parameter (exact); at other betas it is one "
        "reference draw from p_beta(theta | x_i) (`gbi_eval.reference_posterior`). Coverage "
        "of q's highest-density regions; tolerance 2 sqrt(alpha (1 - alpha) / m) at the "
        "level of the largest error (with 19 correlated levels a calibrated q exceeds it "
        "now and then; the reference draws add their own error at beta != 1). Verdict: "
        "calibrated within tolerance, else over-confident (coverage below alpha) or "
        "under-confident (above).",
        "",
        "| task | beta | pairs | KS p per parameter | joint p | max \\|cov - alpha\\| "
        "(at alpha) | tolerance | verdict | pairs (s) | q draws + log q (s) |",
        "|---|---:|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for task in record["tasks"]:
        anchor = _trained_anchor(task)
        rows = [(task["task"], cell) for cell in task["cells"]]
        if anchor:
            rows.append((f"{task['task']}, sbi NPE (anchor)", anchor))
        elif task.get("anchor"):
            lines.append(
                f"| {task['task']}, sbi NPE (anchor) | 1 | failed to train: "
                f"{task['anchor']['training']['failed']} | | | | | | | |"
            )
        for label, cell in rows:
            source = cell["pair_source"]
            pair_time = (
                "–"
                if source == "exact"
                else f"{cell['pair_seconds']:.0f}" + (" (cached)" if cell["pairs_cached"] else "")
            )
            lines.append(
                f"| {label} | {cell['beta']:g} | {source} | "
                + ", ".join(f"{p:.2g}" for p in cell["rank_pvalues"])
                + f" | {cell['joint_pvalue']:.2g} | {cell['max_coverage_error']:.3f} "
                f"({cell['worst_level']:.2f}) | {cell['tolerance']:.3f} | {_verdict(cell)} | "
                f"{pair_time} | {cell['sample_seconds']:.1f} + {cell['log_prob_seconds']:.1f} |"
            )
    lines.append("")
    for task in record["tasks"]:
        lines += [_summary(task), ""]
    lines.append(
        "Wall time per task after the model was trained (pairs, q, checks, figure): "
        + ", ".join(f"{task['task']} {task['seconds']:.0f} s" for task in record["tasks"])
        + "."
    )
    lines.append("")
    for task in record["tasks"]:
        lines.append(f"![calibration of {task['task']}]({task['figure']})")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
