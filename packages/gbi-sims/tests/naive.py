"""Slow, plain-numpy reference implementations of the analytic tasks (no numba).

The simulators replay the exact random stream of ``gbi_sims._rng`` (SplitMix64,
one stream per global row index, Box–Muller normals) with numpy uint64
arithmetic, so a kernel and its reference see the same random numbers and
agree to rounding. They are written from the task definitions (DESIGN.md,
paper App. C), not from the kernels: SLCP through ``np.linalg.cholesky`` of S,
Lorenz-96 through ``np.roll``. The log-likelihoods use ``scipy.stats`` term by
term (lorenz96 transition by transition, without sufficient statistics).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

# -- the random stream -------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_ROW_STRIDE = np.uint64(0xD1B54A32D192ED03)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


class Streams:
    """SplitMix64 streams of rows ``rows`` under ``key``, advanced together.

    Args:
        key: the 64-bit stream key (``gbi_sims._rng.make_key(seed)``).
        rows: global row indices, shape (n,).
    """

    def __init__(self, key: np.uint64, rows: np.ndarray) -> None:
        with np.errstate(over="ignore"):
            start = np.asarray(rows, dtype=np.uint64) * _ROW_STRIDE + _GOLDEN
            self.state = _mix64(np.uint64(key) ^ start)

    def uniform(self) -> np.ndarray:
        """One double in (0, 1) per row, shape (n,)."""
        with np.errstate(over="ignore"):
            self.state = self.state + _GOLDEN
            z = _mix64(self.state)
        return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53

    def normal_pair(self) -> tuple[np.ndarray, np.ndarray]:
        """Two standard normals per row (Box–Muller), each shape (n,)."""
        u1 = self.uniform()
        u2 = self.uniform()
        r = np.sqrt(-2.0 * np.log(u1))
        return r * np.cos(2.0 * np.pi * u2), r * np.sin(2.0 * np.pi * u2)

    def normal(self) -> np.ndarray:
        """One standard normal per row: the first of a Box–Muller pair."""
        return self.normal_pair()[0]


def _streams(key: np.uint64, row_offset: int, n: int) -> Streams:
    return Streams(key, np.arange(row_offset, row_offset + n))


# -- simulators --------------------------------------------------------------


def simulate_two_moons(theta: np.ndarray, key: np.uint64, row_offset: int = 0) -> np.ndarray:
    s = _streams(key, row_offset, theta.shape[0])
    u = s.uniform()
    z = s.normal()
    alpha = np.pi * (u - 0.5)
    r = 0.1 + 0.01 * z
    p = np.stack([r * np.cos(alpha) + 0.25, r * np.sin(alpha)], axis=1)
    t1, t2 = theta[:, 0], theta[:, 1]
    shift = np.stack([-np.abs(t1 + t2) / np.sqrt(2.0), (-t1 + t2) / np.sqrt(2.0)], axis=1)
    return p + shift


def simulate_gaussian_mixture(theta: np.ndarray, key: np.uint64, row_offset: int = 0) -> np.ndarray:
    s = _streams(key, row_offset, theta.shape[0])
    wide = s.uniform() < 0.5
    z1, z2 = s.normal_pair()
    scale = np.where(wide, 1.0, 0.1)[:, None]
    return theta + scale * np.stack([z1, z2], axis=1)


def slcp_mean_cov(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (n, 2) and covariance (n, 2, 2) of one SLCP draw."""
    s1 = theta[:, 2] ** 2
    s2 = theta[:, 3] ** 2
    rho = np.tanh(theta[:, 4])
    cov = np.empty((theta.shape[0], 2, 2))
    cov[:, 0, 0] = s1**2
    cov[:, 1, 1] = s2**2
    cov[:, 0, 1] = cov[:, 1, 0] = rho * s1 * s2
    return theta[:, :2].copy(), cov


def simulate_slcp(theta: np.ndarray, key: np.uint64, row_offset: int = 0) -> np.ndarray:
    s = _streams(key, row_offset, theta.shape[0])
    mean, cov = slcp_mean_cov(theta)
    chol = np.linalg.cholesky(cov)  # lower triangular, (n, 2, 2)
    draws = []
    for _ in range(4):
        z = np.stack(s.normal_pair(), axis=1)
        draws.append(mean + np.einsum("nij,nj->ni", chol, z))
    return np.concatenate(draws, axis=1)  # draw by draw: (x1_1, x1_2, x2_1, ...)


L96_K = 8
L96_T = 20
L96_DT = 3.0 / 40.0


def lorenz96_field(x: np.ndarray) -> np.ndarray:
    """f(x)_k = -x_{k-1} (x_{k-2} - x_{k+1}) - x_k + 10, cyclic; x shape (..., K)."""
    return -np.roll(x, 1, axis=-1) * (np.roll(x, 2, axis=-1) - np.roll(x, -1, axis=-1)) - x + 10.0


def simulate_lorenz96(theta: np.ndarray, key: np.uint64, row_offset: int = 0) -> np.ndarray:
    n = theta.shape[0]
    s = _streams(key, row_offset, n)
    b0, b1, sigma = theta[:, :1], theta[:, 1:2], theta[:, 2:3]
    x = np.ones((n, L96_K))
    path = [x]
    for _ in range(L96_T):
        eps = np.empty((n, L96_K))
        for k in range(0, L96_K, 2):
            eps[:, k], eps[:, k + 1] = s.normal_pair()
        drift = lorenz96_field(x) - b0 - b1 * x
        x = x + L96_DT * drift - sigma * math.sqrt(L96_DT) * eps
        path.append(x)
    return np.concatenate(path, axis=1)


SIMULATORS = {
    "gaussian_mixture": simulate_gaussian_mixture,
    "lorenz96": simulate_lorenz96,
    "slcp": simulate_slcp,
    "two_moons": simulate_two_moons,
}


# -- log-likelihoods (scipy.stats) ------------------------------------------


def _pairs(theta: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.broadcast_to(x, (theta.shape[0], x.shape[1]))
    return theta, x


def log_likelihood_two_moons(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    theta, x = _pairs(theta, x)
    t1, t2 = theta[:, 0], theta[:, 1]
    u = x[:, 0] + np.abs(t1 + t2) / np.sqrt(2.0) - 0.25
    v = x[:, 1] - (-t1 + t2) / np.sqrt(2.0)
    r = np.hypot(u, v)
    with np.errstate(divide="ignore"):
        inside = stats.norm.logpdf(r, loc=0.1, scale=0.01) - np.log(np.pi * r)
    return np.where(u > 0, inside, -np.inf)


def log_likelihood_gaussian_mixture(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    theta, x = _pairs(theta, x)
    wide = stats.norm.logpdf(x, loc=theta, scale=1.0).sum(axis=1)
    narrow = stats.norm.logpdf(x, loc=theta, scale=0.1).sum(axis=1)
    return np.logaddexp(np.log(0.5) + wide, np.log(0.5) + narrow)


def log_likelihood_slcp(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Each draw as x[0] ~ N(m_1, s_1^2), then x[1] | x[0] ~ N(m_2 + rho s_2 a, s_2^2 (1 - rho^2)).

    (scipy's multivariate_normal declares the very elongated S of the prior's
    corners singular, so the bivariate density is factored by conditioning.)
    """
    theta, x = _pairs(theta, x)
    draws = x.reshape(x.shape[0], 4, 2)
    m1, m2 = theta[:, 0, None], theta[:, 1, None]
    s1, s2 = theta[:, 2, None] ** 2, theta[:, 3, None] ** 2
    rho = np.tanh(theta[:, 4, None])
    a = (draws[:, :, 0] - m1) / s1
    first = stats.norm.logpdf(draws[:, :, 0], loc=m1, scale=s1)
    second = stats.norm.logpdf(
        draws[:, :, 1], loc=m2 + rho * s2 * a, scale=s2 * np.sqrt(1.0 - rho**2)
    )
    return (first + second).sum(axis=1)


def log_likelihood_slcp_multivariate(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The same through scipy.stats.multivariate_normal (well-conditioned S only)."""
    theta, x = _pairs(theta, x)
    mean, cov = slcp_mean_cov(theta)
    out = np.empty(theta.shape[0])
    for i in range(theta.shape[0]):
        dist = stats.multivariate_normal(mean=mean[i], cov=cov[i])
        out[i] = dist.logpdf(x[i].reshape(4, 2)).sum()
    return out


def lorenz96_transitions(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """States before and after each step: x_t and x_{t+1}, each (n, T, K)."""
    path = x.reshape(x.shape[0], L96_T + 1, L96_K)
    return path[:, :-1], path[:, 1:]


def log_likelihood_lorenz96(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    theta, x = _pairs(theta, x)
    before, after = lorenz96_transitions(x)
    b0 = theta[:, 0, None, None]
    b1 = theta[:, 1, None, None]
    sigma = theta[:, 2, None, None]
    mean = before + L96_DT * (lorenz96_field(before) - b0 - b1 * before)
    return stats.norm.logpdf(after, loc=mean, scale=sigma * np.sqrt(L96_DT)).sum(axis=(1, 2))


def lorenz96_statistics(x: np.ndarray) -> np.ndarray:
    """(e_mean, z_mean, b1_hat, rss, s_zz) per row of x (n, 168), shape (n, 5).

    b1_hat by ``np.linalg.lstsq`` of -e / dt on (1, z); rss from its residuals.
    """
    before, after = lorenz96_transitions(x)
    e = (after - before - L96_DT * lorenz96_field(before)).reshape(x.shape[0], -1)
    z = before.reshape(x.shape[0], -1)
    out = np.empty((x.shape[0], 5))
    for i in range(x.shape[0]):
        design = np.stack([np.ones_like(z[i]), z[i]], axis=1)
        (b0_hat, b1_hat), *_ = np.linalg.lstsq(design, -e[i] / L96_DT, rcond=None)
        residual = e[i] + L96_DT * (b0_hat + b1_hat * z[i])
        out[i] = [e[i].mean(), z[i].mean(), b1_hat, (residual**2).sum(), z[i].var() * z.shape[1]]
    return out


def lorenz96_residuals(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Standardized Euler–Maruyama increments eps_{t,k}, shape (n, T, K); N(0, 1) iid."""
    before, after = lorenz96_transitions(x)
    b0 = theta[:, 0, None, None]
    b1 = theta[:, 1, None, None]
    sigma = theta[:, 2, None, None]
    drift = lorenz96_field(before) - b0 - b1 * before
    return -(after - before - L96_DT * drift) / (sigma * np.sqrt(L96_DT))


LOG_LIKELIHOODS = {
    "gaussian_mixture": log_likelihood_gaussian_mixture,
    "lorenz96": log_likelihood_lorenz96,
    "slcp": log_likelihood_slcp,
    "two_moons": log_likelihood_two_moons,
}
