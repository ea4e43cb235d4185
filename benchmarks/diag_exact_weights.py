"""Diagnostic: Route B with exact likelihood-to-evidence ratios instead of a surrogate's.

For a task with a tractable likelihood, computes for every base pair of a
trained cell the exact ``log p(x_i | theta_i) - log p^(x_i)``, with the
evidence ``p^(x_i) = mean_j p(x_i | theta_j)`` over all base parameters (prior
draws), and writes them as the cached scores of a tagged copy of the cell
(``<cell>_exact-weights``), so that

    nox -s bench -- accuracy --task T --route b-nre --simulations N --tag exact-weights

trains the beta-conditioned NPE on exact weights. Comparing that cell with
the plain one separates the surrogate's error from the NPE's. Also prints the
relative ESS per beta of both score sets and their correlation.

Usage: python benchmarks/diag_exact_weights.py --task lorenz96 [--simulations 10000]
"""

from __future__ import annotations

import argparse
import shutil
import sys

import numpy as np
from _common import RUNS_DIR, run_name

TAG = "exact-weights"
BETAS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0, 1.1, 1.3, 1.5, 2.0)


def _base_set(cell):
    chunks = sorted((cell / "simulations").glob("chunk_*.npz"))
    if not chunks:
        raise SystemExit(f"{cell} has no simulations: run the plain cell first")
    data = [np.load(c) for c in chunks]
    theta = np.concatenate([d["theta"] for d in data])
    x = np.concatenate([d["x"] for d in data])
    finite = np.all(np.isfinite(x), axis=1)
    return theta[finite], x[finite]


def exact_scores(task, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``log p(x_i | theta_i) - log mean_j p(x_i | theta_j)`` for every pair, (n,).

    Exact log-ratios are rarely very negative: ``E_joint[1 / r] = 1``, so by
    Markov's inequality ``P(log r < -t) <= exp(-t)``, and among n pairs about
    none lies below ``-(log n + 3)``. A score below that is a numerical failure
    of the likelihood (lorenz96: a path that blew up to 1e180, whose float64
    residuals are meaningless) and is returned as NaN, so the weights drop it.
    """
    n = theta.shape[0]
    scores = np.empty(n)
    for i in range(n):
        ll = task.log_likelihood(theta, x[i])
        top = ll.max()
        scores[i] = ll[i] - (top + np.log(np.mean(np.exp(ll - top))))
    return drop_below_markov_floor(scores)


def drop_below_markov_floor(scores: np.ndarray) -> np.ndarray:
    """The exact scores with those below ``-(log n + 3)`` set to NaN (see ``exact_scores``)."""
    n = scores.shape[0]
    floor = -(np.log(n) + 3.0)
    failed = scores < floor
    print(f"{int(failed.sum())} of {n} exact scores below -(log n + 3) = {floor:.1f}: dropped")
    scores = scores.copy()
    scores[failed] = np.nan
    return scores


def main(argv: list[str] | None = None) -> int:
    import gbi
    import gbi_sims
    import gbi_tempering

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=gbi_sims.list_tasks())
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    task = gbi_sims.get_task(args.task)
    if not task.has_likelihood:
        raise SystemExit(f"{args.task} has no tractable likelihood")
    cell = RUNS_DIR / run_name(args.task, "b-nre", args.simulations, args.seed)
    theta, x = _base_set(cell)
    exact = exact_scores(task, theta, x)
    config = gbi.RunConfig(problem=args.task)
    rows = {"exact": exact}
    stored = cell.parent / (cell.name + "_pairs") / "scores_nre.npz"  # the NRE's, if cached
    stored = stored if stored.is_file() else cell / "scores_nre.npz"
    if stored.is_file():
        rows["nre"] = np.load(stored)["scores"]
        both = np.isfinite(exact) & np.isfinite(rows["nre"])
        r = np.corrcoef(exact[both], rows["nre"][both])[0, 1]
        print(f"correlation exact/nre: {r:.3f}")
    print("relative ESS per beta:", " ".join(f"{b:g}" for b in BETAS))
    for name, scores in rows.items():
        weights = gbi_tempering.SNISWeights(
            scores, form="nre", method=config.stabilization, beta_range=config.beta_range
        )
        ess = weights.diagnostics(np.array(BETAS)).relative_ess
        print(f"  {name}: " + " ".join(f"{e:.3f}" for e in ess))
        q = np.nanpercentile(scores, [0, 1, 50, 99, 100])
        print(f"    scores min/1%/median/99%/max: {np.round(q, 2).tolist()}")
    target = RUNS_DIR / (cell.name + f"_{TAG}")
    target.mkdir(exist_ok=True)
    for name in ("surrogate_nre.json", "surrogate_nre.safetensors"):
        shutil.copy2(cell / name, target / name)
    if not (target / "simulations").is_dir():
        shutil.copytree(cell / "simulations", target / "simulations")
    np.savez(target / "scores_nre.npz", scores=exact, form=np.array("nre"))
    print(f"wrote {target / 'scores_nre.npz'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
