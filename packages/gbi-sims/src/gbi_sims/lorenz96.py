"""lorenz96: a stochastic Lorenz-96 system (Lorenz 1996; paper App. C.4, DESIGN.md).

The model is the Euler–Maruyama discretization itself (K = 8, dt = 3/40,
T = 20 steps, x_0 = 1_K):

    x_{t+1} = x_t + dt (f(x_t) - b_0 - b_1 x_t) - sigma_e sqrt(dt) eps_t,
    eps_t ~ N(0, I_K) iid,
    f(x)_k = -x_{k-1} (x_{k-2} - x_{k+1}) - x_k + 10      (cyclic indices)

with theta = (b_0, b_1, sigma_e) and prior b_0 ~ U[1.4, 2.2],
b_1 ~ U[0.1, 1.0], sigma_e ~ U[1.5, 2.5]. x = (x_0, ..., x_T) flattened state
by state, 168 values; x_0 is the constant 1_K, kept so that x is the whole path.

Exact likelihood: each transition is Gaussian,
x_{t+1,k} | x_t ~ N(x_{t,k} + dt (f(x_t)_k - b_0 - b_1 x_{t,k}), sigma_e^2 dt). With
e_{t,k} = x_{t+1,k} - x_{t,k} - dt f(x_t)_k and z_{t,k} = x_{t,k} over the
N = T K = 160 transitions,

    log p(x | theta) = -N/2 log(2 pi dt) - N log sigma_e
                       - sum_{t,k} (e_{t,k} + dt b_0 + dt b_1 z_{t,k})^2 / (2 sigma_e^2 dt).

The sum is a quadratic in (b_0, b_1) whose coefficients are five sufficient
statistics of x (``sufficient_statistics``). With the means e_mean, z_mean,
s_zz = sum (z - z_mean)^2, the least-squares slope
b1_hat = -sum (e - e_mean)(z - z_mean) / (dt s_zz) and the residual sum of
squares rss = sum ((e - e_mean) + dt b1_hat (z - z_mean))^2,

    sum (...)^2 = rss + dt^2 (b_1 - b1_hat)^2 s_zz + N (e_mean + dt (b_0 + b_1 z_mean))^2,

the usual regression decomposition. Its three terms are non-negative, so
nothing cancels, and ``log_likelihood(theta, x)`` for one x and many theta
computes the statistics once and then costs O(1) per theta. The likelihood is
the product of the transitions given the x_0 found in x (x_0 carries no
information about theta); it equals the full density when x_0 = 1_K, as every
simulated x has.

Blow-up: the explicit scheme is unstable for small b_1 and large sigma_e;
about a quarter of prior draws reach |x| > 100 and ~3 % exceed 1e10 (they stay
finite in 20 steps; a row that overflows becomes a NaN row, counted by
``count_failed``). On such paths float64 rounding of x itself (relative 1e-16
of |x|) dominates every residual, so any evaluation of the likelihood, this one
or a transition-by-transition one, is only as accurate as that rounding.

References: Lorenz, "Predictability: a problem partly solved", Proc. Seminar
on Predictability, ECMWF 1996; paper App. C.4, with DESIGN.md's precision that the
Euler–Maruyama discretization is the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import ClassVar, NamedTuple

import numpy as np

from gbi_sims._kernels import lorenz96 as _k
from gbi_sims._registry import register_task
from gbi_sims._task import Task
from gbi_sims._validation import as_batch
from gbi_sims.prior import BoxUniform

#: state dimension
K = _k.K
#: number of Euler–Maruyama steps
T = _k.T
#: step size
DT = _k.DT
#: number of Gaussian transitions in one x, T * K
N_TRANSITIONS = _k.N_TRANSITIONS
#: length of x, (T + 1) * K
X_DIM = (T + 1) * K


class SufficientStatistics(NamedTuple):
    """The five numbers of an x that the lorenz96 likelihood depends on.

    Over the ``N_TRANSITIONS`` transitions (t, k), with
    e = x_{t+1,k} - x_{t,k} - dt f(x_t)_k and z = x_{t,k}. Each field is a float
    for one x of shape (168,), or shape (n,) for x of shape (n, 168).

    Attributes:
        e_mean: mean of e.
        z_mean: mean of z.
        b1_hat: least-squares slope of e ~ -dt (b_0 + b_1 z),
            -sum (e - e_mean)(z - z_mean) / (dt s_zz); 0 where z is constant.
        rss: sum of ((e - e_mean) + dt b1_hat (z - z_mean))^2.
        s_zz: sum of (z - z_mean)^2.
    """

    e_mean: np.ndarray | float
    z_mean: np.ndarray | float
    b1_hat: np.ndarray | float
    rss: np.ndarray | float
    s_zz: np.ndarray | float


def _statistics_array(x: np.ndarray) -> np.ndarray:
    """Statistics of validated x (m, 168) as an array (m, 5), fields in order."""
    out = np.empty((x.shape[0], _k.N_STATISTICS), dtype=np.float64)
    _k.statistics(x, out)
    return out


def sufficient_statistics(x: np.ndarray) -> SufficientStatistics:
    """Sufficient statistics of lorenz96 paths for the parameters theta.

    Args:
        x: one path, shape (168,), or a batch, shape (n, 168); finite.

    Returns:
        The ``SufficientStatistics``; fields are floats for one path and
        shape (n,) for a batch.

    Raises:
        ValueError: wrong shape, empty batch or non-finite values.

    Example:
        >>> x = np.ones(168)  # the constant path: every e equals -dt f(1)_k = -0.675
        >>> stats = sufficient_statistics(x)
        >>> round(float(stats.e_mean), 12), float(stats.s_zz)
        (-0.675, 0.0)
    """
    x_arr = np.asarray(x)
    single = x_arr.ndim == 1
    batch = as_batch(x_arr[None, :] if single else x_arr, X_DIM, what="x", task="lorenz96")
    columns = _statistics_array(batch).T
    if single:
        return SufficientStatistics(*(float(c[0]) for c in columns))
    return SufficientStatistics(*(c.copy() for c in columns))


@register_task("lorenz96")
class Lorenz96(Task):
    """Stochastic Lorenz-96 (K = 8, T = 20 Euler–Maruyama steps); theta = (b_0, b_1, sigma_e)."""

    name = "lorenz96"
    theta_names = ("b_0", "b_1", "sigma_e")
    x_dim = X_DIM
    default_chunk_size = 1 << 15
    #: x is T + 1 states of K sites on a ring; transition (t, k) reads sites
    #: k-2 ... k+1 of state t and site k of state t + 1.
    x_stencil: ClassVar[Mapping[str, tuple]] = MappingProxyType(
        {
            "grid": (T + 1, K),
            "offsets": ((0, -2), (0, -1), (0, 0), (0, 1), (1, 0)),
            "cyclic": (False, True),
        }
    )

    def __init__(self) -> None:
        self.prior = BoxUniform([1.4, 0.1, 1.5], [2.2, 1.0, 2.5])

    def _check_theta_domain(self, theta: np.ndarray) -> None:
        bad = theta[:, 2] <= 0.0
        if np.any(bad):
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"sigma_e (theta[:, 2]) must be > 0 for lorenz96; {int(bad.sum())} row(s) "
                f"are not, first at row {row}: {theta[row].tolist()}"
            )

    def _simulate_into(
        self, theta: np.ndarray, key: np.uint64, row_offset: int, out: np.ndarray
    ) -> None:
        _k.simulate(theta, key, row_offset, out)

    def _log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        self._check_theta_domain(theta)
        stats = _statistics_array(x)  # once per x: O(168) each
        out = np.empty(theta.shape[0], dtype=np.float64)
        _k.log_likelihood(theta, stats, out)  # O(1) per theta
        return out
