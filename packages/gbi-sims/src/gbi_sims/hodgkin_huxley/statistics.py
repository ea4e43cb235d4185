"""The 7 summary statistics of a membrane-voltage trace (Goncalves et al. 2020).

A trace ``v`` of T samples has sample k at time t_k = k dt (ms). With the
stimulus on over (t_on, t_off):

1. spike count: samples k with t_on < t_k < t_off that are local maxima above
   -10 mV (``v[k] > -10``, ``v[k] >= v[k-1]``, ``v[k] > v[k+1]``); a peak is
   counted only if it comes more than 0.5 ms after the previous detected peak
   in the window (counted or not), so a noisy double peak counts once;
2. resting-potential mean: all samples with t_k < t_on;
3. resting-potential std (ddof 0): the last 10 % (at least one) of those samples;
4. mean, 5. variance (not standardized), 6. skewness and 7. kurtosis
   (standardized, biased, NOT excess: no -3) of the samples with t_on < t_k < t_off.

No log transforms. A trace with no spike has count 0. A flat stimulus window
(all samples equal: std 0) has variance 0 and NaN skewness and kurtosis; a
trace with a non-finite sample (a diverged simulation), or whose statistics
overflow to +-inf, gives a NaN row. The simulator kernel reduces each
simulated trace with the same definitions
(``gbi_sims._kernels.hodgkin_huxley.trace_statistics``); this numpy version is
for recorded traces and is the reference the kernel is tested against.
"""

from __future__ import annotations

import math

import numpy as np

#: the order of the statistics in x
STATISTIC_NAMES: tuple[str, ...] = (
    "spike_count",
    "rest_mean",
    "rest_std",
    "stim_mean",
    "stim_var",
    "stim_skewness",
    "stim_kurtosis",
)
SPIKE_THRESHOLD_MV = -10.0
REFRACTORY_MS = 0.5
#: tolerance (in samples) when a time falls on a sample: t_k == t_on is not "after t_on"
_ON_GRID_TOL = 1e-6


def sample_windows(n_samples: int, dt: float, t_on: float, t_off: float) -> tuple[int, int, int]:
    """Sample ranges of a T-sample trace: rest [0, n_rest) and stimulus [w0, w1).

    Sample k sits at t_k = k dt. Rest: t_k < t_on. Stimulus: t_on < t_k < t_off
    (a sample within 1e-6 dt of t_on or t_off is on the boundary, so excluded).

    Args:
        n_samples: T, the number of samples of the trace.
        dt: sampling step in ms, > 0.
        t_on: stimulus start in ms, > 0.
        t_off: stimulus end in ms, > t_on.

    Returns:
        (n_rest, w0, w1), with 1 <= n_rest <= w0 < w1 <= T.

    Raises:
        ValueError: no sample before t_on or none strictly inside (t_on, t_off).
    """
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a positive finite number of ms, got {dt}")
    if not (math.isfinite(t_on) and math.isfinite(t_off) and 0 < t_on < t_off):
        raise ValueError(f"expected 0 < t_on < t_off (ms), got t_on={t_on}, t_off={t_off}")
    n_rest = min(math.ceil(t_on / dt - _ON_GRID_TOL), n_samples)
    w0 = math.floor(t_on / dt + _ON_GRID_TOL) + 1
    w1 = min(math.ceil(t_off / dt - _ON_GRID_TOL), n_samples)
    if n_rest < 1 or w1 - w0 < 1:
        raise ValueError(
            f"a trace of {n_samples} samples at dt={dt} ms needs samples before t_on={t_on} "
            f"and strictly inside (t_on, t_off=({t_on}, {t_off}); it covers "
            f"[0, {(n_samples - 1) * dt:g}] ms"
        )
    return n_rest, w0, w1


def summary_statistics(voltage: np.ndarray, dt: float, t_on: float, t_off: float) -> np.ndarray:
    """The 7 summary statistics of one or several voltage traces (numpy).

    Args:
        voltage: trace(s) in mV, shape (T,) or (n, T); sample k at t = k dt.
        dt: sampling step in ms.
        t_on: stimulus start in ms (a recording's own t_on).
        t_off: stimulus end in ms.

    Returns:
        shape (7,) for one trace or (n, 7), float64, in the order of
        ``STATISTIC_NAMES``. Rows with a non-finite voltage are NaN; a flat
        stimulus window gives NaN skewness and kurtosis.

    Example:
        >>> t = np.arange(0, 30.0, 0.1)
        >>> v = -70.0 + 2.0 * np.sin(t)
        >>> v[150] = 20.0  # one spike at 15 ms
        >>> x = summary_statistics(v, dt=0.1, t_on=10.0, t_off=25.0)
        >>> x.shape, x[0]
        ((7,), np.float64(1.0))
    """
    v = np.asarray(voltage, dtype=np.float64)
    if v.ndim not in (1, 2) or v.shape[-1] < 3:
        raise ValueError(
            f"voltage must have shape (T,) or (n, T) with T >= 3 samples, got {v.shape}"
        )
    single = v.ndim == 1
    v = np.atleast_2d(v)
    n_rest, w0, w1 = sample_windows(v.shape[1], float(dt), float(t_on), float(t_off))
    out = np.empty((v.shape[0], len(STATISTIC_NAMES)), dtype=np.float64)
    # a diverged simulation may hold huge finite values: overflow gives inf, then NaN rows
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        out[:, 0] = spike_counts(v, float(dt), w0, w1)
        rest = v[:, :n_rest]
        out[:, 1] = rest.mean(axis=1)
        out[:, 2] = rest[:, n_rest - max(1, n_rest // 10) :].std(axis=1)
        window = v[:, w0:w1]
        mean = window.mean(axis=1)
        d = window - mean[:, None]
        d2 = d * d
        m2 = d2.mean(axis=1)
        m3 = (d2 * d).mean(axis=1)
        m4 = (d2 * d2).mean(axis=1)
        flat = np.ptp(window, axis=1) == 0
        skew = m3 / (m2 * np.sqrt(m2))
        kurt = m4 / (m2 * m2)
    out[:, 3] = mean
    out[:, 4] = np.where(flat, 0.0, m2)
    out[:, 5] = np.where(flat, np.nan, skew)
    out[:, 6] = np.where(flat, np.nan, kurt)
    diverged = np.any(np.isinf(out), axis=1) | ~np.all(np.isfinite(v), axis=1)
    out[diverged] = np.nan
    return out[0] if single else out


def spike_counts(v: np.ndarray, dt: float, w0: int, w1: int) -> np.ndarray:
    """Spike counts of traces ``v`` (n, T) over the stimulus samples [w0, w1); shape (n,)."""
    lo = max(w0, 1)
    hi = min(w1, v.shape[1] - 1)
    counts = np.zeros(v.shape[0], dtype=np.float64)
    if hi <= lo:
        return counts
    mid = v[:, lo:hi]
    peak = (
        (mid > SPIKE_THRESHOLD_MV) & (mid >= v[:, lo - 1 : hi - 1]) & (mid > v[:, lo + 1 : hi + 1])
    )
    for row in range(v.shape[0]):
        k = np.flatnonzero(peak[row])
        if k.size:
            counts[row] = 1 + np.count_nonzero(np.diff(k) * dt > REFRACTORY_MS)
    return counts
