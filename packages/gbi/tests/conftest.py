from __future__ import annotations

import os

import pytest

# Tiny networks and few epochs: these tests check that every stage works and
# composes, not the accuracy (that is the benchmarks' job).
TINY = {
    "max_epochs": 2,
    "patience": 2,
    "hidden_features": 16,
    "surrogate_hidden": 16,
    "flow_layers": 2,
    "num_sigmas": 4,
    "langevin_steps": 3,
    "batch_size": 128,
    "chunk_size": 200,
}


def pytest_configure(config: pytest.Config) -> None:
    # TINY shortens Route A's synthesis for every route, and ``gbi.train`` warns
    # about settings a run never reads; tests that check that warning record it
    # (``pytest.warns``) whatever this filter says
    config.addinivalue_line(
        "filterwarnings", "ignore:ignored, this run never reads them:UserWarning"
    )


@pytest.fixture(autouse=True)
def _few_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
