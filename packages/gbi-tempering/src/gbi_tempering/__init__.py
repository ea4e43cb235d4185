"""gbi-tempering: SNIS weights across temperatures, and Langevin synthesis (numpy).

Example:
    >>> import numpy as np
    >>> from gbi_tempering import SNISWeights
    >>> scores = np.random.default_rng(0).normal(size=1000)   # log-likelihoods
    >>> weights = SNISWeights(scores, beta_range=(0.1, 2.0))
    >>> diag = weights.diagnostics([0.5, 1.0, 1.5])
    >>> round(float(diag.ess[1]))                              # beta = 1: uniform
    1000
"""

from __future__ import annotations

from gbi_tempering import langevin
from gbi_tempering.balance import LowRatios, PoolExcess, low_ratios, pool_excess
from gbi_tempering.ess import ess, normalize_log_weights, relative_ess
from gbi_tempering.langevin import LangevinDiagnostics, LangevinInfo, LangevinState, synthesize
from gbi_tempering.stabilize import METHODS, Stabilized, stabilize
from gbi_tempering.weights import (
    MIN_RELATIVE_ESS,
    ESSCollapseWarning,
    SNISWeights,
    SwitchedWeights,
    WeightDiagnostics,
)

__version__ = "0.1.0"
__all__ = [
    "METHODS",
    "MIN_RELATIVE_ESS",
    "ESSCollapseWarning",
    "LangevinDiagnostics",
    "LangevinInfo",
    "LangevinState",
    "LowRatios",
    "PoolExcess",
    "SNISWeights",
    "Stabilized",
    "SwitchedWeights",
    "WeightDiagnostics",
    "__version__",
    "ess",
    "langevin",
    "low_ratios",
    "normalize_log_weights",
    "pool_excess",
    "relative_ess",
    "stabilize",
    "synthesize",
]
