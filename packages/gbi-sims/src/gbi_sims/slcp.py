"""slcp: simple likelihood, complex posterior (Papamakarios et al. 2019; paper App. C.3).

    theta ~ U(-3, 3)^5
    m = (theta_1, theta_2),  s_1 = theta_3^2,  s_2 = theta_4^2,  rho = tanh(theta_5)
    S = [[s_1^2, rho s_1 s_2], [rho s_1 s_2, s_2^2]]
    x = (x_1, ..., x_4),  x_j ~ N(m, S) iid

x is flattened draw by draw: (x_1[0], x_1[1], x_2[0], x_2[1], ...), 8 values.
Draws are m + L z with L = [[s_1, 0], [rho s_2, s_2 sech(theta_5)]] the Cholesky
factor of S (sech = sqrt(1 - tanh^2)) and z ~ N(0, I_2).

Exact density: the sum of 4 bivariate normal log densities,

    log p(x | theta) = sum_j [ -log(2 pi) - log s_1 - log s_2 + log cosh(theta_5)
                               - (a_j^2 + (b_j - rho a_j)^2 cosh(theta_5)^2) / 2 ]

with a_j = (x_j[0] - theta_1) / s_1 and b_j = (x_j[1] - theta_2) / s_2, using
1 / (1 - rho^2) = cosh(theta_5)^2 so that nothing cancels.

Degenerate covariance: where theta_3 = 0 or theta_4 = 0 exactly (or |theta_5|
so large that cosh overflows), S is singular and x has no density with respect
to Lebesgue measure on R^8; ``log_likelihood`` then returns ``-inf`` (never
NaN), while ``simulate`` still returns the degenerate draws (e.g. x_j[0] =
theta_1 when theta_3 = 0). This set has prior probability 0.

References: Papamakarios, Sterratt & Murray, "Sequential neural likelihood",
AISTATS 2019; Lueckmann et al., "Benchmarking simulation-based inference",
AISTATS 2021 (sbibm's ``slcp``).
"""

from __future__ import annotations

import numpy as np

from gbi_sims._kernels import slcp as _k
from gbi_sims._registry import register_task
from gbi_sims._task import Task
from gbi_sims.prior import BoxUniform


@register_task("slcp")
class SLCP(Task):
    """A Gaussian likelihood whose covariance depends nonlinearly on theta (4 iid draws)."""

    name = "slcp"
    theta_names = ("theta_1", "theta_2", "theta_3", "theta_4", "theta_5")
    x_dim = 2 * _k.N_DRAWS
    default_chunk_size = 1 << 18

    def __init__(self) -> None:
        self.prior = BoxUniform([-3.0] * 5, [3.0] * 5)

    def _simulate_into(
        self, theta: np.ndarray, key: np.uint64, row_offset: int, out: np.ndarray
    ) -> None:
        _k.simulate(theta, key, row_offset, out)

    def _log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = np.empty(theta.shape[0], dtype=np.float64)
        _k.log_likelihood(theta, x, out)
        return out
