"""Model files of the surrogates: gbi-npe's safetensors + JSON header format.

An ``NRE`` or ``JointScoreModel`` file is written by gbi-npe's
``write_model_file``: the tensors are the network's ``state_dict``
(bit-exact) and the JSON header (format ``"gbi-surrogates"``, with a SHA-256
over header and tensors) holds the model kind (``"nre"`` or ``"score"``), its
config, the dimensions, the standardization and free user ``metadata``. A
truncated, corrupted or edited file is refused with gbi-npe's
``ModelFileError`` (a ``ValueError``). No code runs on load: the network is
rebuilt from the header, then the tensors are loaded into it.

An ``NLE`` is a gbi-npe estimator and is saved by ``gbi_npe.save_estimator``
itself (format ``"gbi-npe"``), with its surrogate facts under the
``gbi_surrogates`` key of the header's metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gbi_surrogates._from_npe import (
    ModelFileError,
    read_header,
    read_model_file,
    write_model_file,
)

FORMAT = "gbi-surrogates"
FORMAT_VERSION = 1
KINDS = ("nle", "nre", "score")


def base_header(kind: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Fields every surrogate header starts with."""
    from gbi_surrogates import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "gbi_surrogates_version": __version__,
        "torch_version": torch.__version__,
        "metadata": dict(metadata or {}),
    }


def write_module(path: str | Path, header: dict[str, Any], module: torch.nn.Module) -> Path:
    """Write ``module``'s weights and ``header`` to ``path`` (gbi-npe's ``write_model_file``).

    Raises:
        ValueError: the header (user metadata) is not JSON-serializable.
    """
    return write_model_file(path, module.state_dict(), header)


def read_module_file(path: str | Path, kind: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The verified header and tensors of a ``kind`` model file.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: unreadable, truncated, tampered with, another format,
            another kind or an unknown format version.
    """
    header, tensors = read_model_file(path, format=FORMAT, version=FORMAT_VERSION)
    if header.get("kind") != kind:
        raise ModelFileError(
            f"{path} holds a {header.get('kind')!r} model, not {kind!r}; use load_surrogate "
            "to load any kind"
        )
    return header, tensors


def check_version(path: str | Path, version: Any) -> None:
    """Refuse a surrogate format version this package does not read (NLE headers)."""
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ModelFileError(
            f"{path}: {FORMAT} format version {version!r}; this gbi-surrogates reads version "
            f"{FORMAT_VERSION}" + (" (the file is newer: upgrade gbi-surrogates)" if newer else "")
        )


def file_kind(path: str | Path) -> str:
    """``"nle"``, ``"nre"`` or ``"score"``: the kind of surrogate stored at ``path``.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: not a surrogate model file.
    """
    try:
        kind = read_model_file(path, format=FORMAT, version=FORMAT_VERSION)[0].get("kind")
    except ModelFileError as surrogate_error:
        try:
            header = read_header(path)  # an NLE is a gbi-npe estimator file
        except ModelFileError:
            raise surrogate_error from None
        surrogate = header.get("metadata", {}).get("gbi_surrogates")
        if not isinstance(surrogate, dict):
            raise ModelFileError(
                f"{path} is a plain gbi-npe estimator, not a surrogate (load it with "
                "gbi_npe.load_estimator)"
            ) from None
        kind = surrogate.get("kind")
    if kind not in KINDS:
        raise ModelFileError(f"{path}: unknown surrogate kind {kind!r}; expected one of {KINDS}")
    return kind


def load_into(path: str | Path, module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Load ``tensors`` into ``module`` strictly, as a ``ModelFileError`` on mismatch."""
    try:
        module.load_state_dict(tensors, strict=True)
    except RuntimeError as error:
        raise ModelFileError(
            f"{path}: the stored weights do not fit the architecture in the header: {error}"
        ) from error
