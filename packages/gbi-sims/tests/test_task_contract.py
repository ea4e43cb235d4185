"""The task contract, run over every registered task (``gbi_sims.list_tasks()``).

Batches are small so that expensive simulators (hodgkin_huxley) join at little
cost; likelihood checks skip tasks without a tractable likelihood.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

import gbi_sims

TASKS = gbi_sims.list_tasks()
N = 24  # rows per batch in the contract tests


@pytest.fixture(scope="module", params=TASKS)
def task(request: pytest.FixtureRequest) -> gbi_sims.Task:
    return gbi_sims.get_task(request.param)


@pytest.fixture(scope="module")
def theta(task: gbi_sims.Task) -> np.ndarray:
    return task.prior.sample(N, seed=101)


@pytest.fixture(scope="module")
def x(task: gbi_sims.Task, theta: np.ndarray) -> np.ndarray:
    return task.simulate(theta, seed=202)


def test_all_issue_tasks_registered() -> None:
    assert {"two_moons", "gaussian_mixture", "slcp", "lorenz96"} <= set(TASKS)


def test_attributes(task: gbi_sims.Task) -> None:
    assert task.name in TASKS
    assert gbi_sims.get_task(task.name).name == task.name
    assert isinstance(task.theta_dim, int)
    assert isinstance(task.x_dim, int)
    assert task.x_dim > 0
    assert len(task.theta_names) == task.theta_dim == task.prior.dim
    assert len(set(task.theta_names)) == task.theta_dim
    assert isinstance(repr(task), str)
    assert task.n_observations >= 10


# -- simulate: shapes, dtypes, determinism -----------------------------------


def test_simulate_shape_and_dtype(task: gbi_sims.Task, theta: np.ndarray, x: np.ndarray) -> None:
    assert x.shape == (N, task.x_dim)
    assert x.dtype == np.float64
    assert x.flags.c_contiguous
    one = task.simulate(theta[:1], seed=0)
    assert one.shape == (1, task.x_dim)


def test_simulate_accepts_lists_and_float32(task: gbi_sims.Task, theta: np.ndarray) -> None:
    theta32 = theta[:3].astype(np.float32)
    from_list = task.simulate(theta32.tolist(), seed=5)
    np.testing.assert_array_equal(from_list, task.simulate(theta32.astype(np.float64), seed=5))
    assert from_list.dtype == np.float64


def test_simulate_does_not_modify_theta(task: gbi_sims.Task, theta: np.ndarray) -> None:
    copy = theta.copy()
    task.simulate(theta, seed=1)
    np.testing.assert_array_equal(theta, copy)


def test_same_int_seed_same_x(task: gbi_sims.Task, theta: np.ndarray, x: np.ndarray) -> None:
    np.testing.assert_array_equal(task.simulate(theta, seed=202), x)
    assert not np.array_equal(task.simulate(theta, seed=203), x, equal_nan=True)


def test_generator_seed(task: gbi_sims.Task, theta: np.ndarray) -> None:
    # a Generator contributes one draw: equal generators give equal x, and reusing
    # one generator gives fresh numbers
    rng_a = np.random.default_rng(7)
    rng_b = np.random.default_rng(7)
    first = task.simulate(theta, seed=rng_a)
    np.testing.assert_array_equal(first, task.simulate(theta, seed=rng_b))
    second = task.simulate(theta, seed=rng_a)
    assert not np.array_equal(first, second, equal_nan=True)
    np.testing.assert_array_equal(second, task.simulate(theta, seed=rng_b))
    # and it is not the int seed: the int goes through SeedSequence first
    assert not np.array_equal(first, task.simulate(theta, seed=7), equal_nan=True)


def test_rows_depend_only_on_seed_and_index(
    task: gbi_sims.Task, theta: np.ndarray, x: np.ndarray
) -> None:
    # a prefix of the batch is simulated exactly as in the whole batch
    np.testing.assert_array_equal(task.simulate(theta[:5], seed=202), x[:5])


@pytest.mark.parametrize("chunk_size", [1, 7, N])
def test_chunk_size_does_not_change_x(
    task: gbi_sims.Task, theta: np.ndarray, x: np.ndarray, chunk_size: int
) -> None:
    np.testing.assert_array_equal(task.simulate(theta, seed=202, chunk_size=chunk_size), x)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_thread_count_does_not_change_x(task: gbi_sims.Task, theta: np.ndarray) -> None:
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        serial = task.simulate(theta, seed=9)
        numba.set_num_threads(2)
        parallel = task.simulate(theta, seed=9)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(serial, parallel)


_SUBPROCESS = textwrap.dedent(
    """
    import json, sys
    import numba, numpy as np, gbi_sims
    out = {"threads": numba.get_num_threads()}
    for name in json.loads(sys.argv[1]):
        task = gbi_sims.get_task(name)
        x = task.simulate(task.prior.sample(int(sys.argv[2]), seed=101), seed=202)
        out[name] = x.tobytes().hex()
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def subprocess_runs() -> dict[int, dict[str, str]]:
    """x of every task, simulated in fresh interpreters with NUMBA_NUM_THREADS = 1 and 2."""
    runs = {}
    for threads in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        done = subprocess.run(
            [sys.executable, "-c", _SUBPROCESS, json.dumps(TASKS), str(N)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        runs[threads] = json.loads(done.stdout.strip().splitlines()[-1])
        assert runs[threads]["threads"] == threads
    return runs


def test_numba_num_threads_env_does_not_change_x(
    task: gbi_sims.Task, x: np.ndarray, subprocess_runs: dict[int, dict[str, str]]
) -> None:
    for threads in (1, 2):
        got = np.frombuffer(bytes.fromhex(subprocess_runs[threads][task.name]), dtype=np.float64)
        np.testing.assert_array_equal(got.reshape(x.shape), x)


# -- prior ---------------------------------------------------------------------


def test_prior_samples_inside_box_with_log_prob(task: gbi_sims.Task) -> None:
    prior = task.prior
    theta = prior.sample(20_000, seed=3)
    assert theta.shape == (20_000, task.theta_dim)
    assert theta.dtype == np.float64
    assert prior.contains(theta).all()
    assert np.all((theta >= prior.low) & (theta <= prior.high))
    volume = np.prod(prior.high - prior.low)
    np.testing.assert_allclose(prior.log_prob(theta), -np.log(volume), rtol=1e-12)
    # uniform: each coordinate's mean is the box centre, to 5 standard errors
    width = prior.high - prior.low
    se = width / np.sqrt(12 * theta.shape[0])
    assert np.all(np.abs(theta.mean(axis=0) - (prior.low + prior.high) / 2) < 5 * se)
    outside = np.vstack([prior.low - 0.1 * width, prior.high + 0.1 * width])
    assert not prior.contains(outside).any()
    assert np.all(prior.log_prob(outside) == -np.inf)
    np.testing.assert_array_equal(prior.sample(5, seed=3), theta[:5])


# -- observations --------------------------------------------------------------


def test_observations_reproducible_and_consistent(task: gbi_sims.Task) -> None:
    fresh = gbi_sims.get_task(task.name)
    thetas, xs = [], []
    for i in range(10):
        obs = task.observation(i)
        again = fresh.observation(i)
        assert obs.index == i
        assert obs.theta.shape == (task.theta_dim,)
        assert obs.x.shape == (task.x_dim,)
        np.testing.assert_array_equal(obs.theta, again.theta)
        np.testing.assert_array_equal(obs.x, again.x)
        assert np.isfinite(obs.x).all()
        assert task.prior.contains(obs.theta[None, :])[0]
        assert obs.description
        thetas.append(obs.theta)
        xs.append(obs.x)
    assert len({t.tobytes() for t in thetas}) == 10
    if task.has_likelihood:
        log_lik = task.log_likelihood(np.array(thetas), np.array(xs))
        assert np.isfinite(log_lik).all()


@pytest.mark.parametrize("index", [-1, 10_000, 1.0, "0"])
def test_observation_index_out_of_range(task: gbi_sims.Task, index: object) -> None:
    with pytest.raises(ValueError, match="observation"):
        task.observation(index)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="observation"):
        task.check_observation_index(index)


def test_the_observation_check_names_the_range(task: gbi_sims.Task) -> None:
    last = task.n_observations - 1
    assert task.check_observation_index(np.int64(last)) == last
    message = f"{task.name} has {task.n_observations} observations (0..{last}), got index"
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        task.check_observation_index(last + 1)


# -- likelihood ----------------------------------------------------------------


def test_log_likelihood_shapes(task: gbi_sims.Task, theta: np.ndarray, x: np.ndarray) -> None:
    if not task.has_likelihood:
        with pytest.raises(NotImplementedError, match="no tractable likelihood"):
            task.log_likelihood(theta, x)
        return
    matched = task.log_likelihood(theta, x)
    assert matched.shape == (N,)
    assert matched.dtype == np.float64
    assert np.isfinite(matched).all()  # x simulated from theta
    # one x for every theta: (x_dim,) and (1, x_dim) agree, and match row by row
    one = task.log_likelihood(theta, x[0])
    np.testing.assert_array_equal(one, task.log_likelihood(theta, x[:1]))
    rowwise = task.log_likelihood(theta, np.repeat(x[:1], N, axis=0))
    np.testing.assert_array_equal(one, rowwise)
    assert one[0] == matched[0]
    assert not np.isnan(one).any()
    assert not np.isposinf(one).any()
