"""gbi-surrogates: neural likelihood, ratio and joint score surrogates (torch + normflows).

The ingredients of the paper's two training routes (§4, App. A):

- ``fit_nle`` -> ``NLE``: a conditional flow p̂(x | theta) on gbi-npe's
  estimators; ``log_likelihood(theta, x)`` gives the NLE-form SNIS scores.
- ``fit_nre`` -> ``NRE``: a classifier whose logit ``log_ratio(theta, x)``
  estimates log p(x | theta) / p(x) (NRE-A, or the contrastive NRE-B).
- ``fit_score`` -> ``JointScoreModel``: a noise-conditional joint score
  ``score(theta, x, sigma)`` for ``gbi_tempering.synthesize`` (Route A).

Numpy arrays in and out; each model saves to safetensors with a JSON header
(``model.save(path)``, ``load_surrogate(path)``); training uses gbi-npe's
``TrainConfig`` and returns its ``History``.
"""

from __future__ import annotations

from gbi_surrogates._from_npe import History, ModelFileError, TrainConfig
from gbi_surrogates.config import NLEConfig, NREConfig, ScoreConfig
from gbi_surrogates.io import load_surrogate, surrogate_kind
from gbi_surrogates.nle import NLE, EvidenceProgress, fit_nle
from gbi_surrogates.nre import NRE, fit_nre
from gbi_surrogates.score import JointScoreModel, fit_score

__version__ = "0.1.0"
__all__ = [
    "NLE",
    "NRE",
    "EvidenceProgress",
    "History",
    "JointScoreModel",
    "ModelFileError",
    "NLEConfig",
    "NREConfig",
    "ScoreConfig",
    "TrainConfig",
    "__version__",
    "fit_nle",
    "fit_nre",
    "fit_score",
    "load_surrogate",
    "surrogate_kind",
]
