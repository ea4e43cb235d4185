"""Accuracy across temperatures (the paper's Figure 1): C2ST and MMD against references.

The grid (issue 7): tasks two_moons, gaussian_mixture, slcp, lorenz96; routes
a, b-nle, b-nre, auto; budgets of 10k and 100k simulations; beta in
{0.1, 0.3, ..., 1.5}; observations 0, 1, 2 of each task. Every (task, route,
budget) cell is one ``gbi.train`` run in ``benchmarks/_work/runs`` (shared
with the other benchmarks and resumable), judged at every (observation, beta)
by C2ST (sbibm's protocol) and MMD between ``--n`` draws of the amortized
posterior and ``--n`` draws of gbi-eval's reference sampler.

Anchor, in the same benchmark: ``sbi``'s NPE (NSF, sbi's defaults) trained on
the same base simulations, at beta = 1 only (it knows no beta).

Everything is cached so a full run is made of resumable pieces:

- ``benchmarks/_work/runs/<task>_<route>_<budget>_s<seed>/``: the trained run;
- ``benchmarks/_work/references/<task>/``: reference draws per (observation,
  beta), shared by every route and budget, with the sampler's diagnostics;
- ``benchmarks/_work/accuracy/<cell>.json``: the metrics of each cell, per
  (observation, beta), filled in as they are computed.

The record ``docs/benchmarks/accuracy.json`` keeps every cell ever measured
(rerunning one cell replaces only that cell), each stamped with its commit,
date and machine. One cell::

    nox -s bench -- accuracy --task two_moons --route b-nre --simulations 10000

Targets, on the best route per beta: median C2ST over the observations
<= 0.60 at 10k and <= 0.55 at 100k for two_moons, gaussian_mixture and
lorenz96; <= 0.75 at 100k for slcp; at beta = 1 never worse than sbi's NPE
at the same budget.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import _common
import numpy as np

TASKS = ("two_moons", "gaussian_mixture", "slcp", "lorenz96")
ROUTES = ("a", "b-nle", "b-nre", "auto")
ANCHOR = "sbi"
#: a diagnostic, not a route: gbi-npe's own flow trained at beta = 1 only (no
#: amortization over beta). Against the anchor it isolates the density
#: estimator; against the routes at beta = 1, the cost of amortizing over beta.
PLAIN = "npe-beta1"
BASELINES = (ANCHOR, PLAIN)
BUDGETS = (10_000, 100_000)
BETAS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0, 1.1, 1.3, 1.5)
OBSERVATIONS = (0, 1, 2)

#: median-C2ST targets per (task, budget); slcp has none at 10k.
TARGETS = {
    (task, budget): limit
    for task in ("two_moons", "gaussian_mixture", "lorenz96")
    for budget, limit in ((10_000, 0.60), (100_000, 0.55))
} | {("slcp", 100_000): 0.75}

CELLS_DIR = _common.WORK_DIR / "accuracy"
REFERENCES_DIR = _common.WORK_DIR / "references"
FIGURES_DIR = _common.ROOT / "docs" / "figures"
RECORD = _common.RESULTS_DIR / "accuracy.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument(
        "--route",
        nargs="+",
        default=[*ROUTES, *BASELINES],
        choices=[*ROUTES, *BASELINES],
        help="routes to train and judge; 'sbi' is the anchor (sbi's NPE at beta = 1); "
        "'npe-beta1' is gbi-npe's flow trained at beta = 1 only (a diagnostic)",
    )
    parser.add_argument("--simulations", nargs="+", type=int, default=list(BUDGETS))
    parser.add_argument("--betas", nargs="+", type=float, default=list(BETAS))
    parser.add_argument("--observations", nargs="+", type=int, default=list(OBSERVATIONS))
    parser.add_argument("--n", type=int, default=2_000, help="draws per side of each C2ST")
    parser.add_argument("--seed", type=int, default=0, help="the training runs' seed")
    parser.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="bound every network's epochs (smoke runs only: a tagged, separate cell)",
    )
    parser.add_argument("--tag", default="", help="a suffix for the cells' folders")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a gbi.RunConfig setting for gbi's routes, e.g. stabilization=psis (an "
        "experiment: needs --tag, so the grid's own cells stay untouched)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="train gbi's posterior networks through torch.compile (faster on a CPU; not "
        "part of a cell's identity, so a cell may continue with or without it)",
    )
    parser.add_argument(
        "--adopt",
        metavar="TAG",
        default="",
        help="make the tagged experiment TAG's trained run the grid cell (after its settings "
        "became the defaults): refused unless its configuration is what the grid cell asks "
        "for now; the grid cell's old run is retired, the metrics already judged move along "
        "and the cell keeps the experiment's commit and date",
    )
    parser.add_argument(
        "--plan", action="store_true", help="list the cells and what is cached; run nothing"
    )
    parser.add_argument(
        "--redraw",
        action="store_true",
        help="redraw the figures and tables from the stored record; train nothing",
    )


# -- references ------------------------------------------------------------------------


def reference_draws(task: Any, obs: int, beta: float, n: int) -> tuple[np.ndarray, dict]:
    """``n`` reference draws of p_beta(theta | x_obs) and the sampler's diagnostics (cached)."""
    import gbi_eval

    folder = REFERENCES_DIR / task.name
    stem = f"obs{obs}_beta{beta:g}_n{n}"
    npz, meta = folder / f"{stem}.npz", folder / f"{stem}.json"
    if npz.is_file() and meta.is_file():
        return np.load(npz)["theta"], json.loads(meta.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    seed = np.random.SeedSequence([obs, round(beta * 1000), n, 7])
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gbi_eval.ConvergenceWarning)
        result = gbi_eval.reference_posterior(
            task, task.observation(obs).x, beta, n, np.random.default_rng(seed)
        )
    info = {
        "converged": bool(result.diagnostics.converged),
        "seconds": time.perf_counter() - start,
        "diagnostics": _jsonable(result.diagnostics.summary()),
    }
    _atomic_save_npz(npz, theta=result.samples)
    _atomic_write(meta, json.dumps(info, indent=1))
    return result.samples, info


# -- the cells -------------------------------------------------------------------------


def cell_key(task: str, route: str, simulations: int) -> str:
    return f"{task}/{route}/{simulations}"


def _cell_name(args: argparse.Namespace, task: str, route: str, simulations: int) -> str:
    return _common.run_name(task, route, simulations, args.seed, args.tag)


def _train_settings(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"--set needs NAME=VALUE, got {item!r}")
        try:
            settings[name] = json.loads(value)
        except json.JSONDecodeError:
            settings[name] = value  # a bare string, e.g. stabilization=psis
    if settings and not args.tag:
        raise SystemExit("--max-epochs and --set make an experiment: give it a --tag")
    if args.compile:  # a volatile setting: the same cell either way
        settings["compile"] = True
    return settings


def _metrics_file(args: argparse.Namespace, name: str) -> Path:
    return CELLS_DIR / f"{name}_n{args.n}.json"


def _row_key(obs: int, beta: float) -> str:
    return f"{obs}/{beta:g}"


def load_rows(path: Path, fingerprint: str | None = None) -> dict[str, Any]:
    """A cell's cached metric rows; none if they were judged on another model.

    Without a ``fingerprint`` the rows are taken as they are; with one, rows
    stored under another model's fingerprint are dropped, and rows stored with
    none (before fingerprints were kept) are taken to belong to this model.
    """
    done: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
    if fingerprint is not None:
        if done.get("_model", fingerprint) != fingerprint:
            print(f"   {path.name}: the model changed since these rows were judged; judging again")
            done = {}
        done["_model"] = fingerprint
    return done


def judge(
    args: argparse.Namespace,
    name: str,
    task: Any,
    sample_fn,
    betas: list[float],
    fingerprint: str | None = None,
) -> list[dict[str, Any]]:
    """C2ST and MMD of ``sample_fn(n, x, beta, seed)`` at every (observation, beta).

    Rows already in the cell's metrics file are reused; each new row is saved
    as soon as it is computed. With a ``fingerprint`` of the model judged
    (``file_fingerprint``), rows stored for another model are dropped first.
    """
    import gbi_eval

    path = _metrics_file(args, name)
    done = load_rows(path, fingerprint)
    for obs in args.observations:
        x_obs = task.observation(obs).x
        for beta in betas:
            key = _row_key(obs, beta)
            if key in done:
                continue
            ref, ref_info = reference_draws(task, obs, beta, args.n)
            start = time.perf_counter()
            q = np.asarray(sample_fn(args.n, x_obs, beta, 1000 + obs), dtype=np.float64)
            q_seconds = time.perf_counter() - start
            finite = np.all(np.isfinite(q), axis=1)
            row = {
                "observation": obs,
                "beta": float(beta),
                "c2st": float(gbi_eval.c2st(ref, q[finite], seed=obs)) if finite.all() else 1.0,
                "mmd": float(gbi_eval.mmd(ref, q[finite])) if finite.any() else float("nan"),
                "nonfinite_draws": int((~finite).sum()),
                "sample_seconds": q_seconds,
                "reference_converged": ref_info["converged"],
            }
            done[key] = row
            _atomic_write(path, json.dumps(done, indent=1))
            print(
                f"   {name} obs {obs} beta {beta:g}: C2ST {row['c2st']:.3f} MMD {row['mmd']:.2e}",
                flush=True,
            )
    return [done[_row_key(o, b)] for o in args.observations for b in betas]


def gbi_cell(args: argparse.Namespace, task_name: str, route: str, simulations: int) -> dict:
    """Train (or reload) one gbi route and judge it on the whole beta grid."""
    import gbi_sims

    name = _cell_name(args, task_name, route, simulations)
    print(f"== cell {name}", flush=True)
    result = _common.trained_run(
        task_name,
        route,
        simulations,
        seed=args.seed,
        tag=args.tag,
        progress=False,
        **_train_settings(args),
    )
    task = gbi_sims.get_task(task_name)
    posterior = result.posterior
    rows = judge(
        args,
        name,
        task,
        lambda n, x, beta, seed: posterior.sample(n, x, beta, seed=seed),
        list(args.betas),
        fingerprint=file_fingerprint(result.run_dir / "posterior.safetensors"),
    )
    return {
        "rows": rows,
        "training": training_summary(result.report),
        "settings": _train_settings(args),
    }


def adopt_experiment(
    args: argparse.Namespace,
    record: dict[str, Any],
    task: str,
    route: str,
    simulations: int,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Move the experiment ``args.adopt``'s run into the grid cell's place (``--adopt``).

    The experiment must have finished training, and its stored configuration
    must be what the grid cell asks for today (``settings``, by default the
    command line's: no setting differing, the legacy values of older settings
    included). The grid cell's own run, if any, is retired first
    (``_common.retire_run``), keeping its simulations and surrogates; the
    experiment's judged metric rows move with it (they are tied to the model
    file by its fingerprint).

    Returns:
        what the grid cell keeps of the experiment's record: its commit, date
        and machine, and ``adopted_from`` (the experiment's key).

    Raises:
        SystemExit: no such trained experiment, or its settings are not today's.
    """
    experiment = _common.run_name(task, route, simulations, args.seed, args.adopt)
    name = _common.run_name(task, route, simulations, args.seed)
    source = _common.RUNS_DIR / experiment
    identity = dict(route=route, simulations=simulations, seed=args.seed, task_options={})
    if not (source / "posterior.safetensors").is_file():
        raise SystemExit(f"--adopt {args.adopt}: {source} holds no trained posterior")
    differing = _common.downstream_settings_differing(
        source, identity, _train_settings(args) if settings is None else settings
    )
    if differing != []:
        what = "settings its surrogates read" if differing is None else differing
        raise SystemExit(
            f"--adopt {args.adopt}: {experiment} was trained with other settings than the grid "
            f"cell's defaults ({what}); rerun the grid cell instead"
        )
    target = _common.RUNS_DIR / name
    if target.exists():
        _common.retire_run(target, name, why="replaced by the experiment " + experiment)
    os.replace(source, target)
    moved = _metrics_file(args, experiment)
    if moved.is_file():
        os.replace(moved, _metrics_file(args, name))
    key = cell_key(task, route, simulations) + f"/{args.adopt}"
    old = record.get("cells", {}).get(key, {})
    print(f"   {name}: adopted the experiment {experiment}", flush=True)
    return {
        **{k: old[k] for k in ("commit", "date", "machine") if k in old},
        "adopted_from": key,
    }


def file_fingerprint(path: Path) -> str:
    """The SHA-256 of a file's bytes (ties cached metrics to the model judged)."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def training_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What the record keeps of a training report: times, epochs, weights per beta."""
    # the cost of every stage, reused ones included (a stage reloaded from the run
    # directory keeps the seconds it took when it ran)
    stages = [report.get("simulations", {}).get("seconds")]
    stages += [report.get(part, {}).get("seconds") for part in ("surrogate", "score_surrogate")]
    stages += [report.get(part, {}).get("seconds") for part in ("synthesis", "npe")]
    out: dict[str, Any] = {"seconds": float(sum(s for s in stages if s is not None))}
    for part in ("surrogate", "score_surrogate", "npe"):
        history = report.get(part, {}).get("history")
        if history:
            out[f"{part}_epochs"] = len(history.get("train_loss", []))
            best = history.get("best_epoch")
            out[f"{part}_best_val"] = None if best is None else history["validation_loss"][best]
            out[f"{part}_seconds"] = report[part].get("seconds")
    weights = report.get("weights")
    if weights:
        out["weights"] = {k: weights[k] for k in ("beta", "relative_ess", "k_hat") if k in weights}
    if "auto" in report:
        out["auto"] = report["auto"].get("summary")
    out["dropped_nonfinite"] = report.get("simulations", {}).get("dropped_nonfinite")
    # how the posterior network was trained (a run from before a setting existed
    # used its legacy value)
    from gbi.config import LEGACY_SETTINGS, POSTERIOR_SETTINGS

    config = {**LEGACY_SETTINGS, **report.get("config", {})}
    # route auto with Route A pairs trains its network otherwise than configured
    config |= report.get("auto", {}).get("posterior_settings", {})
    out["posterior_settings"] = {k: config.get(k) for k in sorted(POSTERIOR_SETTINGS)}
    return out


def sbi_cell(args: argparse.Namespace, task_name: str, simulations: int) -> dict:
    """sbi's NPE (NSF, sbi's defaults) on the same base set, judged at beta = 1."""
    import gbi
    import gbi_sims

    name = _cell_name(args, task_name, ANCHOR, simulations)
    print(f"== cell {name}", flush=True)
    task = gbi_sims.get_task(task_name)
    path = _metrics_file(args, name)
    done = json.loads(path.read_text()) if path.is_file() else {}
    training_file = CELLS_DIR / f"{name}_training.json"
    missing = [o for o in args.observations if _row_key(o, 1.0) not in done]
    cached = json.loads(training_file.read_text()) if training_file.is_file() else {}
    if cached.get("failed"):
        # sbi's training is seeded: the same simulations fail the same way
        print(f"   sbi's NPE failed before: {cached['failed']} (delete {training_file} to retry)")
        return {"rows": [], "training": cached}
    if missing:
        base = gbi.simulate_base_set(gbi.make_problem(task_name), simulations, args.seed)
        start = time.perf_counter()
        try:
            posterior, training = train_sbi_npe(
                task, base.theta, base.x, args.seed, args.max_epochs
            )
        except (ValueError, RuntimeError) as error:  # sbi refuses a non-finite loss
            reason = str(error).strip().splitlines()[0]
            training = {"seconds": time.perf_counter() - start, "failed": reason}
            _atomic_write(training_file, json.dumps(training, indent=1))
            print(f"   sbi's NPE failed: {reason}", flush=True)
            return {"rows": [], "training": training}
        _atomic_write(training_file, json.dumps(training, indent=1))

        def sample_fn(n, x, beta, seed):
            import torch

            torch.manual_seed(seed)
            x_t = torch.as_tensor(np.asarray(x), dtype=torch.float32)
            return posterior.sample((n,), x=x_t, show_progress_bars=False).numpy()

    else:

        def sample_fn(n, x, beta, seed):  # pragma: no cover - every row is cached
            raise RuntimeError("unreachable: every row is cached")

    rows = judge(args, name, task, sample_fn, [1.0])
    training = json.loads(training_file.read_text()) if training_file.is_file() else {}
    return {"rows": rows, "training": training}


def plain_cell(args: argparse.Namespace, task_name: str, simulations: int) -> dict:
    """gbi's posterior network, built and trained as ``gbi.train`` does, at beta = 1 only."""
    import gbi
    import gbi_npe
    import gbi_sims
    from gbi.config import RunConfig
    from gbi.routes import embedding_config, fit_posterior

    name = _cell_name(args, task_name, PLAIN, simulations)
    print(f"== cell {name}", flush=True)
    task = gbi_sims.get_task(task_name)
    folder = _common.RUNS_DIR / name
    model, training_file = folder / "posterior.safetensors", folder / "training.json"
    if model.is_file() and training_file.is_file():
        posterior = gbi_npe.Posterior.load(model)
    else:
        # one temperature: nothing to stop per temperature
        settings = {"per_temperature": False, **_train_settings(args)}
        config = RunConfig(problem=task_name, seed=args.seed, **settings)
        problem = gbi.make_problem(task_name)
        base = gbi.simulate_base_set(problem, simulations, args.seed)
        posterior, report = fit_posterior(
            problem,
            base.x.shape[1],
            config,
            False,
            lambda npe, tc, **snapshot: gbi_npe.fit(
                npe, base.theta, base.x, 1.0, config=tc, **snapshot
            ),
            embedding=embedding_config(config, problem, base.x.shape[1]),
        )
        folder.mkdir(parents=True, exist_ok=True)
        posterior.save(model)
        history = report["history"]
        training = {
            "seconds": report["seconds"],
            "npe_epochs": len(history["train_loss"]),
            "npe_best_epoch": history["best_epoch"],
            "posterior_settings": {"ema_decay": config.ema_decay, "per_temperature": False},
        }
        _atomic_write(training_file, json.dumps(training, indent=1))
    rows = judge(
        args,
        name,
        task,
        lambda n, x, beta, seed: posterior.sample(n, x, beta, seed=seed),
        [1.0],
        fingerprint=file_fingerprint(model),
    )
    return {"rows": rows, "training": json.loads(training_file.read_text())}


def train_sbi_npe(
    task: Any, theta: np.ndarray, x: np.ndarray, seed: int, max_epochs: int | None
) -> tuple[Any, dict]:
    """sbi's NPE with its default NSF and training settings; returns (posterior, timings)."""
    import torch
    from bench_npe import _NoTracking
    from sbi.inference import NPE
    from sbi.utils import BoxUniform

    torch.manual_seed(seed)
    prior = BoxUniform(
        torch.tensor(np.array(task.prior.low), dtype=torch.float32),
        torch.tensor(np.array(task.prior.high), dtype=torch.float32),
    )
    inference = NPE(prior=prior, density_estimator="nsf", tracker=_NoTracking())
    inference.append_simulations(
        torch.as_tensor(theta, dtype=torch.float32), torch.as_tensor(x, dtype=torch.float32)
    )
    options = {} if max_epochs is None else {"max_num_epochs": max_epochs}
    start = time.perf_counter()
    inference.train(show_train_summary=False, **options)
    seconds = time.perf_counter() - start
    training = {
        "seconds": seconds,
        "epochs": int(inference.summary["epochs_trained"][-1]),
        "best_val": float(inference.summary["best_validation_loss"][-1]),
    }
    return inference.build_posterior(), training


# -- record, figures, markdown ---------------------------------------------------------


def plan_line(args: argparse.Namespace, name: str, route: str) -> str:
    """What ``--plan`` says of one cell: trained, rows judged, what an interrupted run left."""
    folder = _common.RUNS_DIR / name
    trained = (folder / "posterior.safetensors").is_file()
    path = _metrics_file(args, name)
    stored = json.loads(path.read_text()) if path.is_file() else {}
    rows = sum(not key.startswith("_") for key in stored)
    partial = sorted(f.name for f in folder.glob("*_snapshot.pt*"))
    partial += sorted(f.name for f in folder.glob("scores_*_partial.npz"))
    started = f" continues from {', '.join(partial)}" if partial and not trained else ""
    return f"   {name}: trained={trained and route != ANCHOR} judged rows={rows}{started}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.n < 10:
        raise SystemExit("--n must be at least 10")
    for obs in args.observations:
        if obs < 0:
            raise SystemExit(f"observation indices must be >= 0, got {obs}")
    bad = [b for b in args.betas if not 0.1 <= b <= 2.0]
    if bad:
        raise SystemExit(f"betas must lie in the trained range [0.1, 2.0], got {bad}")
    cells = [(t, r, s) for t in args.task for s in args.simulations for r in args.route]
    if args.adopt and (args.tag or args.set or args.max_epochs is not None or args.plan):
        raise SystemExit("--adopt makes grid cells: it takes no --tag, --set, --max-epochs, --plan")
    if args.adopt and set(args.route) & set(BASELINES):
        raise SystemExit(
            f"--adopt is for gbi's routes, not {sorted(set(args.route) & set(BASELINES))}"
        )
    if args.redraw:
        cells = []
    if args.plan:
        for t, r, s in cells:
            print(plan_line(args, _cell_name(args, t, r, s), r))
        raise SystemExit(0)
    stamp = {
        "commit": _common.git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": _common.machine_info(),
    }
    for task, route, simulations in cells:
        start = time.perf_counter()
        adopted = (
            adopt_experiment(args, store_cell(None, None), task, route, simulations)
            if args.adopt
            else {}
        )
        if route == ANCHOR:
            cell = sbi_cell(args, task, simulations)
        elif route == PLAIN:
            cell = plain_cell(args, task, simulations)
        else:
            cell = gbi_cell(args, task, route, simulations)
        cell.update(
            task=task,
            route=route,
            simulations=simulations,
            seed=args.seed,
            n=args.n,
            tag=args.tag,
            wall_seconds=time.perf_counter() - start,
            **stamp,
        )
        cell.update(adopted)  # an adopted experiment keeps its own commit and date
        # another seed is another cell (the grid's cells are seed 0), named like a tag
        parts = ([args.tag] if args.tag else []) + ([f"s{args.seed}"] if args.seed else [])
        label = "-".join(parts)
        key = cell_key(task, route, simulations) + (f"/{label}" if label else "")
        # keep what is finished even if a later cell is interrupted
        record = store_cell(key, cell)
    record = store_cell(None, None)
    for key in ("commit", "date", "machine", "partial", "arguments", "wall_seconds"):
        record.pop(key, None)  # run.py stamps this invocation's
    record["command"] = (
        "nox -s bench -- accuracy --task TASK --route ROUTE --simulations N "
        "(one cell each; each cell's commit is in its table)"
    )
    record["figures"] = plot_figures(record)
    return record


def store_cell(key: str | None, cell: dict[str, Any] | None) -> dict[str, Any]:
    """Merge one cell into the record on disk and return the merged record.

    Several accuracy runs may work side by side (one task each): the record is
    re-read under an exclusive lock before every write, so none loses another's
    cells.
    """
    import fcntl

    RECORD.parent.mkdir(parents=True, exist_ok=True)
    with open(RECORD.with_name(".accuracy.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = json.loads(RECORD.read_text()) if RECORD.is_file() else {"cells": {}}
        if key is not None:
            old = record.get("cells", {}).get(key)
            if (
                old
                and "adopted_from" not in cell
                and old["rows"] == cell["rows"]
                and old["training"] == cell["training"]
            ):
                # nothing was recomputed (all cached): the cell keeps its own stamp
                cell = {**cell, **{k: old[k] for k in ("commit", "date", "machine")}}
            record.setdefault("cells", {})[key] = cell
            stamp = {k: cell[k] for k in ("commit", "date", "machine")}
            _common.write_record("accuracy", {**record, **stamp, "wall_seconds": 0.0})
    return record


def _median_table(cell: dict[str, Any], betas: list[float]) -> dict[float, float]:
    out = {}
    for beta in betas:
        values = [r["c2st"] for r in cell["rows"] if abs(r["beta"] - beta) < 1e-9]
        if values:
            out[beta] = float(np.median(values))
    return out


def _official(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The cells of the grid proper (seed 0; no tagged experiments)."""
    return {k: c for k, c in record.get("cells", {}).items() if not _experiment(c)}


def _experiment(cell: dict[str, Any]) -> bool:
    """A tagged cell (``--tag``) or one of another seed than the grid's 0."""
    return bool(cell.get("tag") or cell.get("seed"))


def plot_figures(record: dict[str, Any]) -> list[str]:
    """docs/figures/accuracy_<task>.png: median C2ST and MMD against beta per route."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    cells = _official(record)
    written = []
    colors = {"a": "tab:green", "b-nle": "tab:red", "b-nre": "tab:purple", "auto": "tab:blue"}
    for task in TASKS:
        mine = [c for c in cells.values() if c["task"] == task]
        if not mine:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for cell in sorted(mine, key=lambda c: (c["route"], c["simulations"])):
            style = "-" if cell["simulations"] <= 10_000 else "--"
            label = f"{cell['route']} {cell['simulations'] // 1000}k"
            for ax, metric in zip(axes, ("c2st", "mmd"), strict=True):
                betas = sorted({r["beta"] for r in cell["rows"]})
                med = [
                    np.median([r[metric] for r in cell["rows"] if r["beta"] == b]) for b in betas
                ]
                if cell["route"] == ANCHOR:
                    ax.plot(betas, med, "*", ms=12, color="black", label=f"sbi NPE {label[4:]}")
                elif cell["route"] == PLAIN:
                    ax.plot(
                        betas,
                        med,
                        "X",
                        ms=9,
                        color="gray",
                        label=f"gbi NPE beta=1 only {label[10:]}",
                    )
                else:
                    ax.plot(
                        betas,
                        med,
                        style,
                        marker="o",
                        ms=3,
                        color=colors[cell["route"]],
                        label=label,
                    )
        axes[0].axhline(0.5, color="gray", lw=0.8)
        axes[0].set_ylabel("median C2ST")
        axes[1].set_ylabel("median MMD²")
        axes[1].set_yscale("log")
        for ax in axes:
            ax.set_xlabel("beta")
        axes[0].legend(fontsize=7, ncol=2)
        fig.suptitle(f"{task}: amortized q(theta | x, beta) against reference samplers")
        fig.tight_layout()
        path = FIGURES_DIR / f"accuracy_{task}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path.relative_to(_common.ROOT)))
    return written


def c2st_tolerance(n: int) -> float:
    """Two standard errors of a difference of two C2ST accuracies near chance.

    Each C2ST classifies 2n held-out points (cross-validation covers them all),
    so near 0.5 its accuracy has standard error sqrt(0.25 / (2n)); a difference
    of two has sqrt(2) times that. With n = 2000: 0.022.
    """
    return 2.0 * np.sqrt(2.0) * np.sqrt(0.25 / (2 * n))


def summarize(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Per (task, budget, beta): the best route's median C2ST and the target verdicts."""
    cells = _official(record)
    out = []
    for task in TASKS:
        for budget in sorted({c["simulations"] for c in cells.values() if c["task"] == task}):
            mine = {
                c["route"]: c
                for c in cells.values()
                if c["task"] == task and c["simulations"] == budget
            }
            routes = {
                r: _median_table(c, list(BETAS)) for r, c in mine.items() if r not in BASELINES
            }
            anchor = _median_table(mine[ANCHOR], [1.0]).get(1.0) if ANCHOR in mine else None
            anchor_failed = mine.get(ANCHOR, {}).get("training", {}).get("failed")
            for beta in BETAS:
                scores = {r: t[beta] for r, t in routes.items() if beta in t}
                if not scores:
                    continue
                best = min(scores, key=scores.get)
                limit = TARGETS.get((task, budget))
                entry = {
                    "task": task,
                    "simulations": budget,
                    "beta": beta,
                    "best_route": best,
                    "best_c2st": scores[best],
                    "target": limit,
                    "met": None if limit is None else scores[best] <= limit,
                }
                if beta == 1.0 and anchor is not None:
                    entry["sbi_c2st"] = anchor
                    entry["beats_sbi"] = scores[best] <= anchor
                    n = mine[best]["n"]
                    entry["within_noise_of_sbi"] = scores[best] <= anchor + c2st_tolerance(n)
                elif beta == 1.0 and anchor_failed:
                    entry["sbi_failed"] = anchor_failed
                out.append(entry)
    return out


def _against_sbi(entry: dict[str, Any]) -> str:
    """How the best route at beta = 1 compares with sbi's NPE (a ``summarize`` entry)."""
    if entry["beats_sbi"]:
        return "beaten"
    return "tied within noise" if entry["within_noise_of_sbi"] else "**worse**"


def at_a_glance(record: dict[str, Any]) -> list[str]:
    """Markdown bullets for the top of docs/results.md: per task and budget, how
    many betas meet the target on the best route, the worst of them, beta = 1
    against sbi, and the grid cells not measured yet."""
    summary = summarize(record)
    lines = []
    for task in TASKS:
        for budget in BUDGETS:
            rows = [e for e in summary if e["task"] == task and e["simulations"] == budget]
            if not rows:
                continue
            worst = max(rows, key=lambda e: e["best_c2st"])
            text = f"{task}, {budget // 1000}k: best-route median C2ST " + (
                f"{min(e['best_c2st'] for e in rows):.3f}-{worst['best_c2st']:.3f} over beta"
            )
            if worst["target"] is not None:
                met = sum(bool(e["met"]) for e in rows)
                text += f", target <= {worst['target']:.2f} met at {met} of {len(rows)} betas"
                if met < len(rows):
                    text += f" (worst {worst['best_c2st']:.3f} at beta {worst['beta']:g})"
            at_one = next((e for e in rows if e["beta"] == 1.0), None)
            if at_one and "sbi_c2st" in at_one:
                text += f"; beta = 1: {at_one['best_c2st']:.3f} against sbi's "
                text += f"{at_one['sbi_c2st']:.3f} ({_against_sbi(at_one)})"
            elif at_one and "sbi_failed" in at_one:
                text += "; sbi's NPE failed to train here"
            lines.append(text + ".")
    cells = _official(record)
    missing = [
        f"{task} {route} {budget // 1000}k"
        for task in TASKS
        for budget in BUDGETS
        for route in ROUTES
        if cell_key(task, route, budget) not in cells
    ]
    if missing:
        lines.append("Grid cells not measured yet: " + ", ".join(missing) + ".")
    return lines


def network_label(cell: dict[str, Any]) -> str:
    """How a cell's posterior network was trained: ``avg 0.998, per-beta stop``,
    ``plain``, ... (cells recorded before the settings were kept were plain)."""
    settings = cell.get("training", {}).get("posterior_settings") or {}
    parts = []
    if settings.get("ema_decay"):
        parts.append(f"avg {settings['ema_decay']:g}")
    if settings.get("per_temperature"):
        parts.append("per-beta stop")
    if settings.get("beta_sampling") == "ess":
        parts.append("ess beta")
    embedding = {"surrogate": "NRE's x embedding", "surrogate-init": "NRE's x embedding, tuned"}
    if settings.get("posterior_embedding") in embedding:
        parts.append(embedding[settings["posterior_embedding"]])
    return ", ".join(parts) or "plain"


def _commit_label(cell: dict[str, Any]) -> str:
    """The commit a cell was trained at, and the experiment it was adopted from."""
    adopted = cell.get("adopted_from")
    return cell["commit"] + (f" (adopted from {adopted})" if adopted else "")


def to_markdown(record: dict[str, Any]) -> str:
    cells = _official(record)
    if not cells:
        return "No cell measured yet."
    lines = [
        "C2ST (0.5 = indistinguishable from the reference) of q(theta | x, beta) against "
        "gbi-eval's reference samplers, median over observations "
        f"{sorted({r['observation'] for c in cells.values() for r in c['rows']})}, "
        f"{next(iter(cells.values()))['n']} draws per side. Each cell names its commit; "
        "`--plan` lists what is cached. 'network' says how the posterior network "
        "was trained: 'avg 0.998' validated and returned a moving average of its "
        "weights, 'per-beta stop' stopped each temperature at its own best epoch, "
        "'ess beta' drew its training temperatures tilted by the weighted pairs' "
        "effective number (all three are today's defaults for routes b-nle and b-nre; "
        "the first for a and auto), 'NRE's x embedding' read x through the NRE's "
        "trained embedding, fixed (today's default for routes b-nre and auto where x "
        "is embedded: lorenz96), 'plain' none (a cell trained before they became "
        "the defaults). A cell 'adopted from' an experiment is that experiment's run, "
        "made a grid cell once its settings became the defaults (`--adopt TAG`).",
        "",
    ]
    for task in TASKS:
        budgets = sorted({c["simulations"] for c in cells.values() if c["task"] == task})
        for budget in budgets:
            mine = {
                c["route"]: c
                for c in cells.values()
                if c["task"] == task and c["simulations"] == budget
            }
            lines += [
                f"**{task}, {budget:,} simulations**",
                "",
                "| route | "
                + " | ".join(f"{b:g}" for b in BETAS)
                + " | train s | network | commit |",
                "|---|" + "---:|" * len(BETAS) + "---:|---|---|",
            ]
            for route in [*ROUTES, *BASELINES]:
                if route not in mine:
                    continue
                table = _median_table(mine[route], list(BETAS))
                cols = [f"{table[b]:.3f}" if b in table else "" for b in BETAS]
                seconds = mine[route].get("training", {}).get("seconds")
                name = {ANCHOR: "sbi NPE (anchor)", PLAIN: "gbi NPE, beta = 1 only"}.get(
                    route, route
                )
                network = "" if route == ANCHOR else network_label(mine[route])
                failed = mine[route].get("training", {}).get("failed")
                if failed:
                    network = f"failed: {failed}"
                lines.append(
                    f"| {name} | "
                    + " | ".join(cols)
                    + (f" | {seconds:.0f}" if seconds else " | ")
                    + f" | {network} | {_commit_label(mine[route])} |"
                )
            ess_rows = [
                (r, mine[r]["training"]["weights"])
                for r in ("b-nle", "b-nre", "auto")
                if r in mine and "weights" in mine[r].get("training", {})
            ]
            for route, weights in ess_rows:
                by_beta = dict(zip(weights["beta"], weights["relative_ess"], strict=True))
                cols = [f"{by_beta[b]:.2f}" if b in by_beta else "" for b in BETAS]
                lines.append(f"| rel. ESS {route} | " + " | ".join(cols) + " | | | |")
            lines.append("")
    summary = summarize(record)
    if summary:
        lines += [
            "Targets, on the best route per beta (median C2ST). Against sbi, 'tied within "
            "noise' means at most two standard errors of a C2ST difference worse "
            f"({c2st_tolerance(2000):.3f} at 2000 draws per side).",
            "",
            "| task | sims | beta | best route | C2ST | target | met | sbi NPE at beta 1 |",
            "|---|---:|---:|---|---:|---:|:---:|---:|",
        ]
        for e in summary:
            target = "" if e["target"] is None else f"{e['target']:.2f}"
            met = "" if e["met"] is None else ("yes" if e["met"] else "**no**")
            anchor = ""
            if "sbi_c2st" in e:
                anchor = f"{e['sbi_c2st']:.3f} ({_against_sbi(e)})"
            elif "sbi_failed" in e:
                anchor = "sbi failed to train"
            lines.append(
                f"| {e['task']} | {e['simulations']:,} | {e['beta']:g} | {e['best_route']} | "
                f"{e['best_c2st']:.3f} | {target} | {met} | {anchor} |"
            )
        lines.append("")
    lines += _experiments(record)
    for path in record.get("figures", []):
        rel = os.path.relpath(_common.ROOT / path, _common.ROOT / "docs")
        lines.append(f"![{Path(path).stem}]({rel})")
    return "\n".join(lines)


#: tagged cells whose inputs were changed outside ``--set``
TAG_NOTES = {
    "exact-weights": "exact ratio scores (diag_exact_weights.py)",
    "plain-nre": "an NRE reading raw x (an older session)",
    "tail50": "x compressed from 50 robust units on, not 3 (gbi_npe.transforms.TAIL_THRESHOLD)",
}


def _experiments(record: dict[str, Any]) -> list[str]:
    """The tagged cells (``--tag``, ``--set``): one row each, with their settings."""
    tagged = {k: c for k, c in record.get("cells", {}).items() if _experiment(c)}
    if not tagged:
        return []
    lines = [
        "Experiments (tagged cells and other seeds, not part of the grid; the findings at "
        "the end say what each tests): median C2ST.",
        "",
        "| cell | settings | " + " | ".join(f"{b:g}" for b in BETAS) + " | train s | commit |",
        "|---|---|" + "---:|" * len(BETAS) + "---:|---|",
    ]
    for key in sorted(tagged):
        cell = tagged[key]
        table = _median_table(cell, list(BETAS))
        cols = [f"{table[b]:.3f}" if b in table else "" for b in BETAS]
        settings = ", ".join(f"{k}={v}" for k, v in sorted(cell.get("settings", {}).items()))
        settings = TAG_NOTES.get(cell.get("tag", ""), settings)
        if cell.get("seed"):
            settings = ", ".join([f"seed={cell['seed']}", *([settings] if settings else [])])
        seconds = cell.get("training", {}).get("seconds")
        lines.append(
            f"| {key} | {settings or 'defaults'} | "
            + " | ".join(cols)
            + f" | {'' if not seconds else f'{seconds:.0f}'} | {cell.get('commit', '')} |"
        )
    return [*lines, ""]


# -- files -----------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: np.asarray(v).tolist()))


def _atomic_write(path: Path, text: str) -> None:
    from gbi.rundir import atomic_write_bytes

    atomic_write_bytes(path, text.encode())


def _atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    import io

    from gbi.rundir import atomic_write_bytes

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
