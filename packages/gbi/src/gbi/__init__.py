"""gbi: amortized simulation-based inference in generalized Bayes.

One network q(theta | x, beta) for the power posteriors
p_beta(theta | x) ∝ prior(theta) p(x | theta)^beta of every observation and
every temperature in a range, trained once (Routes A and B of Sun, Nicholls &
Lee 2026, plus an automatic mix of both), sampled in one forward pass.

Example:
    >>> import gbi
    >>> result = gbi.train("two_moons", route="b-nre", simulations=10_000,
    ...                    out="runs/tm")  # doctest: +SKIP
    >>> result.posterior.sample(1000, [0.0, 0.1], beta=0.5, seed=0).shape  # doctest: +SKIP
    (1000, 2)
"""

from __future__ import annotations

from gbi.api import TrainingResult, train
from gbi.config import ROUTES, RunConfig
from gbi.evaluation import evaluate, open_run
from gbi.problem import Problem, make_problem
from gbi.report import make_report
from gbi.rundir import RunConfigMismatch, RunDirectory
from gbi.simulation import BaseSet, simulate_base_set

__version__ = "0.1.0"
__all__ = [
    "ROUTES",
    "BaseSet",
    "Problem",
    "RunConfig",
    "RunConfigMismatch",
    "RunDirectory",
    "TrainingResult",
    "__version__",
    "evaluate",
    "make_problem",
    "make_report",
    "open_run",
    "simulate_base_set",
    "train",
]
