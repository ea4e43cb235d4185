"""Each Numba kernel of the analytic tasks against its plain-numpy reference (tests/naive.py).

Simulators are compared on the same random stream, so they agree to rounding:
the tolerance 1e-12 (relative and absolute) leaves room for last-bit
differences between numba's and numpy's log/sin/cos, which lorenz96 amplifies
over its 20 chaotic steps by at most a factor of ~e^(1.7 * 1.5) ~ 13.
Likelihoods are compared with scipy.stats, which sums the same terms in
another order: 1e-10 relative.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import naive
import numpy as np
import pytest

import gbi_sims
from gbi_sims._rng import make_key, normal_pair, row_state, uniform
from gbi_sims.lorenz96 import sufficient_statistics

ANALYTIC = sorted(naive.SIMULATORS)


def test_stream_replica_matches_rng() -> None:
    key = make_key(123)
    rows = np.array([0, 1, 7, 2**40 + 3])
    streams = naive.Streams(key, rows)
    expected_u = streams.uniform()
    expected_pair = streams.normal_pair()
    for j, row in enumerate(rows):
        # jitted functions called from Python return the uint64 state as a Python
        # int, which would be typed int64 on the next call: re-wrap it
        state = np.uint64(row_state(key, int(row)))
        state, u = uniform(state)
        state, z1, z2 = normal_pair(np.uint64(state))
        assert u == expected_u[j]
        np.testing.assert_allclose(
            [z1, z2], [expected_pair[0][j], expected_pair[1][j]], rtol=1e-14, atol=1e-15
        )


@pytest.mark.parametrize("name", ANALYTIC)
@pytest.mark.parametrize("row_offset", [0, 1_000_003])
def test_simulator_matches_reference(name: str, row_offset: int) -> None:
    task = gbi_sims.get_task(name)
    theta = task.prior.sample(500, seed=4)
    key = make_key(99)
    x = task.simulate_rows(theta, key, row_offset=row_offset)
    expected = naive.SIMULATORS[name](theta, key, row_offset)
    assert x.shape == expected.shape
    np.testing.assert_allclose(x, expected, rtol=1e-12, atol=1e-12)


def test_simulate_uses_the_seed_key() -> None:
    task = gbi_sims.get_task("slcp")
    theta = task.prior.sample(50, seed=1)
    np.testing.assert_allclose(
        task.simulate(theta, 17), naive.simulate_slcp(theta, make_key(17)), rtol=1e-12, atol=1e-12
    )


#: lorenz96 paths beyond this size have blown up (the Euler–Maruyama scheme is
#: unstable for small b_1 and large sigma_e); there float64 rounding, not the
#: formula, sets the error of any evaluation (see test_lorenz96_blown_up_path_vs_exact)
L96_WELL_CONDITIONED = 1e3


def _likelihood_cases(name: str) -> tuple[np.ndarray, np.ndarray]:
    """theta (n, d) and matching x (n, x_dim): simulated from theta, and from other theta."""
    task = gbi_sims.get_task(name)
    theta = task.prior.sample(200, seed=7)
    x_own = task.simulate(theta, seed=8)
    x_other = task.simulate(task.prior.sample(200, seed=9), seed=10)
    theta, x = np.concatenate([theta, theta]), np.concatenate([x_own, x_other])
    if name == "lorenz96":
        keep = np.abs(x).max(axis=1) < L96_WELL_CONDITIONED
        assert keep.sum() > 250
        theta, x = theta[keep], x[keep]
    return theta, x


@pytest.mark.parametrize("name", ANALYTIC)
def test_log_likelihood_matches_scipy(name: str) -> None:
    task = gbi_sims.get_task(name)
    theta, x = _likelihood_cases(name)
    got = task.log_likelihood(theta, x)
    expected = naive.LOG_LIKELIHOODS[name](theta, x)
    assert got.shape == (theta.shape[0],)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
    assert np.isfinite(got[:150]).all()  # x simulated from theta is possible under theta
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("name", ANALYTIC)
def test_log_likelihood_one_x_many_theta_matches_scipy(name: str) -> None:
    task = gbi_sims.get_task(name)
    obs = task.observation(3)
    theta = task.prior.sample(300, seed=2)
    theta[0] = obs.theta
    got = task.log_likelihood(theta, obs.x)
    expected = naive.LOG_LIKELIHOODS[name](theta, obs.x[None, :])
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(expected))
    finite = np.isfinite(expected)
    assert finite[0]
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-10, atol=1e-9)


def test_gaussian_mixture_far_x_is_finite() -> None:
    # the narrow component underflows first; logsumexp keeps the wide one
    task = gbi_sims.get_task("gaussian_mixture")
    theta = np.zeros((1, 2))
    x = np.array([[30.0, -40.0]])
    expected = np.log(0.5) - np.log(2 * np.pi) - 0.5 * 2500.0
    np.testing.assert_allclose(task.log_likelihood(theta, x), [expected], rtol=1e-14)
    assert task.log_likelihood(theta, np.array([[1e200, 1e200]]))[0] == -np.inf


def test_lorenz96_sufficient_statistics_match_reference() -> None:
    task = gbi_sims.get_task("lorenz96")
    x = task.simulate(task.prior.sample(100, seed=3), seed=4)
    x = x[np.abs(x).max(axis=1) < L96_WELL_CONDITIONED]
    stats = sufficient_statistics(x)
    expected = naive.lorenz96_statistics(x)
    np.testing.assert_allclose(np.stack(stats, axis=1), expected, rtol=1e-10, atol=1e-10)
    one = sufficient_statistics(x[5])
    assert all(isinstance(v, float) for v in one)
    np.testing.assert_allclose(list(one), expected[5], rtol=1e-10, atol=1e-10)


def _exact_lorenz96_log_likelihood(theta: np.ndarray, x: np.ndarray) -> float:
    """log p(x | theta) with the sum of squares in exact rational arithmetic."""
    b0, b1, sigma = (Fraction(float(v)) for v in theta)
    dt = Fraction(3, 40)
    path = [[Fraction(float(v)) for v in x[8 * t : 8 * t + 8]] for t in range(21)]
    ssq = Fraction(0)
    for before, after in itertools.pairwise(path):
        for k in range(8):
            f = -before[k - 1] * (before[k - 2] - before[(k + 1) % 8]) - before[k] + 10
            r = after[k] - before[k] - dt * (f - b0 - b1 * before[k])
            ssq += r * r
    return (
        -80 * np.log(2 * np.pi * 3 / 40)
        - 160 * np.log(float(sigma))
        - float(ssq / (2 * dt * sigma * sigma))
    )


def test_lorenz96_blown_up_path_vs_exact() -> None:
    # On paths that blew up (|x| ~ 1e4..1e12) each e_i = x_{t+1,k} - x_{t,k} - dt f_k
    # carries a rounding error of a few ulps of M_i = |x_{t+1,k}| + |x_{t,k}| + dt |f_k|,
    # so any float64 evaluation of the log-likelihood is off by about
    # eps sum_i |r_i| M_i / (sigma^2 dt), r_i the residual at theta. The sufficient
    # statistics must not add to that: measured <= 0.3 of it; allowed 4 of it.
    task = gbi_sims.get_task("lorenz96")
    theta = task.prior.sample(200, seed=7)
    x = task.simulate(theta, seed=8)
    size = np.abs(x).max(axis=1)
    rows = np.flatnonzero((size > 1e4) & (size < 1e12))[:4]
    assert rows.size == 4
    other = task.prior.sample(4, seed=1)
    for thetas in (theta[rows], other):
        got = task.log_likelihood(thetas, x[rows])
        before, after = naive.lorenz96_transitions(x[rows])
        magnitude = (
            np.abs(after) + np.abs(before) + naive.L96_DT * np.abs(naive.lorenz96_field(before))
        )
        sigma = thetas[:, 2]
        residual = (
            naive.lorenz96_residuals(thetas, x[rows])
            * (sigma * np.sqrt(naive.L96_DT))[:, None, None]
        )
        bound = (
            4
            * np.finfo(float).eps
            * (np.abs(residual) * magnitude).sum(axis=(1, 2))
            / (sigma**2 * naive.L96_DT)
        )
        for j, i in enumerate(rows):
            exact = _exact_lorenz96_log_likelihood(thetas[j], x[i])
            assert abs(got[j] - exact) <= bound[j] + 1e-12 * abs(exact), (got[j], exact, bound[j])


def test_lorenz96_likelihood_conditions_on_given_x0() -> None:
    # a path whose x_0 is not 1_K: the product of transitions given that x_0
    task = gbi_sims.get_task("lorenz96")
    rng = np.random.default_rng(5)
    x = task.simulate(task.prior.sample(20, seed=5), seed=6) + rng.normal(0, 0.3, (20, 168))
    theta = task.prior.sample(20, seed=7)
    keep = np.abs(x).max(axis=1) < L96_WELL_CONDITIONED
    assert keep.sum() > 10
    theta, x = theta[keep], x[keep]
    np.testing.assert_allclose(
        task.log_likelihood(theta, x), naive.log_likelihood_lorenz96(theta, x), rtol=1e-10
    )


# -- SLCP degenerate and extreme covariances: never NaN ----------------------


@pytest.mark.parametrize(
    "theta",
    [
        [0.5, -1.0, 0.0, 1.0, 0.3],  # s1 = 0: singular
        [0.5, -1.0, 1.0, 0.0, 0.3],  # s2 = 0: singular
        [0.5, -1.0, 0.0, 0.0, 0.0],
    ],
)
def test_slcp_singular_covariance_is_minus_inf(theta: list[float]) -> None:
    task = gbi_sims.get_task("slcp")
    theta_arr = np.array([theta])
    x = task.simulate(theta_arr, seed=0)  # degenerate draws, still finite
    assert np.isfinite(x).all()
    assert task.log_likelihood(theta_arr, x)[0] == -np.inf
    assert task.log_likelihood(theta_arr, np.zeros(8))[0] == -np.inf


def test_slcp_extreme_theta_never_nan() -> None:
    task = gbi_sims.get_task("slcp")
    x = task.simulate(np.array([[0.1, 0.2, 1.0, 1.0, 0.5]]), seed=3)
    theta = np.array(
        [
            [0.1, 0.2, 1e-170, 1.0, 0.5],  # s1 underflows as theta_3**2
            [0.1, 0.2, 1.0, 1e-200, 0.5],
            [0.1, 0.2, 1.0, 1.0, 30.0],  # rho rounds to 1
            [0.1, 0.2, 1.0, 1.0, -800.0],  # cosh overflows
            [0.1, 0.2, 1e150, 1e150, 0.0],
        ]
    )
    ll = task.log_likelihood(theta, x)
    assert not np.isnan(ll).any()
    assert not np.isposinf(ll).any()
    # |theta_5| = 30: still the exact Gaussian density (rho = tanh(30) rounds to 1)
    t = theta[2]
    s = np.array([[1.0, np.tanh(t[4])], [np.tanh(t[4]), 1.0]])
    z = x.reshape(4, 2) - t[:2]
    # 1 - tanh(30)^2 underflows in float64 as 1 - rho^2: use sech^2 directly
    sech2 = 1.0 / np.cosh(t[4]) ** 2
    quad = (z[:, 0] ** 2 + (z[:, 1] - s[0, 1] * z[:, 0]) ** 2 / sech2).sum()
    expected = 4 * (-np.log(2 * np.pi) + np.log(np.cosh(t[4]))) - 0.5 * quad
    np.testing.assert_allclose(ll[2], expected, rtol=1e-6)


def test_slcp_tiny_scale_is_exact() -> None:
    # theta_3 = 1e-100: s1 = 1e-200 is representable, log s1 = -460.5; the density is exact
    task = gbi_sims.get_task("slcp")
    theta = np.array([[0.0, 0.0, 1e-100, 1.0, 0.0]])
    x = np.array([[3e-200, 0.5, -1e-200, 0.1, 0.0, -0.2, 2e-200, 0.3]])
    expected = (
        4 * (-np.log(2 * np.pi) - np.log(1e-200))
        - 0.5 * (9 + 1 + 0 + 4)
        - 0.5 * (0.25 + 0.01 + 0.04 + 0.09)
    )
    np.testing.assert_allclose(task.log_likelihood(theta, x), [expected], rtol=1e-12)


def test_slcp_matches_scipy_multivariate_normal() -> None:
    task = gbi_sims.get_task("slcp")
    theta = np.array(
        [[0.7, -2.9, -1.0, -0.9, 0.6], [1.5, 2.0, 0.8, 1.7, -2.5], [-2.0, 0.3, 2.2, -0.6, 1.2]]
    )
    x = task.simulate(theta, seed=1)
    np.testing.assert_allclose(
        task.log_likelihood(theta, x), naive.log_likelihood_slcp_multivariate(theta, x), rtol=1e-10
    )


def test_lorenz96_statistics_computed_once_per_x(monkeypatch: pytest.MonkeyPatch) -> None:
    # one x against many theta: the path is reduced to its statistics once, then O(1)
    import gbi_sims.lorenz96 as module

    seen: list[tuple[int, ...]] = []
    original = module._statistics_array

    def counting(x: np.ndarray) -> np.ndarray:
        seen.append(x.shape)
        return original(x)

    monkeypatch.setattr(module, "_statistics_array", counting)
    task = gbi_sims.get_task("lorenz96")
    theta = task.prior.sample(10_000, seed=0)
    task.log_likelihood(theta, task.observation(0).x)
    assert seen == [(1, 168)]
