"""Saving and loading estimators: safetensors plus a JSON header; no code runs on load.

A model file is a safetensors file. Its tensors are the estimator's
``state_dict`` (bit-exact); its string metadata holds

* ``gbi_npe.header``: JSON with the format name and version, the estimator
  spec (density and embedding configs, beta features), the dimensions, the
  standardization, the beta range, the prior box and free user ``metadata``;
* ``gbi_npe.sha256``: SHA-256 of the header and of every tensor (name, dtype,
  shape, bytes), so a truncated, corrupted or edited file is refused with a
  ``ModelFileError`` (a ``ValueError``). The checksum guards integrity, not
  authenticity: someone rewriting the file can recompute it.

Loading rebuilds the estimator from the header alone. A user-supplied
embedding module is the exception: its weights are in the file but its code
is not (that would mean unpickling), so the caller passes a freshly built
module of the same architecture as ``embedding_net=``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as save_bytes
from torch import nn

from .config import EstimatorSpec
from .estimator import ConditionalDensityEstimator, build_estimator

FORMAT = "gbi-npe"
FORMAT_VERSION = 1
_HEADER_KEY = "gbi_npe.header"
_CHECKSUM_KEY = "gbi_npe.sha256"


class ModelFileError(ValueError):
    """A model file is unreadable, truncated, tampered with, or of another format."""


def _digest(header_json: str, tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256(header_json.encode("utf-8"))
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"\0{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _standardization(estimator: ConditionalDensityEstimator) -> dict[str, Any]:
    def pair(module: nn.Module | None) -> dict[str, list[float]] | None:
        if module is None:
            return None
        return {"shift": module.shift.tolist(), "scale": module.scale.tolist()}

    encoder = estimator.context_encoder
    return {
        "inputs": pair(estimator.input_transform.standardize),
        "x": pair(encoder.x_standardize),
        "beta_features": pair(encoder.beta_standardize),
    }


def _header(estimator: ConditionalDensityEstimator, metadata: dict[str, Any]) -> dict[str, Any]:
    from . import __version__

    spec = estimator.spec
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "gbi_npe_version": __version__,
        "torch_version": torch.__version__,
        "spec": spec.to_dict(),
        "dims": {
            "inputs": spec.inputs_features,
            "context": spec.context_features,
            "x": spec.x_features,
            "beta_conditioned": spec.beta_conditioned,
        },
        "fitted": estimator.is_fitted,
        "beta_range": None if estimator.beta_range is None else list(estimator.beta_range),
        "prior_box": None if spec.low is None else {"low": list(spec.low), "high": list(spec.high)},
        "standardization": _standardization(estimator),
        # other weight sets serving ranges of temperature (set_temperature_pieces)
        "temperature_pieces": {
            "count": len(estimator.pieces),
            "cells": estimator.temperature_cells,
        },
        "metadata": metadata,
    }


def write_model_file(
    path: str | Path, tensors: dict[str, torch.Tensor], header: dict[str, Any]
) -> Path:
    """Write tensors and a JSON header with a checksum, atomically (temporary file + rename).

    The generic half of ``save_estimator``, for any model that saves the same
    way (the surrogates' ratio and score networks): ``header`` should carry
    ``format`` and ``format_version`` keys for ``read_model_file``.

    Args:
        path: destination (conventionally ``*.safetensors``).
        tensors: name -> tensor (e.g. a ``state_dict``); copied to CPU.
        header: JSON-serializable dict.

    Returns:
        The path written.

    Raises:
        ValueError: the header is not JSON-serializable.
    """
    path = Path(path)
    try:
        header_json = json.dumps(header, sort_keys=True, allow_nan=True)
    except TypeError as error:
        raise ValueError(f"the header (metadata) must be JSON-serializable: {error}") from error
    tensors = {name: tensor.detach().cpu().contiguous().clone() for name, tensor in tensors.items()}
    meta = {_HEADER_KEY: header_json, _CHECKSUM_KEY: _digest(header_json, tensors)}
    atomic_write_bytes(path, save_bytes(tensors, metadata=meta))
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, ``fsync`` and ``os.replace``.

    A process killed at any moment leaves either the old file or the new one,
    never a partial file (at worst a stray ``.<name>.*.tmp`` beside it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_model_file(
    path: str | Path, *, format: str = FORMAT, version: int = FORMAT_VERSION
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read and verify a file written by ``write_model_file``; nothing is unpickled.

    Args:
        path: the file.
        format: the ``header["format"]`` required.
        version: the ``header["format_version"]`` required.

    Returns:
        ``(header, tensors)``, tensors on the CPU.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: unreadable, truncated, tampered with (checksum), another
            format, or another format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except Exception as error:
        raise ModelFileError(
            f"{path} is not a readable safetensors model file (truncated or corrupt?): {error}"
        ) from error
    header_json, checksum = meta.get(_HEADER_KEY), meta.get(_CHECKSUM_KEY)
    if header_json is None or checksum is None:
        raise ModelFileError(f"{path} is a safetensors file but not a {format} model (no header)")
    if _digest(header_json, tensors) != checksum:
        raise ModelFileError(
            f"{path}: checksum mismatch, the file was modified or corrupted after it was written"
        )
    try:
        header = json.loads(header_json)
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: the header is not valid JSON: {error}") from error
    if not isinstance(header, dict) or header.get("format") != format:
        found = header.get("format") if isinstance(header, dict) else None
        raise ModelFileError(f"{path}: not a {format} model file (format {found!r})")
    found_version = header.get("format_version")
    if found_version != version:
        newer = isinstance(found_version, int) and found_version > version
        raise ModelFileError(
            f"{path}: format version {found_version!r}; this code reads version {version}"
            + (" (the file is newer: upgrade)" if newer else "")
        )
    return header, tensors


def save_estimator(
    estimator: ConditionalDensityEstimator,
    path: str | Path,
    *,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write ``estimator`` to ``path`` (atomically: a temporary file, then a rename).

    Args:
        estimator: any ``ConditionalDensityEstimator``.
        path: destination (conventionally ``*.safetensors``).
        metadata: JSON-able facts to keep with the model (task name, ...).

    Returns:
        The path written.

    Raises:
        ValueError: ``metadata`` is not JSON-serializable.
    """
    if not isinstance(estimator, ConditionalDensityEstimator):
        raise ValueError(
            f"save_estimator needs a ConditionalDensityEstimator, got {type(estimator).__name__}"
        )
    header = _header(estimator, dict(metadata or {}))
    return write_model_file(path, estimator.state_dict(), header)


def read_header(path: str | Path) -> dict[str, Any]:
    """The verified JSON header of a model file (no network is built).

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: unreadable, truncated, tampered with, or another format.
    """
    return read_model_file(path)[0]


def load_estimator(
    path: str | Path,
    *,
    embedding_net: nn.Module | None = None,
    device: str | torch.device = "cpu",
) -> ConditionalDensityEstimator:
    """Rebuild an estimator from a file written by ``save_estimator``; exact round trip.

    Args:
        path: the model file.
        embedding_net: required iff the estimator was built with a custom
            embedding module: a freshly built module of the same architecture
            (its weights are replaced by the saved ones).
        device: where to put the estimator.

    Returns:
        The estimator, in eval mode.

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: unreadable, truncated, tampered with, another format,
            or weights that do not fit the described architecture.
        ValueError: a custom embedding is needed and missing or mismatched.
    """
    header, tensors = read_model_file(path)
    try:
        spec = EstimatorSpec.from_dict(header["spec"])
    except (KeyError, ValueError) as error:
        raise ModelFileError(f"{path}: invalid estimator spec in the header: {error}") from error
    estimator = build_estimator(spec, embedding_net)
    pieces = header.get("temperature_pieces") or {"count": 0}  # files before pieces: none
    try:
        if pieces["count"]:
            estimator.add_temperature_pieces(int(pieces["count"]), int(pieces["cells"]))
        estimator.load_state_dict(tensors, strict=True)
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        raise ModelFileError(
            f"{path}: the stored weights do not fit the architecture in the header"
            + (" (is embedding_net the same architecture?)" if embedding_net is not None else "")
            + f": {error}"
        ) from error
    if header.get("standardization") != _standardization(estimator):
        raise ModelFileError(f"{path}: the header's standardization disagrees with the tensors")
    estimator.to(device)
    estimator.eval()
    return estimator
