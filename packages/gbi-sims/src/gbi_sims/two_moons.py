"""two_moons (Greenberg et al. 2019; Lueckmann et al. 2021; paper App. C.1).

    theta ~ U(-1, 1)^2,  alpha ~ U(-pi/2, pi/2),  r ~ N(0.1, 0.01^2)
    p = (r cos(alpha) + 0.25, r sin(alpha))
    x = p + (-|theta_1 + theta_2| / sqrt 2, (-theta_1 + theta_2) / sqrt 2)

Exact density: with (u, v) = x - shift(theta) - (0.25, 0) and r = |(u, v)|,
p(x | theta) = N(r; 0.1, 0.01^2) / (pi r) for u > 0 and 0 otherwise (the
polar change of variables with alpha uniform on a half circle).
"""

from __future__ import annotations

import numpy as np

from gbi_sims._kernels import two_moons as _k
from gbi_sims._registry import register_task
from gbi_sims._task import Task
from gbi_sims.prior import BoxUniform


@register_task("two_moons")
class TwoMoons(Task):
    """The two-moons task: a crescent-shaped, bimodal posterior."""

    name = "two_moons"
    theta_names = ("theta_1", "theta_2")
    x_dim = 2
    default_chunk_size = 1 << 20

    def __init__(self) -> None:
        self.prior = BoxUniform([-1.0, -1.0], [1.0, 1.0])

    def _simulate_into(
        self, theta: np.ndarray, key: np.uint64, row_offset: int, out: np.ndarray
    ) -> None:
        _k.simulate(theta, key, row_offset, out)

    def _log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = np.empty(theta.shape[0], dtype=np.float64)
        _k.log_likelihood(theta, x, out)
        return out
