"""torch's thread count survives numba's parallel code (simulations, reference samplers)."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import torch
import gbi
from gbi.evaluation import reference_samples
from gbi.problem import make_problem

assert torch.get_num_threads() == 1
problem = make_problem("two_moons")
base = gbi.simulate_base_set(problem, 2000, seed=0)
after_simulation = torch.get_num_threads()
reference_samples(problem.task, 0, 0.5, 200, 0, None)
print(after_simulation, torch.get_num_threads())
"""


def test_a_one_thread_torch_stays_one_thread_after_simulating():
    """numba's OpenMP layer sets the process's OpenMP thread count to its own
    when it first runs parallel code; torch (limited by OMP_NUM_THREADS only)
    would follow it to two threads here."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]
