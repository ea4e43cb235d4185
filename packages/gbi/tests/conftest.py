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


@pytest.fixture(autouse=True)
def _few_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
