"""Plain-numpy reference implementations the package is checked against."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist, pdist


def mmd_dense(x: np.ndarray, y: np.ndarray, bandwidth: float) -> float:
    """Unbiased MMD^2 from dense kernel matrices (fine for a few hundred points)."""
    gamma = 1.0 / (2.0 * bandwidth**2)
    k_xx = np.exp(-gamma * cdist(x, x, "sqeuclidean"))
    k_yy = np.exp(-gamma * cdist(y, y, "sqeuclidean"))
    k_xy = np.exp(-gamma * cdist(x, y, "sqeuclidean"))
    m, n = x.shape[0], y.shape[0]
    return float(
        (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
        + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
        - 2.0 * k_xy.mean()
    )


def median_distance(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.median(pdist(np.concatenate([x, y]))))
