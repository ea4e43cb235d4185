"""The ``gbi`` command line (placeholder until the composition package lands)."""

from __future__ import annotations

import argparse
import sys

import numpy as np

import gbi_sims


def _demo(args: argparse.Namespace) -> int:
    task = gbi_sims.get_task("two_moons")
    obs = task.observation(0)
    theta = task.prior.sample(args.simulations, seed=args.seed)
    x = task.simulate(theta, seed=args.seed + 1)
    print(
        "gbi demo (placeholder): the amortized training route is not built yet.\n"
        f"Simulated {x.shape[0]} two_moons pairs; x mean {np.round(x.mean(0), 4)}, "
        f"x std {np.round(x.std(0), 4)}.\n"
        f"Observation 0: theta {obs.theta}, x {obs.x}, "
        f"log p(x_obs | theta_true) = {task.log_likelihood(obs.theta[None], obs.x)[0]:.3f}."
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gbi",
        description="Amortized simulation-based inference in generalized Bayes.",
        epilog="Example: gbi demo",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the built-in demo", epilog="Example: gbi demo --seed 1")
    demo.add_argument("--simulations", type=int, default=10_000, help="number of simulations")
    demo.add_argument("--seed", type=int, default=0, help="random seed")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "simulations", 1) <= 0:
        print("gbi: error: --simulations must be positive", file=sys.stderr)
        return 2
    return args.func(args)
