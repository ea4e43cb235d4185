"""Every name gbi-surrogates takes from gbi-npe, in one place.

gbi-surrogates builds on gbi-npe's building blocks (configs, input checks,
standardization, the training loop, the History, device selection, the model
file format) instead of writing them twice. A few of those are private in
gbi-npe (marked "private" below; asked to be made public); they are imported
here only, so a rename on their side is a one-line change on ours.
"""

from __future__ import annotations

from gbi_npe import (
    ConditionalDensityEstimator,
    DensityConfig,
    EmbeddingConfig,
    EstimatorSpec,
    History,
    MDNConfig,
    ModelFileError,
    SplineFlowConfig,
    TrainConfig,
    fit_conditional,
    load_estimator,
    make_conditional_estimator,
    read_header,
    read_model_file,
    resolve_device,
    save_estimator,
    train_loop,
    write_model_file,
)
from gbi_npe._validation import as_matrix  # private: finite (n, d) float64 check
from gbi_npe.compiling import maybe_compiled  # public module, not in gbi_npe's namespace
from gbi_npe.config import _check_float as check_float  # private
from gbi_npe.config import _check_int as check_int  # private
from gbi_npe.config import density_config_from_dict
from gbi_npe.context import make_embedding
from gbi_npe.loop import _check_snapshot_args as check_snapshot_args  # private
from gbi_npe.loop import _fingerprint as snapshot_fingerprint  # private
from gbi_npe.loop import _load_snapshot as load_snapshot  # private: checked snapshot read
from gbi_npe.loop import _save_snapshot as save_snapshot  # private: atomic snapshot write
from gbi_npe.train import _digest as data_digest  # private: hash of training data
from gbi_npe.train import _split as split_indices  # private: train / validation split
from gbi_npe.transforms import (
    Standardize,
    feature_stats,
    shared_feature_stats,
    standardization_stats,
)

__all__ = [
    "ConditionalDensityEstimator",
    "DensityConfig",
    "EmbeddingConfig",
    "EstimatorSpec",
    "History",
    "MDNConfig",
    "ModelFileError",
    "SplineFlowConfig",
    "Standardize",
    "TrainConfig",
    "as_matrix",
    "check_float",
    "check_int",
    "check_snapshot_args",
    "data_digest",
    "density_config_from_dict",
    "feature_stats",
    "fit_conditional",
    "load_estimator",
    "load_snapshot",
    "make_conditional_estimator",
    "make_embedding",
    "maybe_compiled",
    "read_header",
    "read_model_file",
    "resolve_device",
    "save_estimator",
    "save_snapshot",
    "shared_feature_stats",
    "snapshot_fingerprint",
    "split_indices",
    "standardization_stats",
    "train_loop",
    "write_model_file",
]
