"""Effective sample size of importance weights, in log space."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp


def normalize_log_weights(log_weights: np.ndarray, axis: int = -1) -> np.ndarray:
    """Subtract the log-sum-exp along ``axis`` so the weights sum to one.

    Args:
        log_weights: unnormalized log weights, shape (..., N); ``-inf`` allowed.

    Returns:
        log of the normalized weights, same shape.
    """
    log_weights = np.asarray(log_weights, dtype=np.float64)
    return log_weights - logsumexp(log_weights, axis=axis, keepdims=True)


def ess(log_weights: np.ndarray, axis: int = -1) -> np.ndarray:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` from log weights.

    Args:
        log_weights: log weights (normalized or not), shape (..., N).

    Returns:
        ESS, shape (...), between 1 and N.

    Example:
        >>> round(float(ess(np.zeros(100))), 9)
        100.0
    """
    log_weights = np.asarray(log_weights, dtype=np.float64)
    return np.exp(2.0 * logsumexp(log_weights, axis=axis) - logsumexp(2.0 * log_weights, axis=axis))


def relative_ess(log_weights: np.ndarray, axis: int = -1) -> np.ndarray:
    """ESS divided by the number of weights, in (0, 1]."""
    log_weights = np.asarray(log_weights, dtype=np.float64)
    return ess(log_weights, axis=axis) / log_weights.shape[axis]
