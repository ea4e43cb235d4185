from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gbi import RunConfigMismatch, RunDirectory
from gbi.rundir import config_differences


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


def test_config_differences_compares_as_stored() -> None:
    stored = {"beta_range": [0.1, 2.0], "flow": "nsf", "device": "cpu", "old": 1}
    now = {"beta_range": (0.1, 2.0), "flow": "mdn", "device": "cuda", "new": np.int64(3)}
    # tuples equal lists, device is volatile; "new" is missing from the stored
    # config unless legacy supplies it
    assert config_differences(stored, now) == {
        "flow": ("nsf", "mdn"),
        "new": ("<missing>", 3),
        "old": (1, "<missing>"),
    }
    assert config_differences(stored, now, {"new": 3}, frozenset({"flow", "old"})) == {}


def test_unreadable_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{not json")
    with pytest.raises(RunConfigMismatch, match=r"not valid JSON.*new output folder"):
        RunDirectory(tmp_path / "run", {"simulations": 100})
    with pytest.raises(RunConfigMismatch, match="not valid JSON"):
        RunDirectory(tmp_path / "other", {"simulations": 100}).adopt(
            tmp_path / "run", ["simulations"], frozenset()
        )


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


def test_adopt_links_the_named_stages_and_refuses_other_differences(tmp_path: Path) -> None:
    source = RunDirectory(tmp_path / "a", {"problem": "p", "flow": "nsf", "seed": 0})
    source.save_npz("simulations/chunk_00000.npz", theta=np.arange(3.0))
    source.save_json("surrogate_nre.json", {"epochs": 4})
    source.save_json("report.json", {"old": True})
    target = RunDirectory(tmp_path / "b", {"problem": "p", "flow": "mdn", "seed": 0})
    target.save_json("surrogate_nle.json", {"mine": True})
    adopted = target.adopt(source.path, ["simulations", "surrogate_*"], frozenset({"flow"}))
    assert adopted == ["simulations", "surrogate_nre.json"]
    np.testing.assert_array_equal(
        target.load_npz("simulations/chunk_00000.npz")["theta"], np.arange(3.0)
    )
    assert target.load_json("surrogate_nre.json") == {"epochs": 4}
    assert not target.has("report.json")  # not named: the posterior's own files stay behind
    assert target.load_json("config.json")["flow"] == "mdn"  # its own identity is kept
    # a file it already holds is never replaced; a rewrite leaves the source alone
    assert target.adopt(source.path, ["surrogate_*"], frozenset({"flow"})) == []
    target.save_json("surrogate_nre.json", {"epochs": 9})
    assert source.load_json("surrogate_nre.json") == {"epochs": 4}
    other = RunDirectory(tmp_path / "c", {"problem": "p", "flow": "mdn", "seed": 1})
    with pytest.raises(RunConfigMismatch, match="seed: stored 0, now 1"):
        other.adopt(source.path, ["simulations"], frozenset({"flow"}))
    with pytest.raises(RunConfigMismatch, match="not a run directory"):
        other.adopt(tmp_path / "nowhere", ["simulations"], frozenset())
    # a key that differs leaves the stages it shapes to be computed anew
    source.save_npz("scores_pool.npz", scores=np.zeros(3))
    source.save_npz("scores_nre.npz", scores=np.ones(3))
    shapes = {"flow": ("scores_pool*",), "seed": ("synthesized*",)}
    third = RunDirectory(tmp_path / "d", {"problem": "p", "flow": "mdn", "seed": 0})
    assert third.adopt(source.path, ["scores_*"], shapes) == ["scores_nre.npz"]
    with pytest.raises(RunConfigMismatch, match="problem") as refused:
        RunDirectory(tmp_path / "e", {"problem": "q", "flow": "nsf", "seed": 0}).adopt(
            source.path, ["scores_*"], shapes
        )
    assert set(refused.value.differences) == {"problem"}
    with pytest.raises(RunConfigMismatch, match="is this run directory"):
        other.adopt(other.path, ["simulations"], frozenset())
