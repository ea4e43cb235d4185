"""Distributed simulation on a Dask LocalCluster gives the numbers of a local run."""

from __future__ import annotations

import numpy as np
import pytest

import gbi_sims
from gbi_sims import simulate_distributed

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as dask_client:
        yield dask_client
    cluster.close()


@pytest.mark.parametrize("name", ["two_moons", "slcp", "lorenz96"])
def test_dask_executor_matches_local_run(client, name: str) -> None:
    if name not in gbi_sims.list_tasks():
        pytest.skip(f"{name} not registered")
    task = gbi_sims.get_task(name)
    theta = task.prior.sample(3_001, seed=1)
    local = task.simulate(theta, seed=42)
    spread = simulate_distributed(task, theta, 42, client.get_executor(), chunk_size=700)
    np.testing.assert_array_equal(spread, local)
