"""Diagnostic: does an NRE read a lorenz96 observation as its exact likelihood does?

For each observation, draws theta from the accuracy benchmark's cached
reference at beta = 1 and compares the NRE's log-ratio log r(theta, x_obs)
with the exact log-likelihood log p(x_obs | theta) (``task.log_likelihood``)
over those draws: their correlation and the slope of one on the other (1 and 1
for a perfect NRE, since the two differ by a constant in theta). Where the
posterior is poorly estimated for one observation only, this tells whether the
surrogate already misreads that x.

With ``--tail T`` it first trains an NRE of the grid cell's configuration on
the cell's own simulations with the heavy-tail threshold of x's
standardization set to T robust units (``gbi_npe.transforms.TAIL_THRESHOLD``,
3 in the library: lorenz96's x is heavy-tailed, and values beyond it are
compressed logarithmically), so that the compression's share in a misreading
can be measured. The trained NRE is saved under ``_work/diag_tail/``.

Usage: python benchmarks/diag_tail.py [--cell lorenz96_b-nre_10000_s0] [--tail 50]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import RUNS_DIR, WORK_DIR
from bench_accuracy import reference_draws

OBSERVATIONS = (0, 1, 2, 3, 4)
DRAWS = 2000  # the accuracy benchmark's draws per side (its cached references)


def train_nre(cell: str, tail: float):
    """An NRE as the cell's, on its simulations, with x's tail threshold ``tail``."""
    import gbi
    import gbi_npe.transforms
    from gbi import routes
    from gbi.rundir import read_config
    from gbi.simulation import BaseSet

    folder = RUNS_DIR / cell
    stored = read_config(folder / "config.json")
    config = gbi.RunConfig.from_dict(stored)
    chunks = sorted((folder / "simulations").glob("chunk_*.npz"))
    theta = np.concatenate([np.load(c)["theta"] for c in chunks])
    x = np.concatenate([np.load(c)["x"] for c in chunks])
    base = BaseSet(theta, x, theta.shape[0], 0, 0, 0.0)
    problem = gbi.make_problem(stored["problem"])
    _, embedding = gbi.api.resolve_config(config, problem)
    gbi_npe.transforms.TAIL_THRESHOLD = tail  # read by feature_stats at fit time
    model, info = routes.fit_surrogate("nre", base, config, None, True, print, embedding)
    out = WORK_DIR / "diag_tail" / f"{cell}_tail{tail:g}.safetensors"
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    print(f"trained in {info['seconds']:.0f} s; saved {out}")
    return model


def main(argv: list[str] | None = None) -> int:
    import gbi_sims
    import gbi_surrogates

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", default="lorenz96_b-nre_10000_s0")
    parser.add_argument("--tail", type=float, default=None, help="train an NRE with this threshold")
    args = parser.parse_args(argv)
    task = gbi_sims.get_task("lorenz96")
    if args.tail is None:
        nre = gbi_surrogates.load_surrogate(RUNS_DIR / args.cell / "surrogate_nre.safetensors")
        what = f"{args.cell}'s NRE"
    else:
        nre = train_nre(args.cell, args.tail)
        what = f"an NRE on {args.cell}'s simulations, tail threshold {args.tail:g}"
    print(f"{what}: over the beta = 1 reference draws, NRE log-ratio against exact log-lik")
    for obs in OBSERVATIONS:
        observation = task.observation(obs)
        theta, _ = reference_draws(task, obs, 1.0, DRAWS)
        exact = task.log_likelihood(theta, observation.x)
        ratio = nre.log_ratio(theta, np.repeat(observation.x[None], theta.shape[0], axis=0))
        corr = np.corrcoef(exact, ratio)[0, 1]
        slope = np.polyfit(exact - exact.mean(), ratio - ratio.mean(), 1)[0]
        scale = nre.network.standardize.x
        u = (observation.x - float(scale.shift[0])) / float(scale.scale[0])
        print(
            f"  observation {obs}: corr {corr:.3f}, slope {slope:.3f}; max |x| "
            f"{np.abs(observation.x).max():.0f}, share of x past the tail "
            f"{np.mean(np.abs(u) > float(scale.tail[0])):.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
