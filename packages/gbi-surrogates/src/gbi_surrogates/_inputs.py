"""Checks of user arrays: clear ValueErrors before anything reaches torch."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from gbi_surrogates._from_npe import as_matrix


def training_pairs(theta: Any, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """Simulated pairs as finite float64 arrays (n, d_theta), (n, d_x), n >= 2.

    Raises:
        ValueError: not 2-D, empty, non-finite, or different row counts.
    """
    arrays = []
    for name, value in (("theta", theta), ("x", x)):
        shape = np.shape(value)
        if len(shape) != 2:
            raise ValueError(
                f"{name} must be a 2-D array (n, d_{name}) of simulated pairs, got shape {shape} "
                f"(for a single feature use {name}[:, None])"
            )
        arrays.append(as_matrix(name, value, shape[1]))
    theta_a, x_a = arrays
    if theta_a.shape[0] != x_a.shape[0]:
        raise ValueError(
            f"theta and x must have the same number of rows (one pair per row), got "
            f"{theta_a.shape[0]} and {x_a.shape[0]}"
        )
    if theta_a.shape[0] < 2:
        raise ValueError(f"training needs at least 2 pairs, got {theta_a.shape[0]}")
    return theta_a, x_a


def evaluation_pairs(
    theta: Any, x: Any, theta_features: int, x_features: int
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs to evaluate, broadcast to a common row count.

    ``theta`` is (n, d_theta) or (d_theta,), ``x`` is (m, d_x) or (d_x,); row
    counts must be equal or one of them 1 (one x against many thetas, or the
    reverse).

    Returns:
        theta (k, d_theta) and x (k, d_x), float64, with k = max(n, m).

    Raises:
        ValueError: wrong dimensions, non-finite values, mismatched row counts.
    """
    theta_a = as_matrix("theta", theta, theta_features, allow_vector=True)
    x_a = as_matrix("x", x, x_features, allow_vector=True)
    n, m = theta_a.shape[0], x_a.shape[0]
    if n != m and 1 not in (n, m):
        raise ValueError(
            f"theta and x must have the same number of rows, or one of them a single row, "
            f"got {n} and {m}"
        )
    k = max(n, m)
    return np.broadcast_to(theta_a, (k, theta_features)), np.broadcast_to(x_a, (k, x_features))


def as_chunk_size(value: Any) -> int:
    """A positive int (numpy integers accepted, bools refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"chunk_size must be a positive integer, got {value!r}")
    return int(value)


def as_sigma(
    sigma: Any, n: int, sigma_range: tuple[float, float], *, extrapolate: bool
) -> np.ndarray:
    """Noise levels as a float64 array (n,) from a scalar or a (n,) array.

    A level outside the trained ``sigma_range`` (relative tolerance 1e-6) is an
    error, or a warning with ``extrapolate=True``.

    Raises:
        ValueError: not positive and finite, wrong shape, or out of range.
    """
    try:
        array = np.asarray(sigma, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"sigma must be a number or an array, got {type(sigma).__name__}"
        ) from error
    if array.ndim == 0:
        array = np.full(n, float(array))
    elif array.shape != (n,):
        raise ValueError(f"sigma must be a scalar or have shape ({n},), got {array.shape}")
    if not (np.isfinite(array).all() and (array > 0).all()):
        raise ValueError(f"sigma must be finite and > 0, got {array[~(array > 0)][:5].tolist()}")
    low, high = sigma_range
    outside = (array < low * (1 - 1e-6)) | (array > high * (1 + 1e-6))
    if outside.any():
        message = (
            f"sigma must lie in the trained noise range [{low:.6g}, {high:.6g}], got "
            f"{array[outside].min():.6g}..{array[outside].max():.6g}"
        )
        if not extrapolate:
            raise ValueError(message + " (pass extrapolate=True to evaluate anyway)")
        warnings.warn(message + "; extrapolating", UserWarning, stacklevel=3)
    return array
