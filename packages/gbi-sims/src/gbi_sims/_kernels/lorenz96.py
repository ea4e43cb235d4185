"""Numba kernels of lorenz96 (private; see gbi_sims.lorenz96)."""

from __future__ import annotations

import math

import numba
import numpy as np

from gbi_sims._jit import jit, parallel_jit
from gbi_sims._rng import normal_pair, row_state

K = 8  # state dimension (even: the noise is drawn in Box–Muller pairs)
T = 20  # Euler–Maruyama steps
DT = 3.0 / 40.0
FORCING = 10.0
N_TRANSITIONS = T * K
N_STATISTICS = 5  # e_mean, z_mean, b1_hat, rss, s_zz
_SQRT_DT = math.sqrt(DT)
_LOG_NORM = -0.5 * N_TRANSITIONS * math.log(2.0 * math.pi * DT)


@jit
def _f(x: np.ndarray, base: int, k: int) -> float:
    """Lorenz-96 vector field f(x)_k = -x_{k-1} (x_{k-2} - x_{k+1}) - x_k + 10, cyclic.

    ``x[base : base + K]`` is the state.
    """
    km1 = k - 1 if k >= 1 else k - 1 + K
    km2 = k - 2 if k >= 2 else k - 2 + K
    kp1 = k + 1 if k + 1 < K else k + 1 - K
    return -x[base + km1] * (x[base + km2] - x[base + kp1]) - x[base + k] + FORCING


@parallel_jit
def simulate(theta: np.ndarray, key: np.uint64, row_offset: int, out: np.ndarray) -> None:
    for i in numba.prange(theta.shape[0]):
        state = row_state(key, row_offset + i)
        b0 = theta[i, 0]
        b1 = theta[i, 1]
        noise = theta[i, 2] * _SQRT_DT
        row = out[i]
        for k in range(K):
            row[k] = 1.0
        for t in range(T):
            base = t * K
            nxt = base + K
            for k in range(0, K, 2):
                state, z1, z2 = normal_pair(state)
                xk = row[base + k]
                row[nxt + k] = xk + DT * (_f(row, base, k) - b0 - b1 * xk) - noise * z1
                xk = row[base + k + 1]
                row[nxt + k + 1] = xk + DT * (_f(row, base, k + 1) - b0 - b1 * xk) - noise * z2


@jit
def _e(row: np.ndarray, base: int, k: int) -> float:
    """e = x_{t+1,k} - x_{t,k} - DT f(x_t)_k for the state at ``row[base : base + K]``."""
    return row[base + K + k] - row[base + k] - DT * _f(row, base, k)


@parallel_jit
def statistics(x: np.ndarray, out: np.ndarray) -> None:
    """Per row of x: e_mean, z_mean, b1_hat, rss, s_zz (see gbi_sims.lorenz96)."""
    for i in numba.prange(x.shape[0]):
        row = x[i]
        e_sum = 0.0
        z_sum = 0.0
        for t in range(T):
            for k in range(K):
                e_sum += _e(row, t * K, k)
                z_sum += row[t * K + k]
        e_mean = e_sum / N_TRANSITIONS
        z_mean = z_sum / N_TRANSITIONS
        s_ez = 0.0
        s_zz = 0.0
        for t in range(T):
            for k in range(K):
                dz = row[t * K + k] - z_mean
                s_ez += (_e(row, t * K, k) - e_mean) * dz
                s_zz += dz * dz
        # least-squares b_1 of e ~ -DT (b_0 + b_1 z); 0 when z is constant
        b1_hat = -s_ez / (DT * s_zz) if s_zz > 0.0 else 0.0
        if not abs(b1_hat) < np.inf:
            b1_hat = 0.0
        rss = 0.0
        for t in range(T):
            for k in range(K):
                r = (_e(row, t * K, k) - e_mean) + DT * b1_hat * (row[t * K + k] - z_mean)
                rss += r * r
        out[i, 0] = e_mean
        out[i, 1] = z_mean
        out[i, 2] = b1_hat
        out[i, 3] = rss
        out[i, 4] = s_zz


@parallel_jit
def log_likelihood(theta: np.ndarray, stats: np.ndarray, out: np.ndarray) -> None:
    step = 0 if stats.shape[0] == 1 else 1  # one x for every theta, or one per theta
    for i in numba.prange(theta.shape[0]):
        j = i * step
        b0 = theta[i, 0]
        b1 = theta[i, 1]
        sigma = theta[i, 2]
        # sum of (e + DT b0 + DT b1 z)^2 = rss + DT^2 (b1 - b1_hat)^2 s_zz + N level^2:
        # three non-negative terms, so nothing cancels
        level = stats[j, 0] + DT * (b0 + b1 * stats[j, 1])
        slope = b1 - stats[j, 2]
        ssq = stats[j, 3] + DT * DT * slope * slope * stats[j, 4] + N_TRANSITIONS * level * level
        if not ssq < np.inf:  # overflow: the density underflows to 0
            out[i] = -np.inf
        else:
            out[i] = _LOG_NORM - N_TRANSITIONS * math.log(sigma) - ssq / (2.0 * DT * sigma * sigma)
