"""Diagnostic: would a contrastive pool scored by a surrogate weight the right pairs?

The pool (``gbi.routes.contrastive_pool``) pairs each x with its own theta and
M other base parameters and weights row (theta, x) by ``r^beta / (r + M)``.
At small beta those weights rest on the log-ratio of pairs far from the data.
This script scores such a pool with a trained cell's surrogate (the NRE of a
``b-nre`` cell, or the NLE of a ``b-nle`` cell with its contrastive evidence
over ``--contrast`` prior draws) and with the exact ratio (evidence averaged
over every base parameter), and prints:

- quantiles of the partner rows' log-ratios, surrogate and exact;
- the pool's effective sample size per beta, in units of the number of x;
- the share of the beta = 0.1 weight on pairs whose exact log-ratio is below
  -20 (where ``r^0.1`` should be below e^-2 but a saturated surrogate gives
  more).

Usage: python benchmarks/diag_pool_tails.py --task two_moons --route b-nle [--x 1500]
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import RUNS_DIR, run_name
from diag_exact_weights import _base_set

BETAS = (0.1, 0.3, 0.5, 1.0, 1.5)


def main(argv: list[str] | None = None) -> int:
    import gbi_sims
    import gbi_surrogates
    import gbi_tempering

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, choices=gbi_sims.list_tasks())
    parser.add_argument("--route", choices=("b-nre", "b-nle"), default="b-nle")
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--x", type=int, default=1500, help="observations in the pool")
    parser.add_argument("--partners", type=int, default=10, help="M, prior draws per x")
    parser.add_argument("--contrast", type=int, default=1000, help="NLE evidence draws")
    args = parser.parse_args(argv)
    task = gbi_sims.get_task(args.task)
    if not task.has_likelihood:
        raise SystemExit(f"{args.task} has no tractable likelihood")
    cell = RUNS_DIR / run_name(args.task, args.route, args.simulations, args.seed)
    theta, x = _base_set(cell)
    n, m, total = min(args.x, theta.shape[0]), args.partners, theta.shape[0]
    rng = np.random.default_rng(args.seed)
    partners = (np.arange(n)[:, None] + rng.integers(1, total, size=(n, m))) % total
    theta_index = np.concatenate([np.arange(n)[:, None], partners], axis=1).ravel()
    x_index = np.repeat(np.arange(n), m + 1)

    if args.route == "b-nre":
        nre = gbi_surrogates.NRE.load(cell / "surrogate_nre.safetensors")
        surrogate = nre.log_ratio(theta[theta_index], x[x_index])
    else:
        nle = gbi_surrogates.NLE.load(cell / "surrogate_nle.safetensors")
        own = nle.log_likelihood(theta[:n], x[:n])
        log_evidence = own - nle.log_ratio(theta[:n], x[:n], theta[: args.contrast])
        surrogate = nle.log_likelihood(theta[theta_index], x[x_index]) - log_evidence[x_index]

    exact = np.empty(theta_index.shape[0])
    for i in range(n):
        ll = task.log_likelihood(theta, x[i])
        top = ll.max()
        rows = slice(i * (m + 1), (i + 1) * (m + 1))
        exact[rows] = ll[theta_index[rows]] - (top + np.log(np.mean(np.exp(ll - top))))
    finite_exact = np.where(np.isfinite(exact), exact, -1e4)  # -inf: outside the support

    def partner_quantiles(values):
        q = np.percentile(values.reshape(n, m + 1)[:, 1:], [5, 25, 50, 75, 95], method="nearest")
        return " ".join(f"{v:10.4g}" for v in q)

    print(f"{args.task} {args.route}: {n} x, {m} partners each")
    print(f"partner log-ratio quantiles 5/25/50/75/95, surrogate: {partner_quantiles(surrogate)}")
    print(f"partner log-ratio quantiles 5/25/50/75/95, exact:     {partner_quantiles(exact)}")
    tail = ~(exact > -20)
    partner = (np.arange(theta_index.shape[0]) % (m + 1)) != 0
    floor = -np.log(total)
    floored = np.where(partner & (surrogate < floor), -np.inf, surrogate)
    print(f"partners below -log N = {floor:.2f}: {np.mean(surrogate[partner] < floor):.3f}")
    for name, scores in (
        ("surrogate", surrogate),
        ("floored", floored),
        ("exact", finite_exact),
    ):
        weights = gbi_tempering.SNISWeights(
            scores, offsets=-np.logaddexp(scores, np.log(m)), form="pool"
        )
        ess = np.asarray(weights.diagnostics(BETAS, warn=False).ess) / n
        share = float(np.exp(weights.log_weights(0.1)[0])[tail[weights.kept]].sum())
        print(
            f"{name:9s} ESS / n at beta {BETAS}: {np.round(ess, 3)}; "
            f"beta = 0.1 weight on exact log r < -20: {share:.3f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
