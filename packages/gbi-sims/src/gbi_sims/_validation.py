"""Input checks shared by every task: clear ValueErrors instead of deep tracebacks."""

from __future__ import annotations

import numpy as np


def as_batch(
    values: object,
    dim: int,
    *,
    what: str,
    task: str,
    allow_empty: bool = False,
    check_finite: bool = True,
) -> np.ndarray:
    """Return ``values`` as a C-contiguous float64 array of shape (n, dim).

    Raises:
        ValueError: wrong number of dimensions or columns, an empty batch (unless
            allowed), or non-finite entries.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} for {task} must be numeric, got {type(values).__name__}") from err
    if arr.ndim != 2 or arr.shape[1] != dim:
        hint = ""
        if arr.ndim == 1 and arr.size == dim:
            hint = f"; for a single {what} use {what}[None, :]"
        raise ValueError(f"{what} must have shape (n, {dim}) for {task}, got {arr.shape}{hint}")
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{what} for {task} is an empty batch: shape {arr.shape}")
    if check_finite and not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1))
        raise ValueError(
            f"{what} for {task} has non-finite values in {bad.size} row(s), first at row {bad[0]}"
        )
    return np.ascontiguousarray(arr)


def check_count(n: object, *, what: str = "n") -> int:
    """A non-negative integer count."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"{what} must be a non-negative int, got {n!r}")
    if n < 0:
        raise ValueError(f"{what} must be a non-negative int, got {n}")
    return int(n)


def check_chunk_size(chunk_size: object, default: int) -> int:
    """A positive rows-per-chunk count; ``None`` means ``default``."""
    if chunk_size is None:
        return default
    chunk = check_count(chunk_size, what="chunk_size")
    if chunk < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size}")
    return chunk
