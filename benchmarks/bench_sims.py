"""Simulator speed and memory: Numba kernels against plain numpy, in one run.

Each measurement runs in a fresh subprocess (warm-up batch first, so Numba's
compile time and cache load are excluded), reports simulations per second and
the subprocess's peak resident memory. The numpy baselines are
``benchmarks/numpy_sims.py`` and ``benchmarks/numpy_hh.py`` (vectorized over
the batch). Targets are the issue's, on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (label, task, task options, numba batch, numpy batch, target sims/s or None)
CASES = [
    ("two_moons", "two_moons", {}, 2_000_000, 2_000_000, 5e6),
    ("gaussian_mixture", "gaussian_mixture", {}, 2_000_000, 2_000_000, 5e6),
    ("slcp", "slcp", {}, 2_000_000, 1_000_000, 5e6),
    ("lorenz96", "lorenz96", {}, 200_000, 100_000, 1e5),
    ("hodgkin_huxley (synthetic, 120 ms)", "hodgkin_huxley", {}, 2_000, 500, 300.0),
    (
        "hodgkin_huxley (Allen 518290966, 1450 ms)",
        "hodgkin_huxley",
        {"recording": 518290966},
        600,
        60,
        10_000 / 300.0,  # 10k simulations in under 5 minutes
    ),
]

_SCRIPT = r"""
import json, resource, sys, time
sys.path.insert(0, {here!r})
import numpy as np
import gbi_sims
task = gbi_sims.get_task({task!r}, **{options!r})
impl, n = {impl!r}, {n}
theta = task.prior.sample(n, seed=0)
if impl == "numba":
    run = lambda th: task.simulate(th, seed=1)
elif task.name == "hodgkin_huxley":
    from numpy_hh import simulate_numpy_hh
    run = lambda th: simulate_numpy_hh(th, task.protocol, seed=1)
else:
    from numpy_sims import simulate_numpy
    run = lambda th: simulate_numpy(task.name, th, seed=1)
run(theta[: max(1, min(n, 64))])
best = float("inf")
for _ in range({repeats}):
    t0 = time.perf_counter(); run(theta); best = min(best, time.perf_counter() - t0)
print(json.dumps({{"rate": n / best, "seconds": best,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def _measure(task: str, options: dict, impl: str, n: int, repeats: int) -> dict:
    script = _SCRIPT.format(
        here=str(HERE), task=task, options=options, impl=impl, n=n, repeats=repeats
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best kept)")
    parser.add_argument("--quick", action="store_true", help="10x smaller batches")


def run(args: argparse.Namespace) -> dict:
    rows = []
    for label, task, options, n_numba, n_numpy, target in CASES:
        scale = 10 if args.quick else 1
        numba_n, numpy_n = max(10, n_numba // scale), max(10, n_numpy // scale)
        print(f"   {label}: numba x{numba_n}, numpy x{numpy_n}", flush=True)
        fast = _measure(task, options, "numba", numba_n, args.repeats)
        slow = _measure(task, options, "numpy", numpy_n, 1 if numpy_n < 1000 else args.repeats)
        rows.append(
            {
                "case": label,
                "numba_rate": fast["rate"],
                "numba_peak_rss_mb": fast["peak_rss_mb"],
                "numba_batch": numba_n,
                "numpy_rate": slow["rate"],
                "numpy_peak_rss_mb": slow["peak_rss_mb"],
                "numpy_batch": numpy_n,
                "speedup": fast["rate"] / slow["rate"],
                "target_rate": target,
                "meets_target": fast["rate"] >= target,
            }
        )
    return {"rows": rows}


def to_markdown(record: dict) -> str:
    lines = [
        "Simulations per second (best of repeats, after warm-up) and the peak resident",
        "memory of the measuring process, Numba kernels against the plain numpy",
        "baselines (anchor) in the same run. HH Allen target: 10k simulations in 5 min.",
        "",
        "| task | numba sims/s | numpy sims/s | ratio | numba peak MB (batch) "
        "| numpy peak MB (batch) | target sims/s | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in record["rows"]:
        lines.append(
            f"| {r['case']} | {r['numba_rate']:.3g} | {r['numpy_rate']:.3g} | "
            f"{r['speedup']:.1f}x | {r['numba_peak_rss_mb']:.0f} ({r['numba_batch']}) | "
            f"{r['numpy_peak_rss_mb']:.0f} ({r['numpy_batch']}) | {r['target_rate']:.3g} | "
            f"{'yes' if r['meets_target'] else 'NO'} |"
        )
    return "\n".join(lines)
