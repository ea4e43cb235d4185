"""Diagnostic: is a cell's error variance (an ensemble would help) or bias?

Draws q(theta | x_obs, beta) from the posteriors of trained cells (run
directories under ``benchmarks/_work/runs``) and from their equal mixture (each
draw from one cell picked at random: an ensemble of the cells), and prints per
beta the median C2ST over observations 0-2 against the cached reference draws
of the accuracy benchmark. Where the cells' errors are independent (variance of
training), the mixture beats each cell; where they share a direction (bias), it
lands between them. Then, for the first cell, each parameter's spread and mean
against the reference's: std(q) / std(ref) and (mean(q) - mean(ref)) / std(ref)
per observation, at the smallest, middle and largest beta.

Usage: python benchmarks/diag_mixture.py --task lorenz96 CELL [CELL ...]
(e.g. lorenz96_b-nre_10000_s0 lorenz96_b-nle_10000_s0)
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import RUNS_DIR
from bench_accuracy import reference_draws

BETAS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0, 1.1, 1.3, 1.5)
OBSERVATIONS = (0, 1, 2)
DRAWS = 2000  # the accuracy benchmark's draws per side (its cached references)


def main(argv: list[str] | None = None) -> int:
    import gbi_eval
    import gbi_npe
    import gbi_sims

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=gbi_sims.list_tasks())
    parser.add_argument("cells", nargs="+", help="run directory names under _work/runs")
    args = parser.parse_args(argv)
    task = gbi_sims.get_task(args.task)
    posteriors = []
    for cell in args.cells:
        path = RUNS_DIR / cell / "posterior.safetensors"
        if not path.is_file():
            raise SystemExit(f"{path} does not exist: train the cell first")
        posteriors.append(gbi_npe.Posterior.load(path))

    print(f"median C2ST over observations {OBSERVATIONS}: {', '.join(args.cells)}, mixture")
    for beta in BETAS:
        scores = np.empty((len(OBSERVATIONS), len(posteriors) + 1))
        for row, obs in enumerate(OBSERVATIONS):
            x = task.observation(obs).x
            ref, _ = reference_draws(task, obs, beta, DRAWS)
            draws = np.stack(
                [p.sample(DRAWS, x, beta=beta, seed=1000 + obs) for p in posteriors]
            ).astype(np.float64)
            pick = np.random.default_rng(obs).integers(len(posteriors), size=DRAWS)
            mixture = draws[pick, np.arange(DRAWS)]
            for k, q in enumerate([*draws, mixture]):
                scores[row, k] = gbi_eval.c2st(ref, q, seed=obs)
        print(f"beta {beta:g}: " + " ".join(f"{v:.3f}" for v in np.median(scores, axis=0)))

    print(f"{args.cells[0]}: std(q) / std(ref) and mean shift / std(ref) per parameter")
    for beta in (BETAS[0], 1.0, BETAS[-1]):
        for obs in OBSERVATIONS:
            x = task.observation(obs).x
            ref, _ = reference_draws(task, obs, beta, DRAWS)
            q = np.asarray(posteriors[0].sample(DRAWS, x, beta=beta, seed=1), dtype=np.float64)
            spread = q.std(axis=0) / ref.std(axis=0)
            shift = (q.mean(axis=0) - ref.mean(axis=0)) / ref.std(axis=0)
            print(
                f"beta {beta:g} obs {obs}: std ratio {np.round(spread, 2)}, "
                f"mean shift {np.round(shift, 2)}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
