"""gaussian_mixture (Sisson et al. 2007; Lueckmann et al. 2021; paper App. C.2).

    theta ~ U(-1, 1)^2                (the paper; prior="sbibm" gives U(-10, 10)^2)
    x | theta ~ 1/2 N(theta, I_2) + 1/2 N(theta, 0.01 I_2)

A draw picks the wide component N(theta, I_2) or the narrow one
N(theta, 0.01 I_2) with probability 1/2 each, then adds Gaussian noise.

Exact density, with d^2 = |x - theta|^2:

    log p(x | theta) = log(1/2) - log(2 pi)
                       + logsumexp(-d^2 / 2, log(100) - 50 d^2)

The paper (App. C.2) uses the prior U(-1, 1)^2; sbibm (Lueckmann et al.,
"Benchmarking simulation-based inference", AISTATS 2021) uses U(-10, 10)^2,
available as ``get_task("gaussian_mixture", prior="sbibm")``.
"""

from __future__ import annotations

import numpy as np

from gbi_sims._kernels import gaussian_mixture as _k
from gbi_sims._registry import register_task
from gbi_sims._task import Task
from gbi_sims.prior import BoxUniform

#: half-width of the prior box for each ``prior`` option
PRIOR_HALF_WIDTHS: dict[str, float] = {"paper": 1.0, "sbibm": 10.0}


@register_task("gaussian_mixture")
class GaussianMixture(Task):
    """Two concentric Gaussians around theta: a posterior with a wide and a sharp part.

    Args:
        prior: ``"paper"`` for U(-1, 1)^2 (the default, paper App. C.2) or
            ``"sbibm"`` for U(-10, 10)^2 (Lueckmann et al. 2021).

    Example:
        >>> task = GaussianMixture(prior="sbibm")
        >>> task.prior
        BoxUniform(low=[-10.0, -10.0], high=[10.0, 10.0])
    """

    name = "gaussian_mixture"
    theta_names = ("theta_1", "theta_2")
    x_dim = 2
    default_chunk_size = 1 << 20

    def __init__(self, prior: str = "paper") -> None:
        if not isinstance(prior, str) or prior not in PRIOR_HALF_WIDTHS:
            choices = ", ".join(
                f"{name!r} (U(-{w:g}, {w:g})^2)" for name, w in PRIOR_HALF_WIDTHS.items()
            )
            raise ValueError(f"prior for gaussian_mixture must be one of {choices}, got {prior!r}")
        self.prior_option = prior
        half_width = PRIOR_HALF_WIDTHS[prior]
        self.prior = BoxUniform([-half_width, -half_width], [half_width, half_width])

    def _simulate_into(
        self, theta: np.ndarray, key: np.uint64, row_offset: int, out: np.ndarray
    ) -> None:
        _k.simulate(theta, key, row_offset, out)

    def _log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        out = np.empty(theta.shape[0], dtype=np.float64)
        _k.log_likelihood(theta, x, out)
        return out

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, prior={self.prior_option!r})"
