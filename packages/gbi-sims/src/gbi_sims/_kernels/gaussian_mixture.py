"""Numba kernels of gaussian_mixture (private; see gbi_sims.gaussian_mixture)."""

from __future__ import annotations

import math

import numba
import numpy as np

from gbi_sims._jit import jit, parallel_jit
from gbi_sims._rng import normal_pair, row_state, uniform

#: standard deviation of the narrow component (its covariance is 0.01 I_2)
NARROW_STD = 0.1
_LOG_HALF_OVER_2PI = math.log(0.5) - math.log(2.0 * math.pi)
_LOG_NARROW_NORM = -2.0 * math.log(NARROW_STD)  # log 100: the 2-D normalizer ratio
_HALF_NARROW_PRECISION = 0.5 / (NARROW_STD * NARROW_STD)  # 50


@parallel_jit
def simulate(theta: np.ndarray, key: np.uint64, row_offset: int, out: np.ndarray) -> None:
    for i in numba.prange(theta.shape[0]):
        state = row_state(key, row_offset + i)
        state, u = uniform(state)
        state, z1, z2 = normal_pair(state)
        scale = 1.0 if u < 0.5 else NARROW_STD  # the wide component N(theta, I) when u < 1/2
        out[i, 0] = theta[i, 0] + scale * z1
        out[i, 1] = theta[i, 1] + scale * z2


@jit
def _log_density(t1: float, t2: float, x1: float, x2: float) -> float:
    d1 = x1 - t1
    d2 = x2 - t2
    sq = d1 * d1 + d2 * d2
    wide = -0.5 * sq
    narrow = _LOG_NARROW_NORM - _HALF_NARROW_PRECISION * sq
    top = max(wide, narrow)
    if top == -np.inf:  # |x - theta|^2 overflowed: the density underflows to 0
        return -np.inf
    return _LOG_HALF_OVER_2PI + top + math.log1p(math.exp(-abs(wide - narrow)))


@parallel_jit
def log_likelihood(theta: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    step = 0 if x.shape[0] == 1 else 1  # one x for every theta, or one per theta
    for i in numba.prange(theta.shape[0]):
        j = i * step
        out[i] = _log_density(theta[i, 0], theta[i, 1], x[j, 0], x[j, 1])
