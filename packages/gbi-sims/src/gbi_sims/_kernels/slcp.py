"""Numba kernels of slcp (private; see gbi_sims.slcp)."""

from __future__ import annotations

import math

import numba
import numpy as np

from gbi_sims._jit import jit, parallel_jit
from gbi_sims._rng import normal_pair, row_state

N_DRAWS = 4
_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)


@parallel_jit
def simulate(theta: np.ndarray, key: np.uint64, row_offset: int, out: np.ndarray) -> None:
    for i in numba.prange(theta.shape[0]):
        state = row_state(key, row_offset + i)
        m1 = theta[i, 0]
        m2 = theta[i, 1]
        s1 = theta[i, 2] * theta[i, 2]
        s2 = theta[i, 3] * theta[i, 3]
        rho = math.tanh(theta[i, 4])
        sech = 1.0 / math.cosh(theta[i, 4])  # sqrt(1 - rho^2), without cancellation
        for j in range(N_DRAWS):
            # x_j = m + L z with L = [[s1, 0], [rho s2, sech s2]], the Cholesky factor of S
            state, z1, z2 = normal_pair(state)
            out[i, 2 * j] = m1 + s1 * z1
            out[i, 2 * j + 1] = m2 + s2 * (rho * z1 + sech * z2)


@jit
def _log_density(theta: np.ndarray, x: np.ndarray) -> float:
    t3 = theta[2]
    t4 = theta[3]
    if t3 == 0.0 or t4 == 0.0:  # s1 = 0 or s2 = 0: singular S, no density (see gbi_sims.slcp)
        return -np.inf
    t5 = theta[4]
    a5 = abs(t5)
    sign = 1.0 if t5 >= 0.0 else -1.0
    e = math.exp(-2.0 * a5)
    one_minus_abs_rho = 2.0 * e / (1.0 + e)  # 1 - |tanh(t5)|, accurate for large |t5|
    cosh5 = math.cosh(t5)  # 1 / sqrt(1 - rho^2); inf for |t5| > ~710 (then singular)
    log_cosh5 = a5 + math.log1p(e) - _LOG_2
    quad = 0.0
    for j in range(N_DRAWS):
        # standardized coordinates; divide by t twice so tiny t3, t4 do not underflow s1, s2
        a = (x[2 * j] - theta[0]) / t3 / t3
        b = (x[2 * j + 1] - theta[1]) / t4 / t4
        # whitened second coordinate (b - rho a) / sqrt(1 - rho^2), with rho = sign (1 - q)
        w = ((b - sign * a) + sign * a * one_minus_abs_rho) * cosh5
        quad += a * a + w * w
    if not quad < np.inf:  # overflowed (or inf - inf): the density underflows to 0
        return -np.inf
    log_det_half = 2.0 * math.log(abs(t3)) + 2.0 * math.log(abs(t4)) - log_cosh5
    return N_DRAWS * (-_LOG_2PI - log_det_half) - 0.5 * quad


@parallel_jit
def log_likelihood(theta: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    step = 0 if x.shape[0] == 1 else 1  # one x for every theta, or one per theta
    for i in numba.prange(theta.shape[0]):
        out[i] = _log_density(theta[i], x[i * step])
