"""gbi-eval: reference power-posterior samplers, C2ST/MMD and calibration at every beta.

The target throughout is the power posterior of a box-uniform prior,
p_beta(theta | x) ∝ prior(theta) p(x | theta)^beta. See this package's README.md.

Example:
    >>> import numpy as np
    >>> import gbi_eval
    >>> loglik = lambda theta: -0.5 * np.sum(theta**2, axis=1)
    >>> result = gbi_eval.sample_rwmh(loglik, -5 * np.ones(2), 5 * np.ones(2), beta=0.5,
    ...                               n=1000, seed=0, n_chains=4, n_burnin=500, thin=5)
    >>> result.samples.shape, result.diagnostics.converged
    ((1000, 2), True)
"""

from __future__ import annotations

from gbi_eval.calibration import (
    CalibrationResult,
    check_calibration,
    plot_calibration,
    reference_pairs,
)
from gbi_eval.diagnostics import (
    ConvergenceWarning,
    MCMCDiagnostics,
    RejectionDiagnostics,
    SamplingResult,
    mcmc_diagnostics,
    rhat_and_ess,
)
from gbi_eval.mcmc import (
    RWMHInfo,
    RWMHState,
    reflect,
    resampled_starts,
    robbins_monro_update,
    rwmh_init,
    rwmh_step,
    sample_rwmh,
)
from gbi_eval.metrics import c2st, median_heuristic, mmd
from gbi_eval.references import (
    SUPPORTED_TASKS,
    BoxPrior,
    LikelihoodTask,
    gaussian_mixture_reference,
    lorenz96_reference,
    reference_posterior,
    slcp_reference,
    two_moons_reference,
)
from gbi_eval.rejection import (
    Envelope,
    TruncatedIsotropicGaussianMixture,
    UniformBox,
    rejection,
    rejection_sample,
)
from gbi_eval.tempering import (
    PTInfo,
    PTState,
    geometric_ladder,
    parallel_tempering,
    pt_init,
    pt_step,
    top_likelihood_starts,
)

__version__ = "0.1.0"
__all__ = [
    "SUPPORTED_TASKS",
    "BoxPrior",
    "CalibrationResult",
    "ConvergenceWarning",
    "Envelope",
    "LikelihoodTask",
    "MCMCDiagnostics",
    "PTInfo",
    "PTState",
    "RWMHInfo",
    "RWMHState",
    "RejectionDiagnostics",
    "SamplingResult",
    "TruncatedIsotropicGaussianMixture",
    "UniformBox",
    "__version__",
    "c2st",
    "check_calibration",
    "gaussian_mixture_reference",
    "geometric_ladder",
    "lorenz96_reference",
    "mcmc_diagnostics",
    "median_heuristic",
    "mmd",
    "parallel_tempering",
    "plot_calibration",
    "pt_init",
    "pt_step",
    "reference_pairs",
    "reference_posterior",
    "reflect",
    "rejection",
    "rejection_sample",
    "resampled_starts",
    "rhat_and_ess",
    "robbins_monro_update",
    "rwmh_init",
    "rwmh_step",
    "sample_rwmh",
    "slcp_reference",
    "top_likelihood_starts",
    "two_moons_reference",
]
