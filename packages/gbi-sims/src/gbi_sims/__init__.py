"""gbi-sims: simulators, box priors and exact likelihoods (numpy + numba).

Example:
    >>> import gbi_sims
    >>> task = gbi_sims.get_task("two_moons")
    >>> theta = task.prior.sample(5, seed=0)
    >>> task.simulate(theta, seed=1).shape
    (5, 2)
"""

from __future__ import annotations

from gbi_sims import gaussian_mixture as _gaussian_mixture  # noqa: F401  (registers the task)
from gbi_sims import hodgkin_huxley as _hodgkin_huxley  # noqa: F401  (registers the task)
from gbi_sims import lorenz96 as _lorenz96  # noqa: F401  (registers the task)
from gbi_sims import slcp as _slcp  # noqa: F401  (registers the task)
from gbi_sims import two_moons as _two_moons  # noqa: F401  (registers the task)
from gbi_sims._registry import get_task, list_tasks, register_task
from gbi_sims._rng import make_key
from gbi_sims._task import Observation, SimulationWarning, Task, count_failed
from gbi_sims.distributed import simulate_distributed
from gbi_sims.prior import BoxUniform

__version__ = "0.1.0"
__all__ = [
    "BoxUniform",
    "Observation",
    "SimulationWarning",
    "Task",
    "__version__",
    "count_failed",
    "get_task",
    "list_tasks",
    "make_key",
    "register_task",
    "simulate_distributed",
]
