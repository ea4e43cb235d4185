"""Numba kernels of hodgkin_huxley (private; see gbi_sims.hodgkin_huxley).

One row = one membrane trace integrated by exponential Euler, driven by the
row's own random stream (``row_state(key, row)``, one standard normal per step,
drawn in Box–Muller pairs). ``simulate_statistics`` integrates each row into a
per-worker trace buffer and reduces it to the 7 summary statistics, so memory
is (workers, T) whatever the batch size; ``simulate_traces`` writes the traces
themselves. Both call ``integrate`` with the same stream, so the statistics of
the traces equal the statistics of ``simulate_statistics`` row for row.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from gbi_sims._jit import jit, parallel_jit
from gbi_sims._rng import normal_pair, row_state

C_M = 1.0  # membrane capacitance, uF/cm^2
E_NA = 53.0  # mV
E_K = -107.0  # mV
#: exponent arguments are clipped to [EXP_MIN, EXP_MAX] so no overflow reaches the state
EXP_MIN = -500.0
EXP_MAX = 500.0
SPIKE_THRESHOLD = -10.0  # mV
REFRACTORY = 0.5  # ms
N_STATISTICS = 7


@jit
def _clip(z: float) -> float:
    return min(max(z, EXP_MIN), EXP_MAX)


@jit
def _exp(z: float) -> float:
    """exp(z) with the argument clipped to [EXP_MIN, EXP_MAX]."""
    return math.exp(_clip(z))


@jit
def _z_over_expm1(z: float) -> float:
    """z / (exp(z) - 1), continuous at z = 0 (value 1); argument clipped like ``_exp``."""
    z = _clip(z)
    if z == 0.0:
        return 1.0
    return z / math.expm1(z)


@jit
def rates(v: float, v_t: float) -> tuple[float, float, float, float, float, float]:
    """Pospischil et al. (2008) Na and K rate functions (1/ms), shifted by V_T.

    Returns (alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n) at voltage ``v``.
    The removable singularities u / (1 - exp(-u / s)) are written as
    s * z / (exp(z) - 1) with z = -u / s.
    """
    u = v - v_t
    alpha_m = 1.28 * _z_over_expm1(-(u - 13.0) / 4.0)  # 0.32 (u-13) / (1 - exp(-(u-13)/4))
    beta_m = 1.4 * _z_over_expm1((u - 40.0) / 5.0)  # 0.28 (u-40) / (exp((u-40)/5) - 1)
    alpha_h = 0.128 * _exp(-(u - 17.0) / 18.0)
    beta_h = 4.0 / (1.0 + _exp(-(u - 40.0) / 5.0))
    alpha_n = 0.16 * _z_over_expm1(-(u - 15.0) / 5.0)  # 0.032 (u-15) / (1 - exp(-(u-15)/5))
    beta_n = 0.5 * _exp(-(u - 10.0) / 40.0)
    return alpha_m, beta_m, alpha_h, beta_h, alpha_n, beta_n


@jit
def m_type(v: float, tau_max: float) -> tuple[float, float]:
    """M-current gate: (p_inf, 1 / tau_p) at voltage ``v`` (not shifted by V_T)."""
    # one exponential: e = exp(a), a = 0.05 (v + 35) clipped to [EXP_MIN/2, EXP_MAX/2]
    e = math.exp(min(max(0.05 * (v + 35.0), 0.5 * EXP_MIN), 0.5 * EXP_MAX))
    e_inv = 1.0 / e
    p_inf = 1.0 / (1.0 + e_inv * e_inv)  # 1 / (1 + exp(-(v + 35) / 10))
    rate = (3.3 * e + e_inv) / tau_max
    return p_inf, rate


@jit
def integrate(
    g_na: float,
    g_k: float,
    g_leak: float,
    g_m: float,
    tau_max: float,
    v_t: float,
    noise: float,
    e_leak: float,
    current: np.ndarray,
    dt: float,
    v0: float,
    state: np.uint64,
    trace: np.ndarray,
) -> int:
    """Integrate one trace into ``trace`` (T,) by exponential Euler.

    Sample 0 is ``v0`` with every gate at its steady state for ``v0``; step k
    (sample k -> k + 1) uses ``current[k]`` and the k-th normal draw z_k:

        g      = g_Na m^3 h + g_K n^4 + g_M p + g_leak
        V_inf  = (g_Na m^3 h E_Na + (g_K n^4 + g_M p) E_K + g_leak E_leak
                  + I_k + noise z_k / sqrt(dt)) / g
        V'     = V_inf + (V - V_inf) exp(-dt g / C)

    then every gate x moves to x_inf(V') + (x - x_inf(V')) exp(-dt / tau_x(V')).

    Returns:
        The number of samples written: T, or the index of the first non-finite
        voltage (that sample and all later ones are set to NaN).
    """
    n_samples = trace.shape[0]
    a_m, b_m, a_h, b_h, a_n, b_n = rates(v0, v_t)
    m = a_m / (a_m + b_m)
    h = a_h / (a_h + b_h)
    n = a_n / (a_n + b_n)
    p, _ = m_type(v0, tau_max)
    v = v0
    trace[0] = v
    noise_scale = noise / math.sqrt(dt)
    z_spare = 0.0
    for k in range(n_samples - 1):
        if k % 2 == 0:
            state, z, z_spare = normal_pair(state)
        else:
            z = z_spare
        g_na_t = g_na * (m * m * m) * h
        n2 = n * n
        g_k_t = g_k * (n2 * n2) + g_m * p
        g_tot = g_na_t + g_k_t + g_leak
        v_inf = (
            g_na_t * E_NA + g_k_t * E_K + g_leak * e_leak + current[k] + noise_scale * z
        ) / g_tot
        v = v_inf + (v - v_inf) * math.exp(-dt * g_tot / C_M)
        if not math.isfinite(v):
            for j in range(k + 1, n_samples):
                trace[j] = np.nan
            return k + 1
        trace[k + 1] = v
        a_m, b_m, a_h, b_h, a_n, b_n = rates(v, v_t)
        s = a_m + b_m
        x_inf = a_m / s
        m = x_inf + (m - x_inf) * math.exp(-dt * s)
        s = a_h + b_h
        x_inf = a_h / s
        h = x_inf + (h - x_inf) * math.exp(-dt * s)
        s = a_n + b_n
        x_inf = a_n / s
        n = x_inf + (n - x_inf) * math.exp(-dt * s)
        p_inf, s = m_type(v, tau_max)
        p = p_inf + (p - p_inf) * math.exp(-dt * s)
    return n_samples


@jit
def trace_statistics(
    v: np.ndarray, dt: float, n_rest: int, w0: int, w1: int, out: np.ndarray
) -> None:
    """The 7 summary statistics of one finite trace ``v`` (T,) into ``out`` (7,).

    A statistic that overflows to +-inf (a trace of astronomically large but
    finite voltages) makes the whole row NaN, like a diverged run.

    Samples [0, n_rest) lie before t_on, samples [w0, w1) strictly inside
    (t_on, t_off). See ``gbi_sims.hodgkin_huxley.statistics`` for the definitions
    (its numpy ``summary_statistics`` is the reference for this function).
    """
    n_samples = v.shape[0]
    # 1. spike count: local maxima above threshold, refractory against the
    #    previous detected peak in the window
    count = 0
    last = -1
    for k in range(max(w0, 1), min(w1, n_samples - 1)):
        vk = v[k]
        if vk > SPIKE_THRESHOLD and vk >= v[k - 1] and vk > v[k + 1]:
            if last < 0 or (k - last) * dt > REFRACTORY:
                count += 1
            last = k
    out[0] = count
    # 2.-3. resting potential: mean before t_on, std (ddof 0) of the last 10 %
    total = 0.0
    for k in range(n_rest):
        total += v[k]
    out[1] = total / n_rest
    start = n_rest - max(1, n_rest // 10)
    total = 0.0
    for k in range(start, n_rest):
        total += v[k]
    mu = total / (n_rest - start)
    total = 0.0
    for k in range(start, n_rest):
        d = v[k] - mu
        total += d * d
    out[2] = math.sqrt(total / (n_rest - start))
    # 4.-7. stimulus window: mean, variance, skewness, kurtosis (biased, not excess)
    n_win = w1 - w0
    total = 0.0
    lo = v[w0]
    hi = v[w0]
    for k in range(w0, w1):
        total += v[k]
        lo = min(lo, v[k])
        hi = max(hi, v[k])
    mu = total / n_win
    s2 = 0.0
    s3 = 0.0
    s4 = 0.0
    for k in range(w0, w1):
        d = v[k] - mu
        d2 = d * d
        s2 += d2
        s3 += d2 * d
        s4 += d2 * d2
    out[3] = mu
    if lo == hi:  # flat window: std 0, standardized moments undefined
        out[4] = 0.0
        out[5] = np.nan
        out[6] = np.nan
    else:
        m2 = s2 / n_win
        out[4] = m2
        out[5] = (s3 / n_win) / (m2 * math.sqrt(m2))
        out[6] = (s4 / n_win) / (m2 * m2)
    for j in range(1, N_STATISTICS):
        if math.isinf(out[j]):  # finite but astronomically large voltages: diverged too
            for i in range(N_STATISTICS):
                out[i] = np.nan
            break


@jit
def _simulate_row(
    theta: np.ndarray,
    current: np.ndarray,
    dt: float,
    v0: float,
    state: np.uint64,
    trace: np.ndarray,
) -> int:
    return integrate(
        theta[0],
        theta[1],
        theta[2],
        theta[3],
        theta[4],
        -theta[5],  # V_T = -theta_6
        theta[6],
        -theta[7],  # E_leak = -theta_8
        current,
        dt,
        v0,
        state,
        trace,
    )


@parallel_jit
def simulate_statistics(
    theta: np.ndarray,
    current: np.ndarray,
    dt: float,
    v0: float,
    n_rest: int,
    w0: int,
    w1: int,
    key: np.uint64,
    row_offset: int,
    buffers: np.ndarray,
    out: np.ndarray,
) -> None:
    """Statistics ``out`` (n, 7) for ``theta`` (n, 8); ``buffers`` (workers, T) is scratch.

    Worker w simulates rows w, w + workers, ... into ``buffers[w]``; a row's
    numbers depend only on (key, row_offset + row), not on the worker. A
    diverged row is all NaN.
    """
    n = theta.shape[0]
    n_workers = buffers.shape[0]
    n_samples = buffers.shape[1]
    for w in numba.prange(n_workers):
        trace = buffers[w]
        for i in range(w, n, n_workers):
            state = row_state(key, row_offset + i)
            written = _simulate_row(theta[i], current, dt, v0, state, trace)
            if written < n_samples:
                for j in range(out.shape[1]):
                    out[i, j] = np.nan
            else:
                trace_statistics(trace, dt, n_rest, w0, w1, out[i])


@parallel_jit
def simulate_traces(
    theta: np.ndarray,
    current: np.ndarray,
    dt: float,
    v0: float,
    key: np.uint64,
    row_offset: int,
    out: np.ndarray,
) -> None:
    """Voltage traces ``out`` (n, T) for ``theta`` (n, 8); diverged tails are NaN."""
    for i in numba.prange(theta.shape[0]):
        state = row_state(key, row_offset + i)
        _simulate_row(theta[i], current, dt, v0, state, out[i])
