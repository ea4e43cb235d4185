"""Hodgkin–Huxley on real Allen recordings: what beta does to a misspecified fit.

The paper's shared-protocol setup (Gao et al. 2023; paper Figures 2 and 3):
ONE Route B-NLE model of ``hodgkin_huxley`` with ``recording="all"``, trained
on the 1450 ms protocol of cell 518290966 over beta in [0.1, 2], and
conditioned on the statistics of the shipped recordings (observations 0..9,
each with its own t_on / t_off). The single-compartment model cannot
reproduce real cells exactly, so how beta trades fit for spread is the point.

For each chosen observation:

- posterior marginals of the 8 parameters at beta = 0.1, 1, 2 (Figure 2) and
  the posterior standard deviation of each parameter at every ``--betas``;
- posterior-predictive voltage traces against the recording at beta = 0.1
  and 1 (Figure 3);
- K posterior-predictive simulations per beta: for each of the 7 statistics
  the 5–95 % band, whether the observed value lies inside it, and the
  standardized distance z = (observed - median) / (IQR / 1.349) (the IQR
  scaled to a normal's std; the std where the IQR is 0); non-finite
  simulations are dropped and counted.

The record also keeps the training report's relative ESS per beta, the
training times and the dropped simulations. The trained model lives in
``benchmarks/_work/runs`` (``_common.trained_run``) and is reused by a rerun.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from typing import Any

import numpy as np
from _common import ROOT, RUNS_DIR, route_variant, run_name, trained_run

import gbi_tempering

TASK = "hodgkin_huxley"
#: the paper's route for HH; another route (``--route``) writes its own record
#: (``hh-<route>``) and figures, so the two can be compared
ROUTE = "b-nle"
ROUTES = ("b-nle", "b-nre", "a", "auto")
TASK_OPTIONS = {"recording": "all"}
BETA_RANGE = (0.1, 2.0)
#: the paper's Figure 2 and 3 temperatures
MARGINAL_BETAS = (0.1, 1.0, 2.0)
TRACE_BETAS = (0.1, 1.0)
PREDICTIVE_BETAS = (0.1, 0.3, 0.5, 1.0, 1.5, 2.0)
QUANTILES = (0.05, 0.95)
#: IQR of a normal distribution in units of its standard deviation
NORMAL_IQR = 1.349
FIGURES_DIR = ROOT / "docs" / "figures"


#: a temperature whose weights' relative ESS is below this is collapsed
#: (``gbi_tempering.SNISWeights``'s default warning threshold)
COLLAPSED_RELATIVE_ESS = gbi_tempering.MIN_RELATIVE_ESS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--route",
        choices=ROUTES,
        default=ROUTE,
        help=f"training route (default {ROUTE}, the paper's; another route gets its own "
        "record and figures)",
    )
    parser.add_argument("--simulations", type=int, default=10_000, help="base simulation set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="bound on the epochs of each network (default: gbi.train's)",
    )
    parser.add_argument(
        "--tag", default="", help="suffix of the run folder, so a smoke run has its own"
    )
    parser.add_argument(
        "--observations",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="observation indices (0..9: the shipped Allen recordings)",
    )
    parser.add_argument(
        "--betas",
        type=float,
        nargs="+",
        default=list(PREDICTIVE_BETAS),
        help="temperatures of the predictive check and the posterior spread (must include 1)",
    )
    parser.add_argument(
        "--predictive", type=int, default=200, help="predictive simulations per (observation, beta)"
    )
    parser.add_argument(
        "--posterior-samples", type=int, default=5_000, help="draws for marginals and stds"
    )
    parser.add_argument("--traces", type=int, default=3, help="predictive traces per beta")


def record_name(args: argparse.Namespace) -> str:
    """The record this run writes: ``hh`` for the default route, else ``hh-<route>``."""
    return route_variant("hh", args.route, ROUTE)


def _check_args(args: argparse.Namespace, n_observations: int) -> None:
    for name in ("simulations", "predictive", "posterior_samples", "traces"):
        value = getattr(args, name)
        if value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
    if args.predictive < 2:
        raise ValueError(f"--predictive must be >= 2 to give a band, got {args.predictive}")
    if args.max_epochs is not None and args.max_epochs < 1:
        raise ValueError(f"--max-epochs must be >= 1, got {args.max_epochs}")
    bad = [i for i in args.observations if not 0 <= i < n_observations]
    if bad:
        raise ValueError(
            f"--observations must be indices 0..{n_observations - 1} of {TASK} with "
            f"recording='all' (0..9 are the Allen recordings), got {bad}"
        )
    if len(set(args.observations)) != len(args.observations):
        raise ValueError(f"--observations has duplicates: {args.observations}")
    low, high = BETA_RANGE
    outside = [b for b in args.betas if not low <= b <= high]
    if outside:
        raise ValueError(
            f"--betas must lie in the trained range [{low:g}, {high:g}], got {outside}"
        )
    if 1.0 not in args.betas:
        raise ValueError(f"--betas must include 1 (the reference of the std ratios): {args.betas}")
    if len(set(args.betas)) != len(args.betas):
        raise ValueError(f"--betas has duplicates: {args.betas}")


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _statistic_fit(rows: np.ndarray, observed: float) -> dict[str, Any]:
    """Band, median and standardized distance of one statistic, from finite rows (K,)."""
    if rows.size < 2:
        return {"q05": None, "median": None, "q95": None, "inside": None, "z": None}
    q05, median, q95 = np.quantile(rows, (QUANTILES[0], 0.5, QUANTILES[1]))
    q25, q75 = np.quantile(rows, (0.25, 0.75))
    scale = (q75 - q25) / NORMAL_IQR
    if scale <= 0:
        scale = float(np.std(rows))
    if scale > 0:
        z: float | None = float((observed - median) / scale)
    else:  # a constant predictive: z is 0 on it, undefined off it
        z = 0.0 if observed == median else None
    return {
        "q05": float(q05),
        "median": float(median),
        "q95": float(q95),
        "inside": bool(q05 <= observed <= q95),
        "z": z,
    }


def _simulate_predictive(task: Any, theta: np.ndarray, seed: int) -> np.ndarray:
    """Statistics of theta (K, 8), shape (K, 7), failed rows NaN (no warning)."""
    import gbi_sims

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gbi_sims.SimulationWarning)
        x = task.simulate(theta, seed=seed)
    x[~np.all(np.isfinite(x), axis=1)] = np.nan
    return x


def _one_observation(
    task: Any, posterior: Any, index: int, args: argparse.Namespace, width: np.ndarray
) -> tuple[dict[str, Any], np.ndarray]:
    """Posterior spread and predictive fit at every beta; also the (B, K, 7) statistics."""
    from gbi.simulation import derive_seed

    obs = task.observation(index)
    betas = list(args.betas)
    entries: list[dict[str, Any]] = []
    x_pred = np.full((len(betas), args.predictive, task.x_dim), np.nan)
    for b, beta in enumerate(betas):
        samples = posterior.sample(
            args.posterior_samples, obs.x, beta, seed=derive_seed(args.seed, f"std{index}-{beta:g}")
        )
        theta = posterior.sample(
            args.predictive, obs.x, beta, seed=derive_seed(args.seed, f"ppc{index}-{beta:g}")
        )
        sim_seed = derive_seed(args.seed, f"sim{index}-{beta:g}")
        x_pred[b] = _simulate_predictive(task, theta, sim_seed)
        finite = x_pred[b][np.all(np.isfinite(x_pred[b]), axis=1)]
        std = samples.std(axis=0)
        entries.append(
            {
                "beta": beta,
                "posterior_std": std.tolist(),
                "posterior_std_over_width": (std / width).tolist(),
                "posterior_mean": samples.mean(axis=0).tolist(),
                "predictive_n": args.predictive,
                "predictive_dropped": int(args.predictive - finite.shape[0]),
                "statistics": [
                    {"name": name, **_statistic_fit(finite[:, i], float(obs.x[i]))}
                    for i, name in enumerate(task.x_names)
                ],
            }
        )
    reference = entries[betas.index(1.0)]["posterior_std"]
    for entry in entries:
        entry["std_ratio_to_beta1"] = [
            _finite_or_none(s / r) if r > 0 else None
            for s, r in zip(entry["posterior_std"], reference, strict=True)
        ]
    label = task.recordings[index].name if index < len(task.recordings) else "synthetic"
    record = {"index": index, "name": label, "x_obs": obs.x.tolist(), "betas": entries}
    return record, x_pred


def _summary(observations: list[dict[str, Any]], betas: list[float]) -> list[dict[str, Any]]:
    """Per beta, over observations and statistics: coverage, |z|, std ratios, dropped sims."""
    rows = []
    for b, beta in enumerate(betas):
        fits = [s for o in observations for s in o["betas"][b]["statistics"]]
        decided = [s for s in fits if s["inside"] is not None]
        zs = [abs(s["z"]) for s in fits if s["z"] is not None]
        ratios = [
            r for o in observations for r in o["betas"][b]["std_ratio_to_beta1"] if r is not None
        ]
        rows.append(
            {
                "beta": beta,
                "inside": sum(s["inside"] for s in decided),
                "checked": len(decided),
                "median_abs_z": float(np.median(zs)) if zs else None,
                "median_std_ratio": float(np.median(ratios)) if ratios else None,
                "predictive_dropped": sum(
                    o["betas"][b]["predictive_dropped"] for o in observations
                ),
                "predictive_n": sum(o["betas"][b]["predictive_n"] for o in observations),
            }
        )
    return rows


def _training_facts(report: dict[str, Any]) -> dict[str, Any]:
    sims = report.get("simulations", {})
    weights = report.get("weights", {})
    return {
        "seconds_total": report.get("seconds_total"),
        "seconds_simulation": sims.get("seconds"),
        "seconds_surrogate": report.get("surrogate", {}).get("seconds"),
        "seconds_npe": report.get("npe", {}).get("seconds"),
        "simulations_requested": sims.get("requested"),
        "dropped_nonfinite": sims.get("dropped_nonfinite"),
        "dropped_nonfinite_scores": sims.get("dropped_nonfinite_scores"),
        # route auto: which temperature cells got the NRE's pool, Route A pairs or
        # the failing weights all the same (its fallback)
        "auto": report.get("auto", {}).get("summary"),
        "auto_failing_cells_on_weights": sum(
            cell.get("weights_fail", False) and cell["route"] == "b-nre"
            for cell in report.get("auto", {}).get("cells", [])
        ),
        "weights": {
            "beta": weights.get("beta", []),
            "relative_ess": weights.get("relative_ess", []),
            "k_hat": [_finite_or_none(k) for k in weights.get("k_hat", [])],
            "method": weights.get("method"),
        },
    }


def _figures(
    task: Any, posterior: Any, problem: Any, args: argparse.Namespace, x_pred: np.ndarray
) -> dict[str, Any]:
    from gbi import figures
    from gbi.simulation import derive_seed

    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    suffix = route_variant("", args.route, ROUTE, "_")
    written: dict[str, Any] = {"marginals": [], "traces": []}
    for index in args.observations:
        name = task.recordings[index].name if index < len(task.recordings) else "synthetic"
        marginals = figures.plot_marginals_across_beta(
            posterior,
            task.observation(index).x,
            MARGINAL_BETAS,
            FIGURES_DIR / f"hh_marginals_obs{index}{suffix}.png",
            theta_names=problem.theta_names,
            low=problem.low,
            high=problem.high,
            n=args.posterior_samples,
            seed=derive_seed(args.seed, f"marginals{index}"),
            title=f"hodgkin_huxley observation {index} ({name}): posterior marginals",
        )
        traces = figures.plot_predictive_traces(
            task,
            posterior,
            index,
            TRACE_BETAS,
            FIGURES_DIR / f"hh_traces_obs{index}{suffix}.png",
            n_traces=args.traces,
            seed=derive_seed(args.seed, f"traces{index}"),
            title=f"hodgkin_huxley observation {index} ({name}): posterior-predictive traces",
        )
        written["marginals"].append(marginals.relative_to(ROOT / "docs").as_posix())
        written["traces"].append(traces.relative_to(ROOT / "docs").as_posix())
    statistics = figures.plot_predictive_statistics(
        x_pred,
        np.stack([task.observation(i).x for i in args.observations]),
        args.betas,
        FIGURES_DIR / f"hh_statistics{suffix}.png",
        x_names=task.x_names,
        observation_labels=[f"observation {i}" for i in args.observations],
        quantiles=QUANTILES,
        title="hodgkin_huxley: posterior-predictive statistics against the recordings",
    )
    written["statistics"] = statistics.relative_to(ROOT / "docs").as_posix()
    return written


def run(args: argparse.Namespace) -> dict[str, Any]:
    from gbi.problem import make_problem

    problem = make_problem(TASK, **TASK_OPTIONS)
    task = problem.task
    _check_args(args, task.n_observations)
    args.betas = sorted(args.betas)
    name = run_name(TASK, args.route, args.simulations, args.seed, args.tag)
    reused = (RUNS_DIR / name / "report.json").is_file()
    settings: dict[str, Any] = {}
    if args.max_epochs is not None:
        settings["max_epochs"] = args.max_epochs
    print(f"   training (or reusing) {name}", flush=True)
    start = time.perf_counter()
    result = trained_run(
        TASK,
        args.route,
        args.simulations,
        seed=args.seed,
        tag=args.tag,
        task_options=TASK_OPTIONS,
        beta_range=BETA_RANGE,
        **settings,
    )
    seconds_training = time.perf_counter() - start
    posterior = result.posterior

    print(f"   predictive checks: {len(args.observations)} observations", flush=True)
    start = time.perf_counter()
    width = problem.high - problem.low
    observations, x_preds = [], []
    for index in args.observations:
        record, x_pred = _one_observation(task, posterior, index, args, width)
        observations.append(record)
        x_preds.append(x_pred)
    seconds_predictive = time.perf_counter() - start

    print("   figures", flush=True)
    start = time.perf_counter()
    written = _figures(task, posterior, problem, args, np.stack(x_preds))
    seconds_figures = time.perf_counter() - start
    return {
        "task": TASK,
        "task_options": TASK_OPTIONS,
        "protocol": task.protocol.name,
        "route": args.route,
        "run": name,
        "reused_run": reused,
        "simulations": args.simulations,
        "seed": args.seed,
        "beta_range": list(BETA_RANGE),
        "theta_names": list(problem.theta_names),
        "x_names": list(task.x_names),
        "prior_width": width.tolist(),
        "training": _training_facts(result.report),
        "observations": observations,
        "summary": _summary(observations, args.betas),
        "figures": written,
        "seconds": {
            "training_call": seconds_training,
            "predictive": seconds_predictive,
            "figures": seconds_figures,
        },
    }


# -- markdown -------------------------------------------------------------------------------


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _verdict(inside: bool | None) -> str:
    return "–" if inside is None else ("in" if inside else "out")


def _misses_at(record: dict[str, Any], beta: float) -> str:
    """``"rest_mean (2 of 3 observations), ..."``: the statistics outside the band at beta."""
    counts: dict[str, int] = {}
    for obs in record["observations"]:
        entry = next(e for e in obs["betas"] if e["beta"] == beta)
        for s in entry["statistics"]:
            if s["inside"] is False:
                counts[s["name"]] = counts.get(s["name"], 0) + 1
    m = len(record["observations"])
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return ", ".join(f"`{name}` ({k} of {m} observations)" for name, k in ranked)


def _collapsed_betas(weights: dict[str, Any]) -> list[float]:
    """The training temperatures whose SNIS weights keep under
    ``COLLAPSED_RELATIVE_ESS`` of the pairs."""
    return [
        b
        for b, e in zip(weights["beta"], weights["relative_ess"], strict=True)
        if e < COLLAPSED_RELATIVE_ESS
    ]


def _facts(record: dict[str, Any]) -> list[str]:
    """Sentences stating what the numbers show (generated, not hard-coded)."""
    summary = {row["beta"]: row for row in record["summary"]}
    betas = sorted(summary)
    lo, hi = betas[0], betas[-1]
    facts = []
    coverage = ", ".join(
        f"{summary[b]['inside']}/{summary[b]['checked']} at beta = {b:g}" for b in betas
    )
    facts.append(
        "The observed statistics lie inside the 5–95 % posterior-predictive band in "
        f"{coverage} (observations x statistics)."
    )
    misses = _misses_at(record, 1.0)
    if misses:
        facts.append(f"At beta = 1 the observed value falls outside the band for {misses}.")
    z_lo, z_one, z_hi = (summary[b]["median_abs_z"] for b in (lo, 1.0, hi))
    if None not in (z_lo, z_one, z_hi):
        facts.append(
            f"The median |z| is {z_lo:.2f} at beta = {lo:g}, {z_one:.2f} at beta = 1 and "
            f"{z_hi:.2f} at beta = {hi:g}."
        )
    r_lo, r_hi = summary[lo]["median_std_ratio"], summary[hi]["median_std_ratio"]
    if r_lo is not None and r_hi is not None:
        facts.append(
            f"Posterior standard deviations at beta = {lo:g} are a median {r_lo:.2f}x those at "
            f"beta = 1 ({'wider' if r_lo > 1 else 'not wider'}); at beta = {hi:g}, "
            f"{r_hi:.2f}x ({'narrower' if r_hi < 1 else 'not narrower'})."
        )
    weights = record["training"]["weights"]
    if weights["relative_ess"]:
        k = int(np.argmin(weights["relative_ess"]))
        facts.append(
            f"The SNIS weights keep a relative ESS of at least {weights['relative_ess'][k]:.3f} "
            f"(at beta = {weights['beta'][k]:g})"
            + (
                "; where they fail, route auto trains on the NRE's contrastive pool if it "
                "passes its check, else on its fallback (its choice below)."
                if record["training"].get("auto")
                else "."
            )
        )
        collapsed = _collapsed_betas(weights)
        if collapsed and (
            not record["training"].get("auto")
            or record["training"].get("auto_failing_cells_on_weights")
        ):
            pairs = COLLAPSED_RELATIVE_ESS * record["arguments"]["simulations"]
            facts.append(
                f"**Up to beta = {max(collapsed):g} the weights are collapsed** (relative ESS "
                f"under {COLLAPSED_RELATIVE_ESS:g}: fewer than {pairs:,.0f} effective pairs): "
                "the posteriors there are the network's extrapolation from the temperatures "
                "it could fit, not fits to weighted simulations; "
                + (
                    "route auto's contrastive pool failed its check, so it trained on these "
                    "weights all the same (`--auto-fallback a` takes Route A pairs there)."
                    if record["training"].get("auto")
                    else "route auto (`--route auto`) trains on the NRE's contrastive pool "
                    "there where it passes its check, else on those weights all the same or, "
                    "with `--auto-fallback a`, on Route A pairs."
                )
            )
    dropped = sum(row["predictive_dropped"] for row in record["summary"])
    total = sum(row["predictive_n"] for row in record["summary"])
    facts.append(f"{dropped} of {total} predictive simulations were non-finite and dropped.")
    return facts


def at_a_glance(record: dict[str, Any]) -> list[str]:
    """One markdown bullet for the top of docs/results.md: what beta does to the fit."""
    summary = {row["beta"]: row for row in record["summary"]}
    lo, hi = min(summary), max(summary)
    text = (
        f"Route {record['route']}, {record['simulations'] // 1000}k simulations, "
        f"{len(record['observations'])} recordings: observed statistics inside the 5-95 % "
        "predictive band "
        + ", ".join(f"{summary[b]['inside']}/{summary[b]['checked']}" for b in (lo, 1.0, hi))
        + f" at beta = {lo:g}, 1, {hi:g}"
    )
    r_lo, r_hi = summary[lo]["median_std_ratio"], summary[hi]["median_std_ratio"]
    if r_lo is not None and r_hi is not None:
        text += f"; posterior sd {r_lo:.2f}x beta 1's at beta = {lo:g}, {r_hi:.2f}x at {hi:g}"
    collapsed = _collapsed_betas(record["training"]["weights"])
    if collapsed:
        text += f"; SNIS weights collapsed up to beta = {max(collapsed):g}"
    return [text + "."]


def to_markdown(record: dict[str, Any]) -> str:
    training = record["training"]
    theta_names, x_names = record["theta_names"], record["x_names"]
    lines = [
        f"Hodgkin–Huxley on real Allen recordings, the paper's shared-protocol setup: one "
        f"Route {record['route'].upper()} model, {record['simulations']} simulations on the "
        f"protocol of {record['protocol']}, beta in [{record['beta_range'][0]:g}, "
        f"{record['beta_range'][1]:g}], seed {record['seed']}, conditioned on the statistics "
        "of each recording (the model is misspecified for real cells).",
        "",
        " ".join(_facts(record)),
        "",
        f"Training ({'reused from an earlier run' if record['reused_run'] else 'this run'}): "
        f"{_fmt(training['seconds_total'], '.0f')} s in all, of which simulation "
        f"{_fmt(training['seconds_simulation'], '.0f')} s, surrogate(s) "
        f"{_fmt(training['seconds_surrogate'], '.0f')} s, NPE "
        f"{_fmt(training['seconds_npe'], '.0f')} s; "
        f"{_fmt(training['dropped_nonfinite'], 'd')} of "
        f"{_fmt(training['simulations_requested'], 'd')} simulations dropped as non-finite, "
        f"{_fmt(training['dropped_nonfinite_scores'], 'd')} pairs with non-finite scores.",
        "",
    ]
    if training.get("auto"):
        lines += [f"Route auto's choice: {training['auto']}.", ""]
    weights = training["weights"]
    if weights["beta"]:
        lines += [
            f"SNIS weights of the training set (stabilization: {weights['method']}):",
            "",
            "| beta | " + " | ".join(f"{b:g}" for b in weights["beta"]) + " |",
            "|---|" + "---|" * len(weights["beta"]),
            "| relative ESS | " + " | ".join(f"{e:.3f}" for e in weights["relative_ess"]) + " |",
            "| k-hat | " + " | ".join(_fmt(k, ".2f") for k in weights["k_hat"]) + " |",
            "",
        ]
    lines += [
        "Summary per beta (all observations): observed statistics inside the 5–95 % "
        "predictive band, median |z|, median ratio of the posterior std to beta = 1, "
        "dropped predictive simulations.",
        "",
        "| beta | inside band | median abs z | median std / std(beta=1) | dropped |",
        "|---|---|---|---|---|",
    ]
    for row in record["summary"]:
        lines.append(
            f"| {row['beta']:g} | {row['inside']}/{row['checked']} | "
            f"{_fmt(row['median_abs_z'], '.2f')} | {_fmt(row['median_std_ratio'], '.2f')} | "
            f"{row['predictive_dropped']}/{row['predictive_n']} |"
        )
    lines += [
        "",
        "Posterior std of each parameter as a fraction of its prior width (a flat prior: "
        "0.289); in brackets the ratio to beta = 1.",
        "",
        "| obs | beta | " + " | ".join(f"`{n}`" for n in theta_names) + " |",
        "|---|---|" + "---|" * len(theta_names),
    ]
    for obs in record["observations"]:
        for entry in obs["betas"]:
            cells = [
                f"{s:.3f} ({_fmt(r, '.2f')})"
                for s, r in zip(
                    entry["posterior_std_over_width"], entry["std_ratio_to_beta1"], strict=True
                )
            ]
            lines.append(f"| {obs['index']} | {entry['beta']:g} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Posterior-predictive fit of each statistic: z = (observed - predictive median) / "
        "(IQR / 1.349) (std where the IQR is 0; – where the predictive is constant and "
        "misses), marked `in` when the observed value lies inside the 5–95 % band and `out` "
        "otherwise. A large |z| marked `in` means a wide-tailed or two-mode predictive "
        "(e.g. parameters that spike and parameters that do not).",
        "",
        "| obs | beta | " + " | ".join(f"`{n}`" for n in x_names) + " | inside |",
        "|---|---|" + "---|" * (len(x_names) + 1),
    ]
    for obs in record["observations"]:
        for entry in obs["betas"]:
            stats = entry["statistics"]
            cells = [f"{_fmt(s['z'], '+.2f')} {_verdict(s['inside'])}" for s in stats]
            inside = sum(bool(s["inside"]) for s in stats)
            lines.append(
                f"| {obs['index']} | {entry['beta']:g} | "
                + " | ".join(cells)
                + f" | {inside}/{len(stats)} |"
            )
    lines += ["", "Observations:", ""]
    lines += [f"- {obs['index']}: {obs['name']}" for obs in record["observations"]]
    figures = record["figures"]
    lines += [
        "",
        "Figures: posterior marginals at beta = "
        + ", ".join(f"{b:g}" for b in MARGINAL_BETAS)
        + " (paper Figure 2), predictive traces at beta = "
        + ", ".join(f"{b:g}" for b in TRACE_BETAS)
        + " (paper Figure 3), predictive statistics against beta.",
        "",
    ]
    for obs, marg, trace in zip(
        record["observations"], figures["marginals"], figures["traces"], strict=True
    ):
        lines.append(
            f"- observation {obs['index']}: [marginals]({marg}), [predictive traces]({trace})"
        )
    lines += [
        f"- all observations: [predictive statistics against beta]({figures['statistics']})",
        "",
        f"![predictive statistics]({figures['statistics']})",
    ]
    return "\n".join(lines) + "\n"
