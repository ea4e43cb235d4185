"""Speed of amortization, as ratios measured in one run.

(a) Sampling vs the reference MCMC: 10k draws for one (x, beta) (observation 0,
    beta 1 and 0.5) per task. ``posterior.sample(10_000, x, beta, seed)`` (best
    of a few, after a warm-up) against ``gbi_eval.reference_posterior(task, x,
    beta, 10_000, seed)`` (after a warm-up call that compiles the numba
    kernels; one call, best of three when a call takes under a second). The
    posterior is the trained b-nre cell of ``benchmarks/_work/runs`` when it
    exists (``_common.run_name``), else an untrained gbi-npe estimator of the
    architecture ``gbi.train`` builds: sampling cost does not depend on the
    weights. Target: reference / ours >= 1000.
(b) Training the all-beta model: ``gbi.train("two_moons", route="b-nre")`` in a
    fresh temporary run directory (simulation, NRE, SNIS weights, NPE: the full
    wall time) against sbi's NPE (NSF, sbi's defaults, beta = 1 only) trained
    on the same simulations, on the same device (``device="auto"``: CUDA when
    present). Target: ours / sbi <= 0.5. Measured twice for gbi: with the
    defaults (the posterior network trains until its validation loss stops
    improving) and with a training budget (``posterior_epochs``, default 150:
    a cosine step size over that many epochs; its accuracy is the accuracy
    benchmark's ``cos150`` cells), each from scratch.
(c) Throughput when amortizing over many observations: 1000 observations x
    1000 draws in one batched call, samples per second: the two models of (b)
    at beta = 1 (ours ``posterior.sample``, sbi ``sample_batched``, both on the
    training device), and each posterior of (a) on the CPU.

``--max-epochs`` bounds every training (smoke runs only: the real comparison
trains to convergence). ``--threads`` sets torch's CPU threads (0: torch's
default); on cores shared with other work, fewer threads can be much faster.
numba's OpenMP threading layer shares OpenMP with torch and resets torch's
thread count when it first runs (simulator, reference samplers), so the
setting is applied again before every torch timing; inside ``gbi.train`` the
training after the simulation stage may run on numba's count.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import ROOT, RUNS_DIR, best_time, run_name
from bench_npe import _NoTracking

TASKS = ("two_moons", "gaussian_mixture", "slcp", "lorenz96")
SAMPLING_BETAS = (1.0, 0.5)
DRAWS = 10_000
OBSERVATIONS = 1000
DRAWS_EACH = 1000
TRAINING_TASK = "two_moons"
ROUTE = "b-nre"
TARGET_SAMPLING_RATIO = 1000.0
TARGET_TRAINING_RATIO = 0.5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="training epochs bound (smoke runs only)"
    )
    parser.add_argument(
        "--posterior-epochs",
        type=int,
        default=150,
        help="(b) also times gbi with this posterior_epochs budget (0: skip it)",
    )
    parser.add_argument(
        "--no-compile",
        action="store_true",
        help="(b) skip the compiled trainings (compile=True, cold and warm cache)",
    )
    parser.add_argument("--no-sbi", action="store_true", help="skip sbi in (b) and (c)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument(
        "--observations",
        type=int,
        default=OBSERVATIONS,
        help="observations of the throughput test (c), 1000 draws each",
    )


# -- (a) sampling vs reference MCMC ---------------------------------------------------------


def _untrained_posterior(task: Any) -> Any:
    """A gbi-npe posterior of the architecture ``gbi.train`` builds, weights as initialized."""
    import gbi
    import gbi_npe
    from gbi.problem import make_problem
    from gbi.routes import _density, embedding_config  # what gbi.train builds

    config = gbi.RunConfig(problem=task.name)
    npe = gbi_npe.make_npe(
        task.prior.dim,
        task.x_dim,
        density=_density(config),
        embedding=embedding_config(config, make_problem(task.name), task.x_dim),
        low=task.prior.low,
        high=task.prior.high,
    )
    rng = np.random.default_rng(0)
    theta = task.prior.sample(1000, seed=rng)
    x = task.simulate(theta, seed=rng)
    finite = np.all(np.isfinite(x), axis=1)
    low, high = config.beta_range
    betas = np.exp(rng.uniform(np.log(low), np.log(high), 1000))
    npe.set_standardization(theta[finite], x[finite], beta_sample=betas)
    npe.record_beta_range(low, high)
    return gbi_npe.Posterior(npe)


def _sampling_posterior(task: Any, args: argparse.Namespace) -> tuple[Any, str]:
    import gbi_npe

    path = RUNS_DIR / run_name(task.name, ROUTE, args.simulations, args.seed)
    model = path / "posterior.safetensors"
    if model.is_file():
        return gbi_npe.Posterior.load(model), f"trained ({path.relative_to(ROOT)})"
    return _untrained_posterior(task), "untrained, same architecture"


def _set_threads(args: argparse.Namespace) -> None:
    """Apply ``--threads``; again after numba ran, since numba's OpenMP layer resets torch's."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)


def _reference_seconds(run_once: Callable[[], Any]) -> float:
    """Wall time of one reference call; best of three when a call takes under a second."""
    start = time.perf_counter()
    run_once()
    seconds = time.perf_counter() - start
    if seconds < 1.0:
        seconds = min(seconds, best_time(run_once, repeat=2, min_time=0.0))
    return seconds


def _sampling(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import gbi_eval
    import gbi_sims

    task = gbi_sims.get_task(name)
    posterior, source = _sampling_posterior(task, args)
    x = task.observation(0).x
    print(f"   {name}: reference warm-up (numba compilation)", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gbi_eval.ConvergenceWarning)
        start = time.perf_counter()
        gbi_eval.reference_posterior(task, x, SAMPLING_BETAS[0], 100, args.seed + 100)
        warm_up = time.perf_counter() - start
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for beta in SAMPLING_BETAS:
        print(f"   {name}: beta = {beta:g}, reference ({DRAWS} draws)", flush=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", gbi_eval.ConvergenceWarning)
            reference = _reference_seconds(
                lambda b=beta: gbi_eval.reference_posterior(task, x, b, DRAWS, args.seed)
            )
        _set_threads(args)
        for device in devices:
            posterior.estimator.to(device)
            posterior.sample(DRAWS, x, beta, seed=args.seed)  # warm-up
            ours = best_time(lambda b=beta: posterior.sample(DRAWS, x, b, seed=args.seed))
            rows.append(
                {
                    "beta": beta,
                    "device": device,
                    "ours_seconds": ours,
                    "reference_seconds": reference,
                    "ratio": reference / ours,
                    "meets_target": reference / ours >= TARGET_SAMPLING_RATIO,
                    "reference_warnings": [str(w.message) for w in caught],
                }
            )
            print(
                f"   {name}: beta = {beta:g}, {device}: ours {1e3 * ours:.1f} ms, reference "
                f"{reference:.2f} s, ratio {_ratio(reference / ours)}",
                flush=True,
            )
    posterior.estimator.to("cpu")
    throughput = _throughput_ours(posterior, task, args)
    return {
        "task": name,
        "model": source,
        "reference_warm_up_seconds": warm_up,
        "rows": rows,
        "throughput": throughput,
    }


# -- (c) throughput -------------------------------------------------------------------------


def _many_observations(task: Any, args: argparse.Namespace) -> np.ndarray:
    """``--observations`` prior-predictive x (finite rows only)."""
    rng = np.random.default_rng([args.seed, 0x5EED])
    x = task.simulate(task.prior.sample(args.observations, seed=rng), seed=rng)
    return x[np.all(np.isfinite(x), axis=1)]


def _throughput_ours(posterior: Any, task: Any, args: argparse.Namespace) -> dict[str, Any]:
    many_x = _many_observations(task, args)
    _set_threads(args)
    seed = args.seed
    posterior.sample(10, many_x[:10], 1.0, seed=seed)  # warm-up
    seconds = best_time(
        lambda: posterior.sample(DRAWS_EACH, many_x, 1.0, seed=seed), repeat=2, min_time=0.0
    )
    draws = many_x.shape[0] * DRAWS_EACH
    return {
        "device": str(posterior.estimator.device),
        "observations": many_x.shape[0],
        "draws_each": DRAWS_EACH,
        "seconds": seconds,
        "samples_per_second": draws / seconds,
    }


# -- (b) training -----------------------------------------------------------------------------


def _train_ours(
    args: argparse.Namespace,
    out: Path,
    posterior_epochs: int | None = None,
    compile: bool = False,
) -> dict[str, Any]:
    import gbi
    import gbi_sims

    task = gbi_sims.get_task(TRAINING_TASK)
    task.simulate(task.prior.sample(2, seed=0), seed=0)  # compile the simulator first
    _set_threads(args)
    settings: dict[str, Any] = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    if posterior_epochs:  # a smoke run's --max-epochs bounds the budget too
        posterior_epochs = min(posterior_epochs, args.max_epochs or posterior_epochs)
        settings["posterior_epochs"] = posterior_epochs
    if compile:
        settings["compile"] = True
    print(
        f"   training gbi {ROUTE} on {TRAINING_TASK} ({args.simulations} simulations"
        + "".join(f", {k}={v}" for k, v in settings.items() if k != "max_epochs")
        + ")"
    )
    start = time.perf_counter()
    result = gbi.train(
        TRAINING_TASK,
        route=ROUTE,
        simulations=args.simulations,
        seed=args.seed,
        device="auto",
        out=out,
        progress=False,
        verbose=False,
        **settings,
    )
    seconds = time.perf_counter() - start
    report = result.report
    stages = {
        "simulation": report["simulations"]["seconds"],
        "nre": report["surrogate"]["seconds"],
        "npe": report["npe"]["seconds"],
    }
    stages["weights_and_rest"] = seconds - sum(stages.values())
    print(f"   gbi: {seconds:.1f} s", flush=True)
    return {
        "seconds": seconds,
        "stages": stages,
        "nre_epochs": len(report["surrogate"]["history"]["train_loss"]),
        "npe_epochs": len(report["npe"]["history"]["train_loss"]),
        "device": report["npe"]["history"]["device"],
        "posterior_epochs": posterior_epochs,
        "compile": compile,
        # the first NPE epoch holds the compilation
        "npe_first_epoch_seconds": report["npe"]["history"]["epoch_seconds"][0],
        # per-temperature stopping: the epoch each validation temperature kept
        "npe_best_epochs": dict(
            zip(
                report["npe"]["history"].get("validation_part_labels", []),
                report["npe"]["history"].get("validation_part_best_epochs", []),
                strict=True,
            )
        ),
    }


def _base_set(out: Path) -> tuple[np.ndarray, np.ndarray]:
    """The simulations of a finished run directory, finite rows, in order."""
    chunks = sorted((out / "simulations").glob("chunk_*.npz"))
    theta, x = [], []
    for chunk in chunks:
        with np.load(chunk) as data:
            theta.append(data["theta"])
            x.append(data["x"])
    theta_all, x_all = np.concatenate(theta), np.concatenate(x)
    finite = np.all(np.isfinite(x_all), axis=1)
    return theta_all[finite], x_all[finite]


def _train_sbi(
    theta: np.ndarray, x: np.ndarray, device: str, args: argparse.Namespace
) -> tuple[dict[str, Any], Any]:
    """sbi's NPE (NSF, defaults) on the same simulations; returns its record and posterior."""
    import sbi
    from sbi.inference import NPE
    from sbi.utils import BoxUniform

    import gbi_sims

    task = gbi_sims.get_task(TRAINING_TASK)
    prior = BoxUniform(
        torch.tensor(task.prior.low, dtype=torch.float32),
        torch.tensor(task.prior.high, dtype=torch.float32),
        device=device,
    )
    options: dict[str, Any] = {
        "prior": prior,
        "density_estimator": "nsf",
        "device": device,
        "show_progress_bars": False,
    }
    train_options = {} if args.max_epochs is None else {"max_num_epochs": args.max_epochs}
    print(f"   training sbi NPE (nsf) on the same {theta.shape[0]} simulations", flush=True)
    torch.manual_seed(args.seed)  # sbi draws its split and initial weights from torch's stream
    start = time.perf_counter()
    inference = NPE(**options, tracker=_NoTracking())
    inference.append_simulations(
        torch.as_tensor(theta, dtype=torch.float32), torch.as_tensor(x, dtype=torch.float32)
    )
    inference.train(**train_options)
    posterior = inference.build_posterior()
    seconds = time.perf_counter() - start
    print(f"   sbi: {seconds:.1f} s", flush=True)
    return {
        "version": sbi.__version__,
        "seconds": seconds,
        "epochs": int(inference.summary["epochs_trained"][-1]),
        "device": device,
    }, posterior


def _throughput_sbi(
    posterior: Any, many_x: np.ndarray, device: str, low: np.ndarray, high: np.ndarray
) -> dict[str, Any]:
    """sbi's ``sample_batched`` without its rejection of draws outside the prior box.

    With rejection (sbi's default) the call does not end on two_moons: for some
    prior-predictive x almost no draw of sbi's flow lands inside the box, and
    sbi keeps redrawing. So the flow's own throughput is timed, and the share of
    its draws outside the box is recorded (ours has none, by construction).
    """
    x_t = torch.as_tensor(many_x, dtype=torch.float32, device=device)

    def draw() -> torch.Tensor:
        return posterior.sample_batched(
            (DRAWS_EACH,), x=x_t, show_progress_bars=False, reject_outside_prior=False
        )

    posterior.sample_batched(
        (10,), x=x_t[:10], show_progress_bars=False, reject_outside_prior=False
    )  # warm-up
    seconds = best_time(draw, repeat=2, min_time=0.0)
    with torch.no_grad():
        samples = draw().detach().cpu().numpy()  # (draws, observations, d)
    inside = np.all((samples >= low) & (samples <= high), axis=-1)
    return {
        "device": device,
        "observations": many_x.shape[0],
        "draws_each": DRAWS_EACH,
        "seconds": seconds,
        "samples_per_second": many_x.shape[0] * DRAWS_EACH / seconds,
        "outside_prior_fraction": float(1.0 - inside.mean()),
        "observations_mostly_outside": int((inside.mean(axis=0) < 0.5).sum()),
    }


def _variants(args: argparse.Namespace) -> list[tuple[str, int | None, bool]]:
    """(record key, posterior_epochs, compile) of the gbi trainings after the defaults'.

    The compiled trainings run with TorchInductor's cache in a fresh folder:
    the first ("cold") pays the whole compilation, as a first run on a new
    machine does; the second ("warm") finds its kernels cached, as every
    later run of the same network shapes does.
    """
    variants: list[tuple[str, int | None, bool]] = []
    if args.posterior_epochs:
        variants.append(("ours_budget", args.posterior_epochs, False))
    if not args.no_compile:
        epochs = args.posterior_epochs or None
        variants += [("ours_compiled_cold", epochs, True), ("ours_compiled_warm", epochs, True)]
    return variants


def _training(args: argparse.Namespace) -> dict[str, Any]:
    """(b) and the trained models' part of (c), with TorchInductor's cache in a
    fresh folder (cold for the first compiled training), removed afterwards."""
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="gbi-bench-inductor-") as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
        try:
            return _train_and_compare(args)
        finally:
            if before is None:
                os.environ.pop("TORCHINDUCTOR_CACHE_DIR")
            else:
                os.environ["TORCHINDUCTOR_CACHE_DIR"] = before


def _train_and_compare(args: argparse.Namespace) -> dict[str, Any]:
    import gbi_npe
    import gbi_sims

    task = gbi_sims.get_task(TRAINING_TASK)
    record: dict[str, Any] = {"task": TRAINING_TASK, "route": ROUTE}
    with tempfile.TemporaryDirectory(prefix="gbi-bench-speed-") as tmp:
        out = Path(tmp) / "run"
        record["ours"] = _train_ours(args, out)
        device = record["ours"]["device"]
        posterior = gbi_npe.Posterior.load(out / "posterior.safetensors", device=device)
        theta, x = _base_set(out)
    for key, epochs, compile in _variants(args):
        with tempfile.TemporaryDirectory(prefix="gbi-bench-speed-") as tmp:
            record[key] = _train_ours(args, Path(tmp) / "run", epochs, compile)
    many_x = _many_observations(task, args)
    record["throughput_ours"] = _throughput_ours(posterior, task, args)
    if args.no_sbi:
        record["sbi"] = {"available": False, "reason": "skipped (--no-sbi)"}
        return record
    try:
        import sbi  # noqa: F401
    except Exception as error:  # ImportError or a broken install
        record["sbi"] = {"available": False, "reason": f"import sbi failed: {error!r}"}
        return record
    _set_threads(args)
    sbi_record, sbi_posterior = _train_sbi(theta, x, device, args)
    record["sbi"] = {"available": True, **sbi_record}
    record["throughput_sbi"] = _throughput_sbi(
        sbi_posterior, many_x, device, task.prior.low, task.prior.high
    )
    record["ratio"] = record["ours"]["seconds"] / sbi_record["seconds"]
    record["meets_target"] = record["ratio"] <= TARGET_TRAINING_RATIO
    for key, _, _ in _variants(args):
        ratio = record[key]["seconds"] / sbi_record["seconds"]
        record[key].update(ratio=ratio, meets_target=ratio <= TARGET_TRAINING_RATIO)
    record["throughput_ratio"] = (
        record["throughput_ours"]["samples_per_second"]
        / record["throughput_sbi"]["samples_per_second"]
    )
    return record


def run(args: argparse.Namespace) -> dict[str, Any]:
    _set_threads(args)
    load_before = os.getloadavg()
    sampling = [_sampling(name, args) for name in args.tasks]
    training = _training(args)
    return {
        "simulations": args.simulations,
        "max_epochs": args.max_epochs,
        "draws": DRAWS,
        "betas": list(SAMPLING_BETAS),
        "torch_threads": torch.get_num_threads(),
        "sampling": sampling,
        "training": training,
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
    }


def _ratio(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.2g}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "**no**"


def _throughput_line(label: str, t: dict[str, Any]) -> str:
    return (
        f"| {label} | {t['device']} | {t['observations']} x {t['draws_each']} | "
        f"{t['seconds']:.2f} | {t['samples_per_second']:,.0f} |"
    )


def _training_line(label: str, t: dict[str, Any]) -> str:
    stages = ", ".join(f"{k} {v:.1f}" for k, v in t["stages"].items())
    return (
        f"| {label} | {t['device']} | NRE {t['nre_epochs']}, NPE {t['npe_epochs']} | "
        f"{t['seconds']:.1f} | {stages} |"
    )


VARIANT_KEYS = ("ours_budget", "ours_compiled_cold", "ours_compiled_warm")


def _variant_label(key: str, variant: dict[str, Any]) -> str:
    epochs = variant.get("posterior_epochs")
    label = f"posterior_epochs={epochs}" if epochs else "defaults"
    if key == "ours_compiled_cold":
        label += ", compile (cold cache)"
    elif key == "ours_compiled_warm":
        label += ", compile (warm cache)"
    return label


def _variant_ratio(training: dict[str, Any], key: str) -> tuple[float, bool]:
    if "ratio" in training[key]:
        return training[key]["ratio"], training[key]["meets_target"]
    return training["ratio_budget"], training["meets_target_budget"]  # older records


def at_a_glance(record: dict[str, Any]) -> list[str]:
    """Markdown bullets for the top of docs/results.md: the three speed ratios."""
    rows = [(t["task"], row) for t in record["sampling"] for row in t["rows"]]
    ratios = [row["ratio"] for _, row in rows]
    met = sum(row["meets_target"] for _, row in rows)
    devices = sorted({row["device"] for _, row in rows})
    lines = [
        f"Sampling {record['draws']:,} draws for one (x, beta) against the reference "
        f"sampler ({'/'.join(devices)}): reference time / ours {_ratio(min(ratios))} to "
        f"{_ratio(max(ratios))} (target >= {TARGET_SAMPLING_RATIO:,.0f}, met in {met} of "
        f"{len(rows)})."
    ]
    training = record["training"]
    if training.get("sbi"):
        best = min(VARIANT_KEYS, key=lambda k: _variant_ratio(training, k)[0])
        ratio, meets = _variant_ratio(training, best)
        if not meets:
            verdict = ", not met."
        elif training["meets_target"]:
            verdict = " met."
        else:
            verdict = " met with those settings, not with the defaults."
        lines.append(
            f"Training the all-beta model (route {training['route']}, {training['task']}, "
            f"{record['simulations']:,} simulations) against sbi's single-beta NPE: "
            f"{training['ratio']:.2f}x sbi's wall time with the defaults, {ratio:.2f}x at best "
            f"({_variant_label(best, training[best])}); target <= {TARGET_TRAINING_RATIO:g}x"
            + verdict
        )
    if "throughput_ratio" in training:
        lines.append(
            "Many observations at once (1000 x 1000 draws): "
            f"{training['throughput_ratio']:.2f}x sbi's batched sampling rate."
        )
    return lines


def _span(values: list[float], fmt: Callable[[float], str]) -> str:
    """'lo-hi' of the values as ``fmt`` writes them (one number where both read alike)."""
    lo, hi = fmt(min(values)), fmt(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def _why_missed(record: dict[str, Any]) -> list[str]:
    """Paragraphs on the targets (a) and (b) this record misses, with the numbers they need."""
    lines = []
    rows = [row for task in record["sampling"] for row in task["rows"] if not row["meets_target"]]
    if rows:
        needed = [1e3 * row["reference_seconds"] / TARGET_SAMPLING_RATIO for row in rows]
        ours = [1e3 * row["ours_seconds"] for row in rows]
        short = [o / n for o, n in zip(ours, needed, strict=True)]
        gpu = (record.get("machine") or {}).get("gpu")
        devices = {row["device"] for row in rows}
        lines += [
            "",
            f"Why (a) is missed: {TARGET_SAMPLING_RATIO:,.0f}x would need {record['draws']:,} "
            f"draws in {_span(needed, '{:.3g}'.format)} ms (the reference's time / "
            f"{TARGET_SAMPLING_RATIO:,.0f}); ours take {_span(ours, '{:.0f}'.format)} ms, "
            f"{_span(short, _ratio)}x longer. The references are compiled "
            "(numba) samplers tuned to each task (gbi_eval: exact rejection sampling where the "
            "task allows it, adaptive random-walk MH or parallel tempering elsewhere), and "
            "ours is one batched pass through the spline flow, bound by its arithmetic on "
            + (
                f"{record['torch_threads']} CPU thread(s)"
                + ("." if gpu else "; no GPU in this run.")
                if devices == {"cpu"}
                else f"{' and '.join(sorted(devices))}."
            ),
        ]
    training = record["training"]
    if training["sbi"]["available"] and not training["meets_target"]:
        ours, sbi = training["ours"], training["sbi"]
        npe = ours["stages"].get("npe", 0.0)
        best = ours.get("npe_best_epochs") or {}
        kept = (
            "; the epoch each validation temperature kept: "
            + ", ".join(f"{label.replace('=', ' ')}: {epoch + 1}" for label, epoch in best.items())
            if best
            else ""
        )
        lines += [
            "",
            "Why (b) is missed with the defaults: the all-beta network trains until no "
            f"temperature's validation loss improves, {ours['npe_epochs']} epochs here "
            f"({npe:.0f} of the {ours['seconds']:.0f} s{kept}), where sbi's single-beta NPE "
            f"stops after {sbi['epochs']}. A budget (`posterior_epochs`) and a warm compile "
            "cache are what the other rows trade for time.",
        ]
    return lines


def to_markdown(record: dict[str, Any]) -> str:
    n = record["draws"]
    lines = [
        f"(a) {n:,} draws for one (x, beta), observation 0: `posterior.sample` (best of "
        f"several calls after a warm-up; torch threads = {record['torch_threads']}) against "
        f"`gbi_eval.reference_posterior` (after a numba warm-up; one call, best of three "
        f"when a call takes under 1 s). Target: reference / ours >= {TARGET_SAMPLING_RATIO:,.0f}.",
        "",
        "| task | model | beta | device | ours (ms) | reference (s) | reference / ours | "
        f">= {TARGET_SAMPLING_RATIO:,.0f} |",
        "|---|---|---:|---|---:|---:|---:|:---:|",
    ]
    for task in record["sampling"]:
        for row in task["rows"]:
            lines.append(
                f"| {task['task']} | {task['model']} | {row['beta']:g} | {row['device']} | "
                f"{1e3 * row['ours_seconds']:.1f} | {row['reference_seconds']:.2f} | "
                f"{_ratio(row['ratio'])} | {_yes(row['meets_target'])} |"
            )
    warned = [
        (task["task"], row["beta"], row["reference_warnings"])
        for task in record["sampling"]
        for row in task["rows"]
        if row["reference_warnings"] and row["device"] == "cpu"
    ]
    if warned:
        lines += ["", "Reference convergence warnings:", ""]
        lines += [f"- {name}, beta = {beta:g}: {'; '.join(w)}" for name, beta, w in warned]

    training = record["training"]
    ours = training["ours"]
    epochs_note = (
        f", at most {record['max_epochs']} epochs (smoke run)" if record.get("max_epochs") else ""
    )
    lines += [
        "",
        f"(b) Training on {training['task']}, {record['simulations']:,} simulations"
        f'{epochs_note}: `gbi.train(route="{training["route"]}")` in a fresh run directory '
        "(simulation, NRE, SNIS weights, beta-conditioned NPE: every beta in [0.1, 2]) against "
        "sbi's NPE (NSF, sbi's defaults, beta = 1 only) on the same simulations and device. "
        f"Target: ours / sbi <= {TARGET_TRAINING_RATIO:g}.",
        "",
        "| model | device | epochs | wall time (s) | stages (s) |",
        "|---|---|---|---:|---|",
        _training_line(f"gbi {training['route']} (all beta)", ours),
    ]
    variants = [(k, _variant_label(k, training[k])) for k in VARIANT_KEYS if k in training]
    for key, label in variants:
        lines.append(_training_line(f"gbi {training['route']} (all beta), {label}", training[key]))
    sbi_record = training["sbi"]
    if sbi_record["available"]:
        lines += [
            f"| sbi {sbi_record['version']} NPE (beta = 1) | {sbi_record['device']} | "
            f"{sbi_record['epochs']} | {sbi_record['seconds']:.1f} | training only |",
            "",
            f"Ratio gbi / sbi: {training['ratio']:.2f} (target <= "
            f"{TARGET_TRAINING_RATIO:g}: {_yes(training['meets_target'])}).",
        ]
        for key, label in variants:
            ratio, meets = _variant_ratio(training, key)
            lines[-1] += f" With {label}: {ratio:.2f} ({_yes(meets)})."
        compiled = [training[k] for k in VARIANT_KEYS[1:] if k in training]
        if compiled:
            lines += [
                "",
                "The compiled trainings' first NPE epoch, which holds the compilation: "
                + ", ".join(f"{c['npe_first_epoch_seconds']:.1f} s" for c in compiled)
                + " (cold, warm cache).",
            ]
    else:
        lines += ["", f"sbi: not measured ({sbi_record['reason']})."]

    lines += [
        "",
        "(c) Throughput, one batched call at beta = 1 over many prior-predictive observations "
        "(ours samples inside the prior box by construction; sbi's `sample_batched` is "
        "timed without its rejection of draws outside the box, which does not end here: "
        "for some x almost no draw of its flow lands inside):",
        "",
        "| model | device | observations x draws | seconds | samples / s |",
        "|---|---|---|---:|---:|",
        _throughput_line(
            f"gbi {training['route']}, {training['task']} (trained in b)",
            training["throughput_ours"],
        ),
    ]
    if sbi_record["available"]:
        lines.append(
            _throughput_line(
                f"sbi NPE `sample_batched`, {training['task']} (trained in b)",
                training["throughput_sbi"],
            )
        )
    for task in record["sampling"]:
        lines.append(_throughput_line(f"gbi, {task['task']} ({task['model']})", task["throughput"]))
    if sbi_record["available"]:
        leak = training["throughput_sbi"]
        lines += [
            "",
            f"Throughput ratio gbi / sbi: {training['throughput_ratio']:.2f}. "
            f"{100 * leak['outside_prior_fraction']:.1f} % of sbi's draws fall outside the "
            f"prior box; for {leak['observations_mostly_outside']} of "
            f"{leak['observations']} observations most of them do.",
        ]
    lines += _why_missed(record)
    load = record["load_average_before"]
    lines += [
        "",
        f"Load average before / after: {load[0]:.2f} / {record['load_average_after'][0]:.2f} "
        "(the machine's cores may be shared).",
    ]
    return "\n".join(lines) + "\n"
