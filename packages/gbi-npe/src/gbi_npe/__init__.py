"""gbi-npe: beta-conditioned normalizing flows and mixture density networks.

One network q(theta | x, beta) for the power posteriors
p_beta(theta | x) ∝ prior(theta) p(x | theta)^beta, trained by weighted
maximum likelihood (globally normalized SNIS weights, paper §4.2), sampled in
one forward pass. See this package's README.md.

    npe = make_npe(theta_dim, x_dim, low=low, high=high)
    history = fit(npe, theta, x, LogUniformBeta(0.1, 2.0), log_weights_fn=lw_fn)
    posterior = Posterior(npe)
    samples = posterior.sample(1000, x_obs, beta=0.5, seed=0)
"""

from __future__ import annotations

from .beta import BetaDistribution, GridBeta, LogUniformBeta, TiltedBeta
from .compiling import CompileFallbackWarning
from .config import (
    DensityConfig,
    EmbeddingConfig,
    EstimatorSpec,
    MDNConfig,
    SplineFlowConfig,
    TrainConfig,
    stencil_layout,
)
from .estimator import (
    ConditionalDensityEstimator,
    build_estimator,
    make_conditional_estimator,
    make_npe,
)
from .io import (
    ModelFileError,
    load_estimator,
    read_header,
    read_model_file,
    save_estimator,
    write_model_file,
)
from .loop import History, SnapshotMismatch, resolve_device, train_loop
from .objective import LogWeightsFn, minibatch_loss, normalize_log_weights
from .posterior import ExtrapolationWarning, Posterior
from .stencil import StencilEmbedding, stencil_patches
from .train import fit, fit_conditional

__version__ = "0.1.0"
__all__ = [
    "BetaDistribution",
    "CompileFallbackWarning",
    "ConditionalDensityEstimator",
    "DensityConfig",
    "EmbeddingConfig",
    "EstimatorSpec",
    "ExtrapolationWarning",
    "GridBeta",
    "History",
    "LogUniformBeta",
    "LogWeightsFn",
    "MDNConfig",
    "ModelFileError",
    "Posterior",
    "SnapshotMismatch",
    "SplineFlowConfig",
    "StencilEmbedding",
    "TiltedBeta",
    "TrainConfig",
    "__version__",
    "build_estimator",
    "fit",
    "fit_conditional",
    "load_estimator",
    "make_conditional_estimator",
    "make_npe",
    "minibatch_loss",
    "normalize_log_weights",
    "read_header",
    "read_model_file",
    "resolve_device",
    "save_estimator",
    "stencil_layout",
    "stencil_patches",
    "train_loop",
    "write_model_file",
]
