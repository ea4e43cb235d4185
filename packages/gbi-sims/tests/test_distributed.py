from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

import gbi_sims
from gbi_sims import simulate_distributed


def test_thread_pool_matches_local_run() -> None:
    task = gbi_sims.get_task("two_moons")
    theta = task.prior.sample(10_001, seed=5)
    local = task.simulate(theta, seed=11)
    with ThreadPoolExecutor(3) as pool:
        spread = simulate_distributed(task, theta, 11, pool, chunk_size=999)
    np.testing.assert_array_equal(spread, local)


def test_process_pool_matches_local_run_with_generator_seed() -> None:
    task = gbi_sims.get_task("two_moons")
    theta = task.prior.sample(5_000, seed=6)
    local = task.simulate(theta, seed=np.random.default_rng(3))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        spread = simulate_distributed(task, theta, np.random.default_rng(3), pool, chunk_size=1_234)
    np.testing.assert_array_equal(spread, local)


def test_bad_arguments() -> None:
    task = gbi_sims.get_task("two_moons")
    theta = task.prior.sample(10, seed=0)
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(ValueError, match="chunk_size"):
            simulate_distributed(task, theta, 0, pool, chunk_size=0)
        with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
            simulate_distributed(task, theta[:, :1], 0, pool)
    with pytest.raises(TypeError, match="submit"):
        simulate_distributed(task, theta, 0, object())  # type: ignore[arg-type]
