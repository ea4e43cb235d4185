"""Plain-numpy baselines of the analytic simulators for the speed benchmark.

The same models as ``gbi_sims`` (DESIGN.md, paper App. C): two_moons,
gaussian_mixture, slcp and lorenz96, vectorized over the batch (lorenz96 with
a Python loop over its 20 time steps), randomness from
``numpy.random.Generator``. The numbers therefore differ from the Numba
kernels' counter-based streams; the distributions are the same.

Example:
    >>> import gbi_sims
    >>> theta = gbi_sims.get_task("slcp").prior.sample(4, seed=0)
    >>> simulate_numpy("slcp", theta, seed=1).shape
    (4, 8)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_SQRT_HALF = np.sqrt(0.5)
L96_K, L96_T, L96_DT, L96_FORCING = 8, 20, 3.0 / 40.0, 10.0


def two_moons(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = theta.shape[0]
    alpha = rng.uniform(-np.pi / 2, np.pi / 2, n)
    r = rng.normal(0.1, 0.01, n)
    x = np.empty((n, 2))
    x[:, 0] = r * np.cos(alpha) + 0.25 - np.abs(theta[:, 0] + theta[:, 1]) * _SQRT_HALF
    x[:, 1] = r * np.sin(alpha) + (theta[:, 1] - theta[:, 0]) * _SQRT_HALF
    return x


def gaussian_mixture(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = theta.shape[0]
    scale = np.where(rng.random(n) < 0.5, 1.0, 0.1)
    return theta + scale[:, None] * rng.standard_normal((n, 2))


def slcp(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = theta.shape[0]
    s1 = theta[:, 2:3] ** 2
    s2 = theta[:, 3:4] ** 2
    rho = np.tanh(theta[:, 4:5])
    z = rng.standard_normal((n, 4, 2))
    x = np.empty((n, 4, 2))
    x[:, :, 0] = theta[:, 0:1] + s1 * z[:, :, 0]
    x[:, :, 1] = theta[:, 1:2] + s2 * (rho * z[:, :, 0] + np.sqrt(1.0 - rho**2) * z[:, :, 1])
    return x.reshape(n, 8)  # draw by draw: (x1_1, x1_2, x2_1, ...)


def lorenz96(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = theta.shape[0]
    b0, b1 = theta[:, 0:1], theta[:, 1:2]
    noise = theta[:, 2:3] * np.sqrt(L96_DT)
    path = np.empty((n, L96_T + 1, L96_K))
    path[:, 0] = 1.0
    with np.errstate(over="ignore", invalid="ignore"):  # the rare paths that blow up
        for t in range(L96_T):
            x = path[:, t]
            f = (
                -np.roll(x, 1, axis=1) * (np.roll(x, 2, axis=1) - np.roll(x, -1, axis=1))
                - x
                + L96_FORCING
            )
            eps = rng.standard_normal((n, L96_K))
            path[:, t + 1] = x + L96_DT * (f - b0 - b1 * x) - noise * eps
    return path.reshape(n, (L96_T + 1) * L96_K)


SIMULATORS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "gaussian_mixture": gaussian_mixture,
    "lorenz96": lorenz96,
    "slcp": slcp,
    "two_moons": two_moons,
}


def simulate_numpy(
    task_name: str, theta: np.ndarray, seed: int | np.random.Generator
) -> np.ndarray:
    """Simulate one x per row of ``theta`` with plain numpy.

    Args:
        task_name: one of ``SIMULATORS`` (the analytic tasks).
        theta: shape (n, theta_dim), float64.
        seed: an int or a ``numpy.random.Generator``.

    Returns:
        x, shape (n, x_dim), float64.

    Raises:
        ValueError: unknown task name or theta not 2-D.
    """
    if task_name not in SIMULATORS:
        raise ValueError(
            f"no numpy baseline for task {task_name!r}; choose one of {', '.join(SIMULATORS)}"
        )
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 2:
        raise ValueError(f"theta must have shape (n, theta_dim), got {theta.shape}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return SIMULATORS[task_name](theta, rng)
