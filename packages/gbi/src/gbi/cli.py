"""The ``gbi`` command line: simulate, train, sample, evaluate, report, demo."""

from __future__ import annotations

import argparse
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np

import gbi_sims
from gbi.config import (
    AUTO_FALLBACKS,
    BETA_SAMPLINGS,
    EMBEDDINGS,
    PAIR_SAMPLINGS,
    POSTERIOR_EMBEDDINGS,
    ROUTES,
    STABILIZATIONS,
)

EXAMPLES = {
    "simulate": "gbi simulate two_moons -n 100000 --seed 0 --out sims.npz",
    "train": "gbi train two_moons --route b-nre --simulations 10000 --out runs/tm",
    "sample": 'gbi sample runs/tm --x "0.1,-0.2" --beta 0.5 -n 1000 --out samples.csv',
    "evaluate": "gbi evaluate runs/tm --betas 0.1,0.5,1.0,1.5 --observations 0,1",
    "report": "gbi report runs/tm",
    "demo": "gbi demo --out runs/demo",
}


class CLIError(Exception):
    """A bad argument: printed as ``gbi: error: ...`` with exit status 2."""


def _numbers(text: str, what: str, kind: type, noun: str) -> list:
    try:
        values = [kind(v) for v in text.replace(" ", "").split(",") if v != ""]
    except ValueError as err:
        raise CLIError(f"{what} must be comma-separated {noun}, got {text!r}") from err
    if not values:
        raise CLIError(f"{what} is empty")
    return values


def _floats(text: str, what: str) -> list[float]:
    values = _numbers(text, what, float, "numbers")
    if not all(np.isfinite(values)):
        raise CLIError(f"{what} must be finite, got {text!r}")
    return values


def _ints(text: str, what: str) -> list[int]:
    return _numbers(text, what, int, "integers")


def _task_options(args: argparse.Namespace) -> dict:
    options = {}
    if getattr(args, "recording", None) is not None:
        rec = args.recording
        options["recording"] = rec if rec == "all" else int(rec)
    return options


def _check_task(name: str) -> None:
    if name not in gbi_sims.list_tasks():
        raise CLIError(f"unknown task {name!r}; choose one of {', '.join(gbi_sims.list_tasks())}")


def _progress(args: argparse.Namespace) -> bool | None:
    return False if getattr(args, "no_progress", False) else None


# -- verbs --------------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace) -> int:
    from gbi.problem import make_problem
    from gbi.simulation import simulate_base_set

    _check_task(args.task)
    if args.n <= 0:
        raise CLIError(f"-n must be positive, got {args.n}")
    out = Path(args.out)
    if out.suffix != ".npz":
        raise CLIError(f"--out must end in .npz, got {out}")
    problem = make_problem(args.task, **_task_options(args))
    base = simulate_base_set(
        problem, args.n, args.seed, chunk_size=args.chunk_size, progress=_progress(args)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, theta=base.theta, x=base.x)
    print(
        f"wrote {base.theta.shape[0]} pairs (theta {base.theta.shape}, x {base.x.shape}) to "
        f"{out}; {base.n_dropped} failed simulations dropped"
    )
    return 0


def _ema_decay(text: str) -> float | str:
    """``--ema-decay``: a decay in (0, 1), or ``none`` for the raw weights."""
    if text.strip().lower() == "none":
        return "none"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number in (0, 1) or 'none', got {text!r}"
        ) from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"the decay must lie in (0, 1), got {value:g}")
    return value


def cmd_train(args: argparse.Namespace) -> int:
    from gbi.api import train

    _check_task(args.task)
    settings = {}
    for name in (
        "max_epochs",
        "patience",
        "stabilization",
        "flow",
        "embedding",
        "x_tail_threshold",
        "chunk_size",
        "nle_contrast",
        "pair_sampling",
        "beta_sampling",
        "pool_contrast",
        "pool_relative_ess",
        "pool_max_excess",
        "auto_pool",
        "auto_fallback",
        "ema_decay",
        "per_temperature",
        "posterior_epochs",
        "posterior_embedding",
        "compile",
    ):
        value = getattr(args, name)
        if value is not None:
            settings[name] = None if value == "none" else value
    result = train(
        args.task,
        route=args.route,
        simulations=args.simulations,
        beta_range=(args.beta_min, args.beta_max),
        seed=args.seed,
        device=args.device,
        out=args.out,
        progress=_progress(args),
        task_options=_task_options(args),
        reuse=args.reuse,
        **settings,
    )
    _print_training_summary(result.report, args.out)
    return 0


def _print_training_summary(report: dict, out: str) -> None:
    weights = report.get("weights")
    print(
        f"trained {report['route']} on {report['problem']} in "
        f"{report.get('seconds_total', 0.0):.0f} s; run directory: {out}"
    )
    sims = report["simulations"]
    print(
        f"simulations: {sims['requested']} requested, {sims['dropped_nonfinite']} dropped "
        f"as non-finite, {sims['reused']} reused from an earlier run"
    )
    if weights:
        pairs = ", ".join(
            f"{b:g}: {r:.2f}" for b, r in zip(weights["beta"], weights["relative_ess"], strict=True)
        )
        print(f"relative ESS of the SNIS weights by beta: {pairs}")
    if "auto" in report:
        print(f"auto: {report['auto']['summary']}")


def _load_x(args: argparse.Namespace, x_dim: int) -> np.ndarray:
    if (args.x is None) == (args.x_file is None):
        raise CLIError("give exactly one of --x and --x-file")
    if args.x is not None:
        x = np.asarray(_floats(args.x, "--x"))
    else:
        path = Path(args.x_file)
        if not path.is_file():
            raise CLIError(f"--x-file {path} does not exist")
        if path.suffix == ".npy":
            x = np.load(path, allow_pickle=False)
        else:
            x = np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=1)
        x = np.asarray(x, dtype=np.float64)
    if x.shape[-1] != x_dim or x.ndim > 2:
        raise CLIError(
            f"x must have {x_dim} values per observation (this posterior's x "
            f"dimension), got shape {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise CLIError("x must be finite")
    return x


def cmd_sample(args: argparse.Namespace) -> int:
    from gbi.evaluation import open_run

    if args.n <= 0:
        raise CLIError(f"-n must be positive, got {args.n}")
    if not (np.isfinite(args.beta) and args.beta > 0):  # no --extrapolate reaches these
        raise CLIError(f"--beta must be finite and > 0, got {args.beta}")
    out = Path(args.out)
    if out.suffix not in (".npy", ".csv"):
        raise CLIError(f"--out must end in .npy or .csv, got {out}")
    run = open_run(args.run_dir, args.device)
    posterior = run.posterior
    x = _load_x(args, posterior.x_dim)
    low, high = posterior.beta_range
    if not (low <= args.beta <= high) and not args.extrapolate:
        raise CLIError(
            f"--beta {args.beta} lies outside the trained range [{low}, {high}]; "
            "pass --extrapolate to sample anyway"
        )
    t0 = time.perf_counter()
    samples = posterior.sample(args.n, x, args.beta, seed=args.seed, extrapolate=args.extrapolate)
    seconds = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, samples)
    else:
        names = _theta_names(run)
        if samples.ndim == 2:
            np.savetxt(out, samples, delimiter=",", header=",".join(names), comments="")
        else:
            m, n, d = samples.shape
            flat = np.column_stack([np.repeat(np.arange(m), n), samples.reshape(m * n, d)])
            np.savetxt(
                out,
                flat,
                delimiter=",",
                header=",".join(["observation", *names]),
                comments="",
                fmt=["%d"] + ["%.10g"] * d,
            )
    print(f"wrote samples of shape {samples.shape} to {out} ({seconds * 1e3:.1f} ms)")
    return 0


def _theta_names(run) -> list[str]:
    from gbi.problem import make_problem

    try:
        return list(make_problem(run.task_name, **run.config.get("task_options", {})).theta_names)
    except ValueError:
        return [f"theta_{i + 1}" for i in range(run.posterior.theta_dim)]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from gbi import figures
    from gbi.evaluation import evaluate, metrics_table

    betas = tuple(_floats(args.betas, "--betas"))
    if any(b <= 0 for b in betas):
        raise CLIError("--betas must be positive")
    observations = tuple(_ints(args.observations, "--observations"))
    metrics = evaluate(
        args.run_dir,
        betas,
        observations,
        n=args.n,
        seed=args.seed,
        progress=_progress(args) is not False,
        device=args.device,
    )
    print(metrics_table(metrics))
    fig_dir = Path(args.run_dir) / "figures"
    fig_dir.mkdir(exist_ok=True)
    path = figures.plot_metrics({metrics["route"]: metrics}, fig_dir / "metrics_vs_beta.png")
    print(f"metrics: {Path(args.run_dir) / 'metrics.json'}; plot: {path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from gbi.report import make_report

    paths = make_report(
        args.run_dir, observation=args.observation, n=args.n, seed=args.seed, device=args.device
    )
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from gbi.api import train
    from gbi.evaluation import evaluate, metrics_table
    from gbi.report import make_report

    t0 = time.perf_counter()
    print(f"gbi demo: two_moons, route b-nre, {args.simulations} simulations -> {args.out}")
    settings = {"posterior_epochs": args.posterior_epochs}
    if args.max_epochs is not None:
        settings["max_epochs"] = args.max_epochs
    result = train(
        "two_moons",
        route="b-nre",
        simulations=args.simulations,
        seed=args.seed,
        device=args.device,
        out=args.out,
        progress=_progress(args),
        **settings,
    )
    _print_training_summary(result.report, args.out)
    metrics = evaluate(
        args.out,
        (0.1, 0.5, 1.0, 1.5),
        (0,),
        n=args.n_eval,
        seed=args.seed,
        progress=_progress(args) is not False,
        device=args.device,
    )
    print(metrics_table(metrics))
    paths = make_report(args.out, n=args.n_eval, seed=args.seed, device=args.device)
    print(
        textwrap.dedent(f"""
        done in {time.perf_counter() - t0:.0f} s.
          posterior:  {Path(args.out) / "posterior.safetensors"}
          report:     {Path(args.out) / "report.json"} (ESS per beta, losses, timings)
          metrics:    {Path(args.out) / "metrics.json"} (C2ST, MMD against reference samplers)
          figures:    {", ".join(str(p) for p in paths)}
        sample from it:  gbi sample {args.out} --x "0.0,0.1" --beta 0.5 -n 1000 --out s.csv""")
    )
    return 0


# -- parser -------------------------------------------------------------------------------


def _parser_for(
    sub, name: str, help_text: str, func, threads: int | None = None
) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {EXAMPLES[name]}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=func)
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--threads",
        type=int,
        default=threads,
        metavar="N",
        help=f"CPU threads for torch and numba (default: {threads or 'every core'}). Where "
        "other work keeps cores busy, use at most the free ones: threads that wait on a busy "
        "core made a two_moons training epoch 60x slower (25 s against 0.4 s, 2 threads, 1 of "
        "2 cores busy)",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gbi",
        description="Amortized simulation-based inference in generalized Bayes: one network "
        "q(theta | x, beta) for every observation and every temperature beta.",
        epilog="examples:\n  " + "\n  ".join(EXAMPLES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="VERB")
    tasks = ", ".join(gbi_sims.list_tasks())

    p = _parser_for(sub, "simulate", "simulate a built-in task from its prior", cmd_simulate)
    p.add_argument("task", help=f"one of: {tasks}")
    p.add_argument("-n", type=int, required=True, help="number of simulations")
    p.add_argument("--out", required=True, help="output .npz (theta, x)")
    p.add_argument("--chunk-size", type=int, default=10_000, help="simulations per chunk")
    p.add_argument("--recording", help="hodgkin_huxley: an Allen cell id, or 'all'")

    p = _parser_for(sub, "train", "train an amortized power posterior", cmd_train)
    p.add_argument("task", help=f"one of: {tasks}")
    p.add_argument("--route", choices=ROUTES, default="b-nre", help="training route")
    p.add_argument("--simulations", type=int, default=10_000, help="base simulation budget")
    p.add_argument("--out", required=True, help="run directory (reused and resumed)")
    p.add_argument("--beta-min", type=float, default=0.1, help="smallest trained beta")
    p.add_argument("--beta-max", type=float, default=2.0, help="largest trained beta")
    p.add_argument("--max-epochs", type=int, help="epoch bound for every network")
    p.add_argument(
        "--patience",
        type=int,
        help="epochs without validation progress before a network stops (default 20; "
        "slow learners such as lorenz96 gain from 60)",
    )
    p.add_argument("--stabilization", choices=STABILIZATIONS, help="SNIS stabilization")
    p.add_argument("--flow", choices=("nsf", "nsf-ar", "mdn"), help="posterior density family")
    p.add_argument(
        "--embedding",
        choices=EMBEDDINGS,
        help="how the posterior network reads x (default auto: the task's stencil if it "
        "has one, e.g. lorenz96, else x itself)",
    )
    p.add_argument(
        "--x-tail-threshold",
        type=float,
        metavar="T",
        help="where the posterior network and the NRE start to compress x's heavy-tailed "
        "features (a simulator that sometimes blows up), in robust units of x (default 3); "
        "beyond it values are compressed logarithmically",
    )
    p.add_argument("--chunk-size", type=int, help="simulations per saved chunk")
    p.add_argument(
        "--nle-contrast",
        type=int,
        help="route b-nle: prior draws on which each x's evidence is estimated, turning "
        "likelihoods into ratios (default 1000; 0: raw likelihood weights, as in the paper)",
    )
    p.add_argument(
        "--pair-sampling",
        choices=PAIR_SAMPLINGS,
        help="route b: how the NPE's minibatches pick base pairs (default uniform; "
        "weights: in proportion to their SNIS weights, a less noisy gradient that was no "
        "better on the benchmark tasks)",
    )
    p.add_argument(
        "--beta-sampling",
        choices=BETA_SAMPLINGS,
        help="routes b and auto: where the NPE's minibatches draw beta (default ess: "
        "log-uniform on the range, tilted towards the temperatures the weighted pairs support; "
        "distribution: log-uniform, as in the paper; route a, and route auto where it takes "
        "Route A pairs, train on fixed betas and cannot tilt)",
    )
    p.add_argument(
        "--posterior-embedding",
        choices=POSTERIOR_EMBEDDINGS,
        help="routes b-nre and auto, where x is embedded (a stencil or mlp): surrogate "
        "(default: the NRE's trained x embedding, fixed; a faster training), surrogate-init "
        "(starts from the NRE's and trains on) or own (the posterior network learns its own)",
    )
    p.add_argument(
        "--pool-contrast",
        type=int,
        help="routes b-nre and b-nle: pair each x with this many other prior "
        "draws as well as its own theta, weighted by multiple importance sampling (default 0: "
        "matched pairs only). Helps small beta where the surrogate's ratios hold far from the "
        "data (slcp), hurts where an NRE's saturate (two_moons)",
    )
    p.add_argument(
        "--pool-relative-ess",
        type=float,
        metavar="R",
        help="with --pool-contrast: the pool serves the temperatures below the first at which "
        "the matched pairs' own weights reach this relative ESS, the matched pairs the rest "
        "(default 0.5; 0: the pool at every temperature)",
    )
    p.add_argument(
        "--pool-max-excess",
        type=float,
        metavar="D",
        help="the pool check: at the lowest beta the pool's prior draws may carry at most "
        "exp(D) times their due share of its weight (right ratios give them exactly their "
        "share; a surrogate whose ratios are too large far from the data, more). Route auto "
        "takes its --auto-fallback beyond it, routes b-nre and b-nle warn (default 2.0)",
    )
    p.add_argument(
        "--auto-pool",
        type=int,
        metavar="M",
        help="route auto: where the matched pairs' weights fail, train on the NRE's "
        "contrastive pool of M prior draws per x if it passes the pool check, else on "
        "--auto-fallback (default 2; 0: no pool tried)",
    )
    p.add_argument(
        "--auto-fallback",
        choices=AUTO_FALLBACKS,
        help="route auto, where the weights fail and no pool holds: weights (default: the "
        "failing weights all the same, as route b-nre trains; on two_moons at beta 0.1 they "
        "beat Route A pairs, C2ST 0.54 against 0.93) or a (Route A pairs, as in the paper)",
    )
    p.add_argument(
        "--ema-decay",
        type=_ema_decay,
        metavar="DECAY",
        help="the posterior network is validated and returned as a moving average of its "
        "weights with this decay per step (default 0.998; 'none': the raw weights)",
    )
    p.add_argument(
        "--per-temperature",
        action=argparse.BooleanOptionalAction,
        help="early stopping per temperature: each beta of the validation grid keeps the "
        "posterior network's weights of its own best epoch, and training runs until none "
        "improves (default: on for routes b-nre, b-nle and auto; route a, and route auto where "
        "it takes Route A pairs, cannot use it)",
    )
    p.add_argument(
        "--posterior-epochs",
        type=int,
        metavar="E",
        help="train the posterior network for E epochs with a step size falling along half "
        "a cosine (default: until its validation loss stops improving, at most --max-epochs)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="train the posterior network and the NLE or NRE through torch.compile: "
        "posterior epochs about 1.8x faster "
        "on a CPU after a one-time compilation of about a minute (cached for later runs); "
        "falls back to plain training with a warning where torch cannot compile",
    )
    p.add_argument(
        "--reuse",
        metavar="RUN_DIR",
        action="append",
        help="take over the simulations, surrogates and scores of another run directory "
        "whose settings differ only in the route or in those read after the surrogates: the "
        "posterior network's (--flow, --ema-decay, --per-temperature, --pair-sampling, "
        "--beta-sampling, --posterior-epochs) retrain that network alone; --pool-contrast, "
        "--nle-contrast, --stabilization and Route A's synthesis and auto settings also redo "
        "the scores or synthesized pairs they shape. No surrogate is trained again. Repeat "
        "it to reuse several runs: route auto takes route b-nre's NRE and route a's score "
        "model (--route auto --reuse RUN_B_NRE --reuse RUN_A)",
    )
    p.add_argument("--recording", help="hodgkin_huxley: an Allen cell id, or 'all'")

    p = _parser_for(sub, "sample", "sample a trained posterior at one beta", cmd_sample)
    p.add_argument("run_dir", help="run directory of `gbi train`")
    p.add_argument("--x", help='one observation, comma-separated: "v1,v2,..."')
    p.add_argument("--x-file", help=".npy, .csv or .txt with one observation per row")
    p.add_argument("--beta", type=float, required=True, help="temperature")
    p.add_argument("-n", type=int, default=1000, help="samples per observation")
    p.add_argument("--out", required=True, help="samples.npy or samples.csv")
    p.add_argument("--extrapolate", action="store_true", help="allow beta outside the range")

    p = _parser_for(sub, "evaluate", "C2ST and MMD against reference samplers", cmd_evaluate)
    p.add_argument("run_dir", help="run directory of `gbi train`")
    p.add_argument("--betas", default="0.1,0.5,1.0,1.5", help="comma-separated temperatures")
    p.add_argument("--observations", default="0", help="comma-separated observation indices")
    p.add_argument("-n", type=int, default=2000, help="samples per (x, beta)")

    p = _parser_for(sub, "report", "write the run's figures", cmd_report)
    p.add_argument("run_dir", help="run directory of `gbi train`")
    p.add_argument("--observation", type=int, default=0, help="observation index to plot")
    p.add_argument("-n", type=int, default=2000, help="samples per panel")

    # two_moons' networks gain nothing from a second thread on an idle machine (0.42 s
    # per epoch either way, 2 cores), and one thread cannot wait on a busy core
    p = _parser_for(sub, "demo", "the built-in demo: two_moons, route b-nre", cmd_demo, threads=1)
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument("--simulations", type=int, default=10_000, help="simulation budget")
    p.add_argument(
        "--max-epochs",
        type=int,
        help="epoch bound of the ratio estimator (default 500; early stopping ends it sooner)",
    )
    p.add_argument(
        "--posterior-epochs",
        type=int,
        default=150,
        metavar="E",
        help="the posterior network's budget: E epochs on a cosine step size (default 150)",
    )
    p.add_argument("--n-eval", type=int, default=2000, help="samples per (x, beta) in evaluation")
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings on the command line: one line each, named, with no source location."""
    return f"gbi: {category.__name__}: {message}\n"


def _set_threads(threads: int) -> None:
    """``--threads``: torch's intra-op threads and numba's parallel threads."""
    if threads < 1:
        raise CLIError(f"--threads must be >= 1, got {threads}")
    import numba
    import torch

    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    formatter = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        if args.threads is not None:
            _set_threads(args.threads)
        return args.func(args)
    except CLIError as err:
        parser.exit(2, f"gbi {args.command}: error: {err}\n")
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"gbi {args.command}: error: {err}\n")
    except KeyboardInterrupt:
        parser.exit(130, f"gbi {args.command}: interrupted; rerun the same command to resume\n")
    finally:
        warnings.formatwarning = formatter
    return 0  # pragma: no cover


__all__ = ["build_parser", "main"]
