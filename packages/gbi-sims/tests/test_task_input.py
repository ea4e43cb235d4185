"""Bad input gets a ValueError that says what was wrong, for every registered task."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gbi_sims
from gbi_sims.lorenz96 import sufficient_statistics

TASKS = gbi_sims.list_tasks()
LIKELIHOOD_TASKS = [name for name in TASKS if gbi_sims.get_task(name).has_likelihood]
_settings = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _bad_shapes(dim: int) -> st.SearchStrategy[tuple[int, ...]]:
    """Array shapes that are not (n, dim) with n >= 1."""
    shapes = st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple)
    return shapes.filter(lambda s: not (len(s) == 2 and s[1] == dim and s[0] >= 1))


@pytest.mark.parametrize("name", TASKS)
@_settings
@given(data=st.data())
def test_theta_of_wrong_shape(name: str, data: st.DataObject) -> None:
    task = gbi_sims.get_task(name)
    shape = data.draw(_bad_shapes(task.theta_dim), label="shape")
    theta = np.full(shape, 0.5) if shape else np.float64(0.5)
    with pytest.raises(ValueError, match=r"theta .*(shape|empty)") as info:
        task.simulate(theta, seed=0)
    assert str(task.theta_dim) in str(info.value) or "empty" in str(info.value)
    with pytest.raises(ValueError, match="theta"):
        task.check_theta(theta)


@pytest.mark.parametrize("name", TASKS)
def test_theta_one_dimensional_gets_a_hint(name: str) -> None:
    task = gbi_sims.get_task(name)
    theta = task.prior.sample(1, seed=0)[0]
    with pytest.raises(ValueError, match=r"theta\[None, :\]"):
        task.simulate(theta, seed=0)


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_theta(name: str, bad: float) -> None:
    task = gbi_sims.get_task(name)
    theta = task.prior.sample(5, seed=0)
    theta[3, -1] = bad
    with pytest.raises(ValueError, match=r"non-finite .*row 3"):
        task.simulate(theta, seed=0)
    if task.has_likelihood:
        x = task.observation(0).x
        with pytest.raises(ValueError, match="non-finite"):
            task.log_likelihood(theta, x)


@pytest.mark.parametrize("name", TASKS)
def test_empty_batch(name: str) -> None:
    task = gbi_sims.get_task(name)
    with pytest.raises(ValueError, match="empty"):
        task.simulate(np.empty((0, task.theta_dim)), seed=0)
    assert task.prior.sample(0, seed=0).shape == (0, task.theta_dim)


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("n", [-1, -100, 2.5, "3", None, True])
def test_bad_sample_count(name: str, n: object) -> None:
    task = gbi_sims.get_task(name)
    with pytest.raises(ValueError, match="non-negative int"):
        task.prior.sample(n, seed=0)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize(
    "chunk_size",
    [0, -5],
)
def test_bad_chunk_size(name: str, chunk_size: int) -> None:
    task = gbi_sims.get_task(name)
    with pytest.raises(ValueError, match="chunk_size"):
        task.simulate(task.prior.sample(2, seed=0), seed=0, chunk_size=chunk_size)


@pytest.mark.parametrize("name", TASKS)
def test_bad_seed(name: str) -> None:
    task = gbi_sims.get_task(name)
    theta = task.prior.sample(2, seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        task.simulate(theta, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        task.simulate(theta, seed=1.5)  # type: ignore[arg-type]


# -- log_likelihood ------------------------------------------------------------


@pytest.mark.parametrize("name", LIKELIHOOD_TASKS)
@_settings
@given(data=st.data())
def test_x_of_wrong_shape(name: str, data: st.DataObject) -> None:
    task = gbi_sims.get_task(name)
    theta = task.prior.sample(3, seed=0)
    shape = data.draw(_bad_shapes(task.x_dim).filter(lambda s: s != (task.x_dim,)), label="shape")
    x = np.zeros(shape)
    with pytest.raises(ValueError, match=r"x .*(shape|empty|rows)"):
        task.log_likelihood(theta, x)


@pytest.mark.parametrize("name", LIKELIHOOD_TASKS)
@pytest.mark.parametrize("rows", [2, 4])
def test_x_rows_must_match_theta(name: str, rows: int) -> None:
    task = gbi_sims.get_task(name)
    theta = task.prior.sample(3, seed=0)
    x = np.repeat(task.observation(0).x[None, :], rows, axis=0)
    with pytest.raises(ValueError, match=rf"x has {rows} rows but theta has 3"):
        task.log_likelihood(theta, x)


@pytest.mark.parametrize("name", LIKELIHOOD_TASKS)
def test_non_finite_x(name: str) -> None:
    task = gbi_sims.get_task(name)
    x = task.observation(0).x.copy()
    x[-1] = np.nan
    with pytest.raises(ValueError, match=r"x .*non-finite"):
        task.log_likelihood(task.prior.sample(3, seed=0), x)


@pytest.mark.parametrize("name", LIKELIHOOD_TASKS)
def test_theta_of_wrong_shape_in_log_likelihood(name: str) -> None:
    task = gbi_sims.get_task(name)
    x = task.observation(0).x
    with pytest.raises(ValueError, match=rf"theta must have shape \(n, {task.theta_dim}\)"):
        task.log_likelihood(np.zeros((3, task.theta_dim + 1)), x)
    with pytest.raises(ValueError, match="empty"):
        task.log_likelihood(np.zeros((0, task.theta_dim)), x)


@pytest.mark.parametrize("name", LIKELIHOOD_TASKS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_log_likelihood_never_nan_or_plus_inf(name: str, data: st.DataObject) -> None:
    # arbitrary finite theta and x, far outside the prior included
    task = gbi_sims.get_task(name)
    values = st.one_of(
        st.floats(-10.0, 10.0),
        st.floats(-1e300, 1e300),
        st.sampled_from([0.0, 1e-170, -1e-200, 1e150]),
    )
    theta = np.array(data.draw(st.lists(values, min_size=task.theta_dim, max_size=task.theta_dim)))
    x = np.array(data.draw(st.lists(values, min_size=task.x_dim, max_size=task.x_dim)))
    if name == "lorenz96":
        theta[2] = abs(theta[2]) + 1e-3  # sigma_e > 0 is required (tested below)
    with np.errstate(all="ignore"):
        log_lik = task.log_likelihood(theta[None, :], x)
    assert not np.isnan(log_lik).any()
    assert not np.isposinf(log_lik).any()


# -- task-specific -------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.0, -1.0])
def test_lorenz96_requires_positive_sigma(sigma: float) -> None:
    task = gbi_sims.get_task("lorenz96")
    theta = task.prior.sample(4, seed=0)
    theta[2, 2] = sigma
    with pytest.raises(ValueError, match=r"sigma_e .* > 0 .*row 2"):
        task.simulate(theta, seed=0)
    with pytest.raises(ValueError, match=r"sigma_e .* > 0"):
        task.log_likelihood(theta, task.observation(0).x)


def test_lorenz96_sufficient_statistics_input() -> None:
    with pytest.raises(ValueError, match=r"x must have shape \(n, 168\)"):
        sufficient_statistics(np.zeros(167))
    with pytest.raises(ValueError, match="non-finite"):
        sufficient_statistics(np.full(168, np.nan))
    with pytest.raises(ValueError, match="empty"):
        sufficient_statistics(np.zeros((0, 168)))
    stats = sufficient_statistics(np.ones((3, 168)))
    assert all(field.shape == (3,) for field in stats)


def test_gaussian_mixture_prior_option() -> None:
    assert np.array_equal(gbi_sims.get_task("gaussian_mixture").prior.high, [1.0, 1.0])
    task = gbi_sims.get_task("gaussian_mixture", prior="sbibm")
    assert np.array_equal(task.prior.low, [-10.0, -10.0])
    assert np.array_equal(task.prior.high, [10.0, 10.0])
    assert "sbibm" in repr(task)
    assert task.observation(0).theta.shape == (2,)
    for bad in ["SBIBM", "wide", None, 10]:
        with pytest.raises(ValueError, match=r"prior for gaussian_mixture must be one of .*sbibm"):
            gbi_sims.get_task("gaussian_mixture", prior=bad)


def test_unknown_task() -> None:
    with pytest.raises(ValueError, match="unknown task 'lorenz63'"):
        gbi_sims.get_task("lorenz63")
