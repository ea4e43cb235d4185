"""Numba kernels of two_moons (private; see gbi_sims.two_moons)."""

from __future__ import annotations

import math

import numba
import numpy as np

from gbi_sims._jit import jit, parallel_jit
from gbi_sims._rng import normal, row_state, uniform

_SQRT_HALF = math.sqrt(0.5)
_R_MEAN = 0.1
_R_STD = 0.01
_LOG_NORM = -0.5 * math.log(2.0 * math.pi) - math.log(_R_STD) - math.log(math.pi)


@parallel_jit
def simulate(theta: np.ndarray, key: np.uint64, row_offset: int, out: np.ndarray) -> None:
    for i in numba.prange(theta.shape[0]):
        state = row_state(key, row_offset + i)
        state, u = uniform(state)
        state, z = normal(state)
        alpha = math.pi * (u - 0.5)
        r = _R_MEAN + _R_STD * z
        t1 = theta[i, 0]
        t2 = theta[i, 1]
        out[i, 0] = r * math.cos(alpha) + 0.25 - abs(t1 + t2) * _SQRT_HALF
        out[i, 1] = r * math.sin(alpha) + (-t1 + t2) * _SQRT_HALF


@jit
def _log_density(t1: float, t2: float, x1: float, x2: float) -> float:
    # p = x - shift(theta); (u, v) = p - (0.25, 0)
    u = x1 + abs(t1 + t2) * _SQRT_HALF - 0.25
    v = x2 - (-t1 + t2) * _SQRT_HALF
    if u <= 0.0:
        return -np.inf
    r = math.sqrt(u * u + v * v)
    d = (r - _R_MEAN) / _R_STD
    return _LOG_NORM - 0.5 * d * d - math.log(r)


@parallel_jit
def log_likelihood(theta: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    step = 0 if x.shape[0] == 1 else 1  # one x for every theta, or one per theta
    for i in numba.prange(theta.shape[0]):
        j = i * step
        out[i] = _log_density(theta[i, 0], theta[i, 1], x[j, 0], x[j, 1])
