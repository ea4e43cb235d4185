"""A slow, step-by-step plain-numpy Hodgkin–Huxley reference for the tests.

Written from the equations (Pospischil et al. 2008 as in DESIGN.md), not from
the kernel: every rate function is the textbook formula, every gate is stored
as a full time series, and the exponential-Euler update is spelled out. The
noise is driven by the same counter-based stream as the kernel (one normal per
step, drawn in Box–Muller pairs from ``row_state(key, row)``), so the two can
be compared number for number.
"""

from __future__ import annotations

import numpy as np

from gbi_sims._rng import normal_pair, row_state

E_NA, E_K, C = 53.0, -107.0, 1.0


def _exp(z: float) -> float:
    return float(np.exp(np.clip(z, -500.0, 500.0)))


def _vtrap(u: float, s: float) -> float:
    """u / (1 - exp(-u / s)), with its limit s at u = 0."""
    if abs(u / s) < 1e-12:
        return s * (1.0 + u / (2.0 * s))
    return u / (1.0 - _exp(-u / s))


def gate_rates(v: float, v_t: float, tau_max: float) -> dict[str, tuple[float, float]]:
    """(x_inf, tau_x) of every gate at voltage v."""
    alpha_m = 0.32 * _vtrap(v - v_t - 13.0, 4.0)
    beta_m = 0.28 * _vtrap(-(v - v_t - 40.0), 5.0)  # 0.28 u / (exp(u/5) - 1), u = v - v_t - 40
    alpha_h = 0.128 * _exp(-(v - v_t - 17.0) / 18.0)
    beta_h = 4.0 / (1.0 + _exp(-(v - v_t - 40.0) / 5.0))
    alpha_n = 0.032 * _vtrap(v - v_t - 15.0, 5.0)
    beta_n = 0.5 * _exp(-(v - v_t - 10.0) / 40.0)
    p_inf = 1.0 / (1.0 + _exp(-(v + 35.0) / 10.0))
    tau_p = tau_max / (3.3 * _exp(0.05 * (v + 35.0)) + _exp(-0.05 * (v + 35.0)))
    out = {}
    for name, (a, b) in {
        "m": (alpha_m, beta_m),
        "h": (alpha_h, beta_h),
        "n": (alpha_n, beta_n),
    }.items():
        out[name] = (a / (a + b), 1.0 / (a + b))
    out["p"] = (p_inf, tau_p)
    return out


def simulate_trace(
    theta: np.ndarray, current: np.ndarray, dt: float, v0: float, key: np.uint64, row: int
) -> np.ndarray:
    """One voltage trace, shape (T,), for theta (8,) as row ``row`` of stream ``key``."""
    g_na, g_k, g_leak, g_m, tau_max, minus_vt, noise, minus_el = (float(t) for t in theta)
    v_t, e_leak = -minus_vt, -minus_el
    n_samples = current.shape[0]
    v = np.empty(n_samples)
    gates = {name: np.empty(n_samples) for name in "mhnp"}
    v[0] = v0
    for name, (x_inf, _) in gate_rates(v0, v_t, tau_max).items():
        gates[name][0] = x_inf
    state = np.uint64(row_state(key, np.int64(row)))
    z = np.empty(n_samples + 1)
    for k in range(0, n_samples, 2):
        state, z[k], z[k + 1] = normal_pair(state)
        state = np.uint64(state)
    for k in range(n_samples - 1):
        m, h, n, p = (gates[name][k] for name in "mhnp")
        g_na_t = g_na * m**3 * h
        g_k_t = g_k * n**4
        g_m_t = g_m * p
        g_tot = g_na_t + g_k_t + g_m_t + g_leak
        v_inf = (
            g_na_t * E_NA
            + g_k_t * E_K
            + g_m_t * E_K
            + g_leak * e_leak
            + current[k]
            + noise * z[k] / np.sqrt(dt)
        ) / g_tot
        tau_v = C / g_tot
        v[k + 1] = v_inf + (v[k] - v_inf) * np.exp(-dt / tau_v)
        for name, (x_inf, tau_x) in gate_rates(v[k + 1], v_t, tau_max).items():
            gates[name][k + 1] = x_inf + (gates[name][k] - x_inf) * np.exp(-dt / tau_x)
    return v
