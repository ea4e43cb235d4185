"""Diagnostic: the pool check (``gbi_tempering.pool_excess``) of a cell's NRE.

Route auto trains on the NRE's contrastive pool where the matched pairs'
weights fail, if the prior draws of the pool carry no more than
``exp(pool_max_excess)`` times their due share of its weight at the lowest
beta. This script prints that check, per beta, for the NRE of a benchmark
cell: the b-nre grid cell's run directory (the NRE is trained there, as the
cell would train it, when the folder has none yet), or ``--run FOLDER``.

Usage: python benchmarks/diag_pool_excess.py --task two_moons --simulations 10000
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from _common import RUNS_DIR, run_name


def _nre_and_base(folder: Path, task: str, simulations: int, seed: int, compile: bool):
    import gbi
    from gbi import routes
    from gbi.config import LEGACY_SETTINGS
    from gbi.rundir import RunDirectory, read_config
    from gbi.simulation import simulate_base_set

    if (folder / "config.json").is_file():
        stored = read_config(folder / "config.json")
        problem = gbi.make_problem(stored["problem"], **stored.get("task_options", {}))
        config = gbi.RunConfig.from_dict({**LEGACY_SETTINGS, **stored})
        config, embedding = gbi.api.resolve_config(config, problem)
        run = RunDirectory(folder, config.to_dict(), LEGACY_SETTINGS, config.unread_settings)
    else:
        problem = gbi.make_problem(task)
        config = gbi.RunConfig(
            problem=task, route="b-nre", simulations=simulations, seed=seed, compile=compile
        )
        config, embedding = gbi.api.resolve_config(config, problem)
        run = RunDirectory(folder, config.to_dict(), LEGACY_SETTINGS, config.unread_settings)
    base = simulate_base_set(
        problem, config.simulations, config.seed, run, chunk_size=config.chunk_size
    )
    nre, _ = routes.fit_surrogate("nre", base, config, run, False, print, embedding)
    return nre, base, config


def main(argv: list[str] | None = None) -> int:
    import gbi_sims
    from gbi import routes

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=gbi_sims.list_tasks())
    parser.add_argument("--simulations", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", type=Path, help="a run directory holding an NRE")
    parser.add_argument("--partners", type=int, default=2, help="M, prior draws per x")
    parser.add_argument("--compile", action="store_true", help="train the NRE compiled")
    args = parser.parse_args(argv)
    if args.run is None and args.task is None:
        parser.error("give --task (the b-nre grid cell) or --run")
    folder = args.run or RUNS_DIR / run_name(args.task, "b-nre", args.simulations, args.seed)
    nre, base, config = _nre_and_base(folder, args.task, args.simulations, args.seed, args.compile)
    config = dataclasses.replace(
        config, route="b-nre", pool_contrast=args.partners, pool_relative_ess=0.0
    )
    pool = routes.contrastive_pool(nre, base, config)
    e = pool.excess
    print(f"{folder.name}: pool of M = {args.partners}")
    print("beta   excess  std.err  partner ESS/N  own ESS/N")
    n = base.theta.shape[0]
    for b, x, se, pe, oe in zip(
        e.beta, e.excess, e.standard_error, e.partner_ess, e.own_ess, strict=True
    ):
        print(f"{b:4.2f} {x:8.3f} {se:8.3f} {pe / (n * args.partners):14.4f} {oe / n:10.4f}")
    print(routes.excess_summary(e))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
