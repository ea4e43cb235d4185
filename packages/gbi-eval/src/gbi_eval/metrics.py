"""Two-sample discrepancies between posterior samples: C2ST and MMD."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial.distance import pdist

from gbi_eval import _kernels
from gbi_eval._validation import Seed, as_samples, check_positive_int

#: pooled points used by the median heuristic (a random subsample beyond this).
MEDIAN_HEURISTIC_POINTS = 2000


def _check_pair(p_samples: object, q_samples: object) -> tuple[np.ndarray, np.ndarray]:
    p = as_samples(p_samples, what="p_samples")
    q = as_samples(q_samples, what="q_samples")
    if p.shape[1] != q.shape[1]:
        raise ValueError(
            f"p_samples and q_samples must have the same dimension, got {p.shape[1]} "
            f"(shape {p.shape}) and {q.shape[1]} (shape {q.shape})"
        )
    return p, q


def c2st(
    p_samples: np.ndarray,
    q_samples: np.ndarray,
    seed: Seed,
    *,
    n_folds: int = 5,
    max_iter: int = 1000,
) -> float:
    """Classifier two-sample test accuracy (Lopez-Paz & Oquab 2016; sbibm's protocol).

    Both sets are z-scored with the mean and standard deviation of
    ``p_samples`` (a constant feature is only centred); a scikit-learn
    ``MLPClassifier`` (ReLU, two hidden layers of 10 * d units, Adam) learns to
    tell them apart; the score is its mean ``n_folds``-fold cross-validated
    accuracy on shuffled folds. 0.5: indistinguishable; 1: disjoint.

    Args:
        p_samples: shape (n, d), finite.
        q_samples: shape (n, d), finite, as many as ``p_samples`` (so that
            chance level is 0.5).
        seed: int or ``numpy.random.Generator``; fixes the folds and the network's
            initialization.
        n_folds: cross-validation folds.
        max_iter: the classifier's epoch limit.

    Returns:
        The accuracy, a float in [0, 1].

    Example:
        >>> rng = np.random.default_rng(0)
        >>> c2st(rng.normal(size=(200, 2)), rng.normal(size=(200, 2)) + 10.0, seed=0)
        1.0
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import KFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    p, q = _check_pair(p_samples, q_samples)
    n_folds = check_positive_int(n_folds, what="n_folds")
    if p.shape[0] != q.shape[0]:
        raise ValueError(
            f"c2st needs as many p_samples as q_samples (chance level is 0.5 only then), got "
            f"{p.shape[0]} and {q.shape[0]}"
        )
    if n_folds < 2 or p.shape[0] < n_folds:
        raise ValueError(
            f"c2st needs n_folds >= 2 and at least n_folds samples per set, got n_folds="
            f"{n_folds} and {p.shape[0]} samples"
        )
    if isinstance(seed, np.random.Generator):
        random_state = int(seed.integers(2**31 - 1))
    else:
        random_state = int(np.random.SeedSequence(seed).generate_state(1)[0] >> 1)
    mean = p.mean(axis=0)
    std = p.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    data = np.concatenate([(p - mean) / std, (q - mean) / std])
    target = np.concatenate([np.zeros(p.shape[0]), np.ones(q.shape[0])])
    dim = p.shape[1]
    classifier = MLPClassifier(
        hidden_layer_sizes=(10 * dim, 10 * dim),
        activation="relu",
        solver="adam",
        max_iter=max_iter,
        random_state=random_state,
    )
    folds = KFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(classifier, data, target, cv=folds, scoring="accuracy")
    return float(np.mean(scores))


def median_heuristic(
    p_samples: np.ndarray, q_samples: np.ndarray, *, max_points: int = MEDIAN_HEURISTIC_POINTS
) -> float:
    """The median Euclidean distance between points of the pooled sample.

    Beyond ``max_points`` pooled points the median is taken over a subsample
    of ``max_points`` of them, drawn without replacement with a fixed seed
    (so the bandwidth is deterministic); the median of 2 million pairwise
    distances is accurate to well under a percent.

    Args:
        p_samples: shape (m, d).
        q_samples: shape (n, d).
        max_points: pooled points used at most.

    Returns:
        The bandwidth h > 0.
    """
    p, q = _check_pair(p_samples, q_samples)
    pooled = np.concatenate([p, q])
    if pooled.shape[0] > max_points:
        rng = np.random.default_rng(0)
        pooled = pooled[rng.choice(pooled.shape[0], size=max_points, replace=False)]
    h = float(np.median(pdist(pooled)))
    if not h > 0:
        raise ValueError(
            "the median heuristic gives bandwidth 0 (more than half the pooled points "
            "coincide); pass bandwidth explicitly"
        )
    return h


def mmd(
    p_samples: np.ndarray,
    q_samples: np.ndarray,
    *,
    bandwidth: float | None = None,
) -> float:
    """Unbiased squared maximum mean discrepancy with a Gaussian kernel (Gretton et al. 2012).

    With k(a, b) = exp(-|a - b|^2 / (2 h^2)), X = p_samples (m points) and
    Y = q_samples (n points):

        MMD^2_u = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
                  - 2/(mn) sum_{i, j} k(x_i, y_j).

    It is 0 in expectation when both sets come from one distribution (so an
    estimate can be slightly negative). The three sums run in a numba kernel
    row by row, never building a kernel matrix: memory is O(m + n), time
    O((m + n)^2 d); 10k x 10k points take a few seconds on 2 cores.

    Args:
        p_samples: shape (m, d), m >= 2, finite.
        q_samples: shape (n, d), n >= 2, finite.
        bandwidth: h > 0; default the median heuristic (``median_heuristic``:
            median pooled pairwise distance, on a fixed subsample of 2000
            points for larger inputs).

    Returns:
        The unbiased MMD^2 estimate.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(300, 2))
        >>> round(mmd(x, x + 3.0), 2) > 0.5, abs(mmd(x[:150], x[150:])) < 0.02
        (True, True)
    """
    p, q = _check_pair(p_samples, q_samples)
    if p.shape[0] < 2 or q.shape[0] < 2:
        raise ValueError(f"mmd needs at least 2 samples per set, got {p.shape[0]} and {q.shape[0]}")
    if bandwidth is None:
        bandwidth = median_heuristic(p, q)
    elif not (np.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be a finite number > 0, got {bandwidth!r}")
    inv_two_h2 = 1.0 / (2.0 * float(bandwidth) ** 2)
    m, n = p.shape[0], q.shape[0]
    k_pp = _kernels.gaussian_kernel_sum(p, p, inv_two_h2, True)
    k_qq = _kernels.gaussian_kernel_sum(q, q, inv_two_h2, True)
    k_pq = _kernels.gaussian_kernel_sum(p, q, inv_two_h2, False)
    return float(k_pp / (m * (m - 1)) + k_qq / (n * (n - 1)) - 2.0 * k_pq / (m * n))
