"""Loading any surrogate from its file, whatever its kind.

Files: an ``NRE`` or ``JointScoreModel`` is a safetensors file with a
``gbi-surrogates`` JSON header (``gbi_surrogates._io``); an ``NLE`` is a
gbi-npe estimator file whose header metadata carries the surrogate facts. In
both cases nothing is unpickled and no code runs on load, and a truncated,
corrupted or edited file raises ``ModelFileError`` (a ``ValueError``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from gbi_surrogates._io import file_kind
from gbi_surrogates.nle import NLE
from gbi_surrogates.nre import NRE
from gbi_surrogates.score import JointScoreModel

_CLASSES = {"nle": NLE, "nre": NRE, "score": JointScoreModel}


def surrogate_kind(path: str | Path) -> str:
    """``"nle"``, ``"nre"`` or ``"score"``: what the file at ``path`` holds.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: not a surrogate model file.
    """
    return file_kind(path)


def load_surrogate(
    path: str | Path, *, device: str | torch.device = "cpu"
) -> NLE | NRE | JointScoreModel:
    """Load whichever surrogate ``path`` holds (``NLE.load``, ``NRE.load`` or
    ``JointScoreModel.load``).

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: unreadable, truncated, tampered with, or not a surrogate.
    """
    return _CLASSES[file_kind(path)].load(path, device=device)
