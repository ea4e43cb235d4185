"""Input checks shared by the trainer and the posterior: clear ValueErrors, early."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_matrix(name: str, value: Any, features: int, *, allow_vector: bool = False) -> np.ndarray:
    """``value`` as a finite float64 array of shape (n, features).

    Args:
        name: argument name for messages.
        value: array-like, shape (n, features) (or (features,) when
            ``allow_vector``, returned as (1, features)).
        features: expected number of columns.
        allow_vector: accept one row given as a 1-D array.

    Raises:
        ValueError: wrong shape, non-numeric or non-finite entries.
    """
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric array, got {type(value).__name__}") from error
    if allow_vector and array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != features:
        expected = f"(n, {features})" + (f" or ({features},)" if allow_vector else "")
        raise ValueError(f"{name} must have shape {expected}, got {np.shape(value)}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} must have at least one row, got shape {array.shape}")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"{name} must be finite; {rows.size} row(s) contain NaN or inf (first: row {rows[0]})"
        )
    return array


def as_beta(value: Any, n: int | None = None, *, name: str = "beta") -> np.ndarray:
    """``value`` as a float64 array of positive finite temperatures.

    Args:
        value: a scalar or a 1-D array.
        n: if given, the array length required (a scalar is broadcast to it).

    Returns:
        shape (n,) when ``n`` is given, else (k,) (a scalar gives (1,)).
    """
    try:
        beta = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a number or an array of numbers") from error
    if beta.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D array, got shape {beta.shape}")
    if beta.ndim == 0:
        beta = np.full(1 if n is None else n, float(beta))
    elif n is not None and beta.shape[0] != n:
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {beta.shape}")
    if beta.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not (np.isfinite(beta).all() and (beta > 0).all()):
        bad = beta[~(np.isfinite(beta) & (beta > 0))]
        raise ValueError(f"{name} must be finite and > 0, got {bad[:5].tolist()}")
    return beta


def as_count(name: str, value: Any) -> int:
    """A positive Python int (numpy integers accepted, bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def as_weights(weights: Any, log_weights: Any, n: int) -> np.ndarray | None:
    """Unnormalized log weights (n,) from ``weights`` or ``log_weights`` (at most one)."""
    if weights is not None and log_weights is not None:
        raise ValueError("pass weights or log_weights, not both")
    if weights is None and log_weights is None:
        return None
    name = "weights" if weights is not None else "log_weights"
    try:
        array = np.asarray(weights if weights is not None else log_weights, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric array") from error
    if array.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one per row, got {array.shape}")
    if weights is not None:
        if not (np.isfinite(array).all() and (array >= 0).all()):
            raise ValueError("weights must be finite and >= 0")
        with np.errstate(divide="ignore"):
            return np.log(array)
    if np.isnan(array).any() or (array == np.inf).any():
        raise ValueError("log_weights must not contain NaN or +inf (-inf means weight 0)")
    return array
