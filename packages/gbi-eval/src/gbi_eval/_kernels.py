"""Numba kernels of gbi-eval (private; see ``gbi_eval.metrics``).

One jit policy: compiled once and cached on disk (``cache=True``), no GIL,
numpy error semantics. Batch kernels split rows across threads with
``numba.prange`` and reduce per-row partial sums in a fixed order, so results
do not depend on the thread count.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np

#: Batch kernels: a ``numba.prange`` loop over rows.
parallel_jit = functools.partial(
    numba.njit, cache=True, nogil=True, parallel=True, error_model="numpy"
)


@parallel_jit
def gaussian_kernel_sum(a: np.ndarray, b: np.ndarray, inv_two_h2: float, same: bool) -> float:
    """Sum of exp(-|a_i - b_j|^2 * inv_two_h2) over all (i, j), or over i != j if ``same``.

    a: (m, d) and b: (n, d), C-contiguous float64. With ``same`` (a is b) only
    i < j is computed and doubled. Memory: one float per row of ``a``.
    """
    m = a.shape[0]
    n = b.shape[0]
    d = a.shape[1]
    row_sums = np.zeros(m)
    for i in numba.prange(m):
        total = 0.0
        start = i + 1 if same else 0
        for j in range(start, n):
            dist2 = 0.0
            for k in range(d):
                diff = a[i, k] - b[j, k]
                dist2 += diff * diff
            total += math.exp(-dist2 * inv_two_h2)
        row_sums[i] = total
    out = 0.0
    for i in range(m):
        out += row_sums[i]
    return 2.0 * out if same else out


#: Serial kernels: small per-step batches, no thread launch.
jit = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy")


@jit
def reflect_into(theta: np.ndarray, low: np.ndarray, high: np.ndarray, out: np.ndarray) -> None:
    """out = theta folded into [low, high] by mirror reflection (see ``mcmc.reflect``).

    theta and out: (c, d); low and high: (d,).
    """
    c, d = theta.shape
    for i in range(c):
        for k in range(d):
            value = theta[i, k]
            lo = low[k]
            hi = high[k]
            if lo <= value <= hi:
                out[i, k] = value
                continue
            width = hi - lo
            y = (value - lo) % (2.0 * width)  # Python semantics: in [0, 2 width)
            if y > width:
                y = 2.0 * width - y
            out[i, k] = lo + y


@jit
def metropolis_select(
    position: np.ndarray,
    log_likelihood: np.ndarray,
    proposal: np.ndarray,
    proposal_log_likelihood: np.ndarray,
    beta: np.ndarray,
    log_u: np.ndarray,
    new_position: np.ndarray,
    new_log_likelihood: np.ndarray,
    acceptance_probability: np.ndarray,
    is_accepted: np.ndarray,
) -> None:
    """The Metropolis accept/reject of every chain, tempered by ``beta`` (c,).

    Accepts chain i when log_u[i] < beta[i] * (l'_i - l_i); a NaN or -inf
    proposal log-likelihood is rejected. The current l_i is finite.
    """
    c, d = position.shape
    for i in range(c):
        proposed = proposal_log_likelihood[i]
        if proposed == np.inf:
            raise ValueError("log_likelihood_fn returned +inf; a log-likelihood must be < +inf")
        if proposed != proposed or proposed == -np.inf:  # NaN or impossible
            log_ratio = -np.inf
        else:
            log_ratio = beta[i] * (proposed - log_likelihood[i])
        acceptance_probability[i] = math.exp(min(log_ratio, 0.0))
        accept = log_u[i] < log_ratio
        is_accepted[i] = accept
        source = proposal if accept else position
        for k in range(d):
            new_position[i, k] = source[i, k]
        new_log_likelihood[i] = proposed if accept else log_likelihood[i]
