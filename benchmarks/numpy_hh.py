"""Plain-numpy Hodgkin–Huxley baseline for the speed benchmark.

The same model and integration scheme as ``gbi_sims`` (DESIGN.md,
hodgkin_huxley): exponential Euler for V and every gate, noise * N(0, 1) /
sqrt(dt) inside V_inf, gates at steady state for V_0, exponent arguments
clipped to [-500, 500]. Vectorized over the batch with a Python loop over time
steps, randomness from ``numpy.random.Generator`` (so the numbers differ from
the Numba kernel's counter-based stream; the distribution is the same). Traces
are kept per chunk of rows and reduced with ``gbi_sims.hodgkin_huxley.summary_statistics``.

Example:
    >>> from gbi_sims.hodgkin_huxley import TRUE_THETA, synthetic_protocol
    >>> x = simulate_numpy_hh(np.array([TRUE_THETA]), synthetic_protocol(), seed=0)
    >>> x.shape
    (1, 7)
"""

from __future__ import annotations

import numpy as np

from gbi_sims.hodgkin_huxley import Protocol, summary_statistics

E_NA, E_K, C_M = 53.0, -107.0, 1.0
EXP_MIN, EXP_MAX = -500.0, 500.0


def _exp(z: np.ndarray) -> np.ndarray:
    return np.exp(np.clip(z, EXP_MIN, EXP_MAX))


def _z_over_expm1(z: np.ndarray) -> np.ndarray:
    """z / (exp(z) - 1), 1 at z = 0; argument clipped like ``_exp``."""
    z = np.clip(z, EXP_MIN, EXP_MAX)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(z == 0.0, 1.0, z / np.expm1(z))


def _gates(v: np.ndarray, v_t: np.ndarray, tau_max: np.ndarray) -> tuple[np.ndarray, ...]:
    """Steady states and rates (1 / tau) of m, h, n, p at voltages v, shape (n,) each."""
    u = v - v_t
    alpha_m = 1.28 * _z_over_expm1(-(u - 13.0) / 4.0)
    beta_m = 1.4 * _z_over_expm1((u - 40.0) / 5.0)
    alpha_h = 0.128 * _exp(-(u - 17.0) / 18.0)
    beta_h = 4.0 / (1.0 + _exp(-(u - 40.0) / 5.0))
    alpha_n = 0.16 * _z_over_expm1(-(u - 15.0) / 5.0)
    beta_n = 0.5 * _exp(-(u - 10.0) / 40.0)
    rate_m, rate_h, rate_n = alpha_m + beta_m, alpha_h + beta_h, alpha_n + beta_n
    a = 0.05 * (v + 35.0)
    p_inf = 1.0 / (1.0 + _exp(-2.0 * a))
    rate_p = (3.3 * _exp(a) + _exp(-a)) / tau_max
    return (
        alpha_m / rate_m, rate_m,
        alpha_h / rate_h, rate_h,
        alpha_n / rate_n, rate_n,
        p_inf, rate_p,
    )  # fmt: skip


def simulate_numpy_traces(
    theta: np.ndarray, protocol: Protocol, rng: np.random.Generator
) -> np.ndarray:
    """Voltage traces, shape (n, T), for theta (n, 8) on ``protocol``."""
    n = theta.shape[0]
    g_na, g_k, g_leak, g_m, tau_max = (theta[:, j] for j in range(5))
    v_t, noise, e_leak = -theta[:, 5], theta[:, 6], -theta[:, 7]
    dt = protocol.dt
    traces = np.empty((n, protocol.n_samples))
    v = np.full(n, protocol.v0)
    traces[:, 0] = v
    m, _, h, _, nk, _, p, _ = _gates(v, v_t, tau_max)
    noise_scale = noise / np.sqrt(dt)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(protocol.n_samples - 1):
            g_na_t = g_na * m**3 * h
            g_k_t = g_k * nk**4 + g_m * p
            g_tot = g_na_t + g_k_t + g_leak
            v_inf = (
                g_na_t * E_NA
                + g_k_t * E_K
                + g_leak * e_leak
                + protocol.current[k]
                + noise_scale * rng.standard_normal(n)
            ) / g_tot
            v = v_inf + (v - v_inf) * np.exp(-dt * g_tot / C_M)
            traces[:, k + 1] = v
            m_inf, r_m, h_inf, r_h, n_inf, r_n, p_inf, r_p = _gates(v, v_t, tau_max)
            m = m_inf + (m - m_inf) * np.exp(-dt * r_m)
            h = h_inf + (h - h_inf) * np.exp(-dt * r_h)
            nk = n_inf + (nk - n_inf) * np.exp(-dt * r_n)
            p = p_inf + (p - p_inf) * np.exp(-dt * r_p)
    return traces


def simulate_numpy_hh(
    theta: np.ndarray,
    protocol: Protocol,
    seed: int | np.random.Generator,
    *,
    chunk_size: int = 1024,
) -> np.ndarray:
    """The 7 summary statistics for each row of theta, plain numpy.

    Args:
        theta: shape (n, 8), (g_Na, g_K, g_leak, g_M, tau_max, -V_T, noise, -E_leak).
        protocol: a ``gbi_sims.hodgkin_huxley.Protocol``.
        seed: int or ``numpy.random.Generator``.
        chunk_size: rows integrated together; memory is chunk_size * T floats.

    Returns:
        x, shape (n, 7), float64; diverged rows are NaN.
    """
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 2 or theta.shape[1] != 8:
        raise ValueError(f"theta must have shape (n, 8) for hodgkin_huxley, got {theta.shape}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int, got {chunk_size}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out = np.empty((theta.shape[0], 7))
    for start in range(0, theta.shape[0], chunk_size):
        block = theta[start : start + chunk_size]
        traces = simulate_numpy_traces(block, protocol, rng)
        out[start : start + block.shape[0]] = summary_statistics(
            traces, protocol.dt, protocol.t_on, protocol.t_off
        )
    return out
