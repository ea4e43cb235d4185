"""Diagnostic: where route b-nle's matched-pair weights collapse, is it the NLE or the task?

Route b-nle scores each base pair by the NLE's likelihood over a contrastive
evidence (``gbi_surrogates.NLE.log_ratio``: the pair's own likelihood and
those of the first ``nle_contrast`` base parameters). For a finished b-nle run
directory of a task with a tractable likelihood, this computes the same
estimator with the exact likelihood, on the same pairs and contrasts, and
prints:

- the relative ESS of both score sets per beta, and their correlation (exact
  scores below the Markov bound ``-(log N + 3)`` are the likelihood's
  numerical failures and are dropped, as in ``diag_exact_weights``);
- quantiles of both;
- the pairs that carry the NLE weights at the lowest beta: their NLE and exact
  scores (if the NLE scores them far below the exact ratio, its error makes
  the collapse; if the exact scores are as low, the task does).

Usage: python benchmarks/diag_nle_tail.py RUN_DIR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from diag_exact_weights import _base_set, drop_below_markov_floor
from scipy.special import logsumexp

BETAS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0, 1.5, 2.0)


def exact_contrastive_scores(task, theta: np.ndarray, x: np.ndarray, contrasts: int) -> np.ndarray:
    """``log p(x_i | theta_i) - log((p(x_i | theta_i) + sum_j p(x_i | theta_j)) / (M + 1))``,
    ``j < M``: the NLE's evidence estimator with the exact likelihood, shape (n,)."""
    contrast = theta[:contrasts]
    own = task.log_likelihood(theta, x)
    scores = np.empty(theta.shape[0])
    for i in range(theta.shape[0]):
        terms = np.append(task.log_likelihood(contrast, x[i]), own[i])
        scores[i] = own[i] - (logsumexp(terms) - np.log(contrasts + 1))
    return scores


def main(argv: list[str] | None = None) -> int:
    import gbi_sims
    import gbi_tempering

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished route b-nle run directory")
    parser.add_argument("--top", type=int, default=10, help="pairs to list (default 10)")
    args = parser.parse_args(argv)
    config = json.loads((args.run / "config.json").read_text())
    config = config.get("config", config)
    if config["route"] != "b-nle":
        raise SystemExit(f"{args.run} is a route {config['route']} run, not b-nle")
    task = gbi_sims.get_task(config["problem"])
    if not task.has_likelihood:
        raise SystemExit(f"{task.name} has no tractable likelihood")
    theta, x = _base_set(args.run)
    nle = np.load(args.run / "scores_nle.npz")["scores"]
    if nle.shape[0] != theta.shape[0]:
        raise SystemExit(f"{nle.shape[0]} scores for {theta.shape[0]} finite base pairs")
    contrasts = min(int(config["nle_contrast"]), theta.shape[0])
    exact = drop_below_markov_floor(exact_contrastive_scores(task, theta, x, contrasts))
    both = np.isfinite(nle) & np.isfinite(exact)
    print(f"{task.name}: {theta.shape[0]} pairs, {contrasts} contrasts")
    print(f"correlation NLE / exact: {np.corrcoef(nle[both], exact[both])[0, 1]:.3f}")
    print("relative ESS per beta:", " ".join(f"{b:g}" for b in BETAS))
    for name, scores in (("nle", nle), ("exact", exact)):
        w = gbi_tempering.SNISWeights(scores, form="nre", beta_range=(min(BETAS), max(BETAS)))
        ess = w.diagnostics(np.array(BETAS)).relative_ess
        print(f"  {name}: " + " ".join(f"{e:.2g}" for e in ess))
        q = np.nanpercentile(scores, [0, 0.1, 1, 50, 99, 100])
        print(f"    min/0.1%/1%/median/99%/max: {np.round(q, 2).tolist()}")
    # the NLE weights r^(beta - 1) at the lowest beta, over its finite scores as the route's
    low = BETAS[0]
    share = np.exp(
        gbi_tempering.normalize_log_weights(np.where(np.isfinite(nle), (low - 1.0) * nle, -np.inf))
    )
    print(f"pairs carrying the NLE weights at beta {low:g} (share, NLE score, exact score):")
    for i in np.argsort(-share)[: args.top]:
        print(f"  {i:6d}  {share[i]:.3f}  {nle[i]:9.2f}  {exact[i]:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
