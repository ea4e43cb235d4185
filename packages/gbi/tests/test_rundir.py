from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gbi import RunConfigMismatch, RunDirectory


def test_reuse_with_same_config_and_volatile_keys(tmp_path: Path) -> None:
    RunDirectory(tmp_path / "run", {"route": "b-nre", "simulations": 100, "device": "cpu"})
    run = RunDirectory(tmp_path / "run", {"route": "b-nre", "simulations": 100, "device": "cuda"})
    assert json.loads((run.path / "config.json").read_text())["device"] == "cpu"


def test_different_config_is_refused_with_the_differences(tmp_path: Path) -> None:
    RunDirectory(tmp_path / "run", {"route": "b-nre", "simulations": 100})
    with pytest.raises(RunConfigMismatch, match=r"simulations: stored 100, now 200"):
        RunDirectory(tmp_path / "run", {"route": "b-nre", "simulations": 200})


def test_a_setting_added_later_matches_its_legacy_value(tmp_path: Path) -> None:
    # a run written before "contrast" existed used contrast = 0 without naming it
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"simulations": 100}))
    RunDirectory(tmp_path / "run", {"simulations": 100, "contrast": 0}, {"contrast": 0})
    with pytest.raises(RunConfigMismatch, match=r"contrast: stored 0, now 1000"):
        RunDirectory(tmp_path / "run", {"simulations": 100, "contrast": 1000}, {"contrast": 0})
    with pytest.raises(RunConfigMismatch, match=r"contrast: stored '<missing>', now 0"):
        RunDirectory(tmp_path / "run", {"simulations": 100, "contrast": 0})


def test_atomic_files_round_trip_and_leave_no_temporaries(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "run", {"a": 1})
    run.save_npz("sub/data.npz", theta=np.arange(6.0).reshape(3, 2))
    run.save_json("report.json", {"ess": np.float64(3.5), "v": np.arange(2)})
    stored = run.load_npz("sub/data.npz")["theta"]
    np.testing.assert_array_equal(stored, np.arange(6.0).reshape(3, 2))
    assert run.load_json("report.json") == {"ess": 3.5, "v": [0, 1]}
    assert not [p for p in run.path.rglob("*") if p.name.endswith(".tmp")]


def test_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        RunDirectory(tmp_path / "file", {})
