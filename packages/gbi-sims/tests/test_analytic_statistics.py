"""The simulators draw from the densities that ``log_likelihood`` defines.

Every test is seeded. Tolerances come from the sample size n:
- moments are compared at Z = 5 standard errors (e.g. sd / sqrt(n) for a mean,
  sqrt((S_ii S_jj + S_ij^2) / n) for a covariance entry): a correct simulator
  fails one such check with probability ~6e-7;
- distributional tests (chi-square, Kolmogorov–Smirnov) must reach a p-value of
  at least P_MIN = 1e-4; their critical values scale with n by construction.
- numerical integration (chi-square cell probabilities) is made accurate to
  ~1e-4 relative or better, far below the ~1 / sqrt(expected count) relative
  noise of any cell.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import gbi_sims
from gbi_sims.lorenz96 import DT as L96_DT

Z = 5.0
P_MIN = 1e-4


def _repeat(theta: tuple[float, ...], n: int) -> np.ndarray:
    return np.tile(np.asarray(theta, dtype=np.float64), (n, 1))


# -- chi-square of 2-D histograms against integrated cell probabilities --------


def _chi_square_p_value(
    task: gbi_sims.Task,
    theta: tuple[float, ...],
    box: tuple[tuple[float, float], tuple[float, float]],
    n: int,
    seed: int,
    bins: int = 12,
    sub: int = 64,
) -> float:
    """p-value of Pearson's chi-square test of simulated x against the density.

    The box is cut into bins x bins cells; each cell's probability is the
    midpoint rule on sub x sub points of exp(log_likelihood). Cells expecting
    fewer than 5 draws are pooled with the mass outside the box.
    """
    x = task.simulate(_repeat(theta, n), seed=seed)
    edges = [np.linspace(lo, hi, bins + 1) for lo, hi in box]
    observed, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=edges)
    steps = [(hi - lo) / (bins * sub) for lo, hi in box]
    mids = [
        lo + step * (np.arange(bins * sub) + 0.5) for (lo, _), step in zip(box, steps, strict=True)
    ]
    grid = np.stack(np.meshgrid(*mids, indexing="ij"), axis=-1).reshape(-1, 2)
    density = np.exp(task.log_likelihood(_repeat(theta, grid.shape[0]), grid))
    probs = density.reshape(bins, sub, bins, sub).sum(axis=(1, 3)) * steps[0] * steps[1]
    expected = (n * probs).ravel()
    observed = observed.ravel()
    big = expected >= 5
    rest_expected = n - expected[big].sum()
    rest_observed = n - observed[big].sum()
    terms = list((observed[big] - expected[big]) ** 2 / expected[big])
    if rest_expected >= 5:
        terms.append((rest_observed - rest_expected) ** 2 / rest_expected)
    else:  # everything lies in the big cells (up to quadrature error)
        assert rest_observed <= 10
    assert len(terms) > 20
    return float(stats.chi2.sf(np.sum(terms), df=len(terms) - 1))


TWO_MOONS_THETA = [(0.0, 0.0), (0.3, -0.6), (-0.8, 0.5), (0.9, 0.95)]


@pytest.mark.parametrize("theta", TWO_MOONS_THETA)
def test_two_moons_chi_square(theta: tuple[float, float]) -> None:
    task = gbi_sims.get_task("two_moons")
    # the density is 0 left of the cut u = 0, i.e. x_1 = 0.25 - |theta_1 + theta_2| / sqrt 2:
    # put the box's left edge on it so no cell straddles the discontinuity
    cut = 0.25 - abs(theta[0] + theta[1]) / np.sqrt(2.0)
    centre = (theta[1] - theta[0]) / np.sqrt(2.0)
    box = ((cut, cut + 0.17), (centre - 0.17, centre + 0.17))  # r < 0.17: 7 sd of r
    assert _chi_square_p_value(task, theta, box, n=200_000, seed=11) > P_MIN


GM_THETA = [(0.0, 0.0), (0.7, -0.4), (-0.95, 0.9)]


@pytest.mark.parametrize("theta", GM_THETA)
def test_gaussian_mixture_chi_square(theta: tuple[float, float]) -> None:
    task = gbi_sims.get_task("gaussian_mixture")
    box = ((theta[0] - 3.0, theta[0] + 3.0), (theta[1] - 3.0, theta[1] + 3.0))
    assert _chi_square_p_value(task, theta, box, n=200_000, seed=12) > P_MIN


# -- the importance identity E_{x ~ p(.|theta)} [p(x|theta') / p(x|theta)] = 1 ----

IMPORTANCE_CASES = [
    # (task, theta, theta'): theta' near theta so that the weights have a small
    # variance; two_moons keeps theta_1 + theta_2 so that the support is the same
    ("two_moons", (0.2, 0.1), (0.198, 0.102)),
    ("two_moons", (-0.5, 0.7), (-0.502, 0.702)),
    ("gaussian_mixture", (0.0, 0.0), (0.03, -0.02)),
    ("gaussian_mixture", (0.6, -0.9), (0.58, -0.87)),
    ("slcp", (0.7, -2.9, -1.0, -0.9, 0.6), (0.72, -2.88, -1.02, -0.89, 0.62)),
    ("slcp", (1.5, 2.0, 0.8, 1.7, -2.5), (1.49, 2.01, 0.81, 1.69, -2.48)),
    ("lorenz96", (1.8, 0.8, 1.6), (1.85, 0.81, 1.63)),
    ("lorenz96", (2.2, 1.0, 2.5), (2.15, 0.99, 2.45)),
]


@pytest.mark.parametrize(("name", "theta", "theta_prime"), IMPORTANCE_CASES)
def test_importance_identity(
    name: str, theta: tuple[float, ...], theta_prime: tuple[float, ...]
) -> None:
    task = gbi_sims.get_task(name)
    n = 50_000 if name == "lorenz96" else 200_000
    x = task.simulate(_repeat(theta, n), seed=13)
    log_w = task.log_likelihood(_repeat(theta_prime, n), x) - task.log_likelihood(
        _repeat(theta, n), x
    )
    w = np.exp(log_w)
    sd = w.std()
    assert 0.0 < sd < 1.0  # the perturbation is visible, and the CLT applies
    assert abs(w.mean() - 1.0) < Z * sd / np.sqrt(n)


# -- two_moons: implied radius and angle ---------------------------------------


@pytest.mark.parametrize("theta", TWO_MOONS_THETA)
def test_two_moons_radius_and_angle(theta: tuple[float, float]) -> None:
    task = gbi_sims.get_task("two_moons")
    n = 200_000
    x = task.simulate(_repeat(theta, n), seed=14)
    u = x[:, 0] + abs(theta[0] + theta[1]) / np.sqrt(2.0) - 0.25
    v = x[:, 1] - (theta[1] - theta[0]) / np.sqrt(2.0)
    r = np.hypot(u, v)
    alpha = np.arctan2(v, u)
    assert abs(r.mean() - 0.1) < Z * 0.01 / np.sqrt(n)
    assert abs(r.std() - 0.01) < Z * 0.01 / np.sqrt(2 * n)
    assert stats.kstest(r, "norm", args=(0.1, 0.01)).pvalue > P_MIN
    assert np.all(np.abs(alpha) <= np.pi / 2)
    assert stats.kstest(alpha, "uniform", args=(-np.pi / 2, np.pi)).pvalue > P_MIN
    assert abs(np.corrcoef(r, alpha)[0, 1]) < Z / np.sqrt(n)


# -- gaussian_mixture: the two components weigh 1/2 each ------------------------


@pytest.mark.parametrize("theta", GM_THETA)
def test_gaussian_mixture_component_weights(theta: tuple[float, float]) -> None:
    # d^2 = |x - theta|^2 is exponential with mean 2 (wide) or 0.02 (narrow). With
    # c = 0.2, P(d^2 < c) = w q_narrow + (1 - w) q_wide where q = 1 - exp(-c / mean):
    # solve for the narrow weight w; its standard error is sqrt(F (1 - F) / n) / (q_n - q_w).
    task = gbi_sims.get_task("gaussian_mixture")
    n = 400_000
    x = task.simulate(_repeat(theta, n), seed=15)
    d2 = ((x - np.asarray(theta)) ** 2).sum(axis=1)
    c = 0.2
    q_narrow = 1.0 - np.exp(-c / 0.02)
    q_wide = 1.0 - np.exp(-c / 2.0)
    fraction = np.mean(d2 < c)
    w_narrow = (fraction - q_wide) / (q_narrow - q_wide)
    se = np.sqrt(fraction * (1.0 - fraction) / n) / (q_narrow - q_wide)
    assert abs(w_narrow - 0.5) < Z * se
    # each component is the stated isotropic Gaussian: d^2 / scale^2 ~ chi2(2)
    far = d2[d2 > 1.0]  # essentially only the wide component (narrow: P = e^-50)
    expected_far = 0.5 * np.exp(-1.0 / 2.0)
    assert abs(far.size / n - expected_far) < Z * np.sqrt(expected_far / n)
    assert stats.kstest(far - 1.0, "expon", args=(0, 2.0)).pvalue > P_MIN


# -- slcp: Gaussian draws with the stated mean and covariance --------------------

SLCP_THETA = [
    (0.7, -2.9, -1.0, -0.9, 0.6),  # sbibm's first reference parameter
    (1.5, 2.0, 0.4, 1.7, -2.5),  # strong negative correlation, small s_1
    (-2.0, 0.3, 2.2, -0.6, 1.2),
]


@pytest.mark.parametrize("theta", SLCP_THETA)
def test_slcp_draws_are_gaussian_with_stated_moments(theta: tuple[float, ...]) -> None:
    task = gbi_sims.get_task("slcp")
    n = 100_000
    x = task.simulate(_repeat(theta, n), seed=16)
    draws = x.reshape(n, 4, 2)  # draw by draw: (x1_1, x1_2, x2_1, ...)
    s1, s2, rho = theta[2] ** 2, theta[3] ** 2, np.tanh(theta[4])
    mean = np.array(theta[:2])
    cov = np.array([[s1**2, rho * s1 * s2], [rho * s1 * s2, s2**2]])
    sd = np.sqrt(np.diag(cov))
    for j in range(4):  # each draw position separately
        d = draws[:, j, :]
        assert np.all(np.abs(d.mean(axis=0) - mean) < Z * sd / np.sqrt(n))
        emp = np.cov(d, rowvar=False)
        se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
        assert np.all(np.abs(emp - cov) < Z * se), (j, emp, cov)
    # draws within a row are independent
    for j, k in [(0, 1), (1, 3), (0, 2)]:
        cross = (draws[:, j, :] - mean).T @ (draws[:, k, :] - mean) / n
        assert np.all(np.abs(cross) < Z * np.outer(sd, sd) / np.sqrt(n))
    # whitened draws are standard normal
    chol = np.linalg.cholesky(cov)
    white = np.linalg.solve(chol, (draws.reshape(-1, 2) - mean).T)
    for row in white:
        assert stats.kstest(row, "norm").pvalue > P_MIN
    assert abs(np.corrcoef(white)[0, 1]) < Z / np.sqrt(white.shape[1])


# -- lorenz96: standardized Euler–Maruyama residuals are N(0, 1) -----------------

L96_THETA = [(1.8, 0.8, 1.6), (2.2, 1.0, 2.5), (1.4, 0.9, 2.0)]


def _field(state: np.ndarray) -> np.ndarray:
    return (
        -np.roll(state, 1, axis=-1) * (np.roll(state, 2, axis=-1) - np.roll(state, -1, axis=-1))
        - state
        + 10.0
    )


@pytest.mark.parametrize("theta", L96_THETA)
def test_lorenz96_residuals_standard_normal(theta: tuple[float, float, float]) -> None:
    task = gbi_sims.get_task("lorenz96")
    n = 20_000
    x = task.simulate(_repeat(theta, n), seed=17)
    path = x.reshape(n, 21, 8)
    np.testing.assert_array_equal(path[:, 0], 1.0)  # x_0 = 1_K
    b0, b1, sigma = theta
    before, after = path[:, :-1], path[:, 1:]
    drift = _field(before) - b0 - b1 * before
    eps = -(after - before - L96_DT * drift) / (sigma * np.sqrt(L96_DT))
    # A residual is recovered from x to a few ulps of the terms of its step, M =
    # |x_t| + dt |drift(x_t)|, over sigma sqrt(dt): keep the steps with M < 1e9 (error
    # < 1e-6). Rare paths blow up past that even at these theta. The selection
    # depends on x_t only, and eps_t is independent of x_t, so it does not bias eps_t.
    size = (np.abs(before) + L96_DT * np.abs(drift)).max(axis=2)
    keep = size < 1e9
    assert keep.mean() > 0.999
    flat = eps[keep].ravel()
    m = flat.size
    assert abs(flat.mean()) < Z / np.sqrt(m)
    assert abs(flat.var() - 1.0) < Z * np.sqrt(2.0 / m)
    assert stats.kstest(flat, "norm").pvalue > P_MIN
    # independent across components and steps
    within = eps[keep][:, :-1] * eps[keep][:, 1:]
    assert abs(within.mean()) < Z / np.sqrt(within.size)
    both = keep[:, :-1] & keep[:, 1:]
    across = eps[:, :-1][both] * eps[:, 1:][both]
    assert abs(across.mean()) < Z / np.sqrt(across.size)
    # per step, too (catches a mis-indexed noise draw)
    for t in range(eps.shape[1]):
        column = eps[:, t][keep[:, t]]
        assert abs(column.mean()) < Z / np.sqrt(column.size)
