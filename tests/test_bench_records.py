"""The benchmark documents: a benchmark's variant records (``hh-auto``) are rendered too."""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
RECORD = BENCHMARKS.parent / "docs" / "benchmarks" / "hh.json"


@pytest.mark.skipif(not RECORD.is_file(), reason="no stored hh record")
def test_variant_records_get_their_own_section_and_command(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_hh
    import run

    base = json.loads(RECORD.read_text())
    auto = copy.deepcopy(base)
    auto["route"] = "auto"
    auto["arguments"]["route"] = "auto"
    auto["training"]["auto"] = "Route A pairs for 8 of 16 temperature cells"
    records = {"hh-auto": auto, "hh": base, "hyper": base}
    assert [k for k, _ in run._variants(records, "hh")] == ["hh", "hh-auto"]
    results = run.build_results(records)
    assert results.count("`nox -s bench -- hh --route auto`, measured at") == 1
    assert "Route AUTO model" in results and "Route B-NLE model" in results
    assert results.count("Route auto's choice: Route A pairs for 8 of 16") == 1
    assert "## hh-auto" in run.build_markdown(records)

    parser = argparse.ArgumentParser()
    bench_hh.add_arguments(parser)
    assert bench_hh.record_name(parser.parse_args([])) == "hh"
    assert bench_hh.record_name(parser.parse_args(["--route", "auto"])) == "hh-auto"


def test_calibration_of_another_route_is_its_own_record(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_calibration

    parser = argparse.ArgumentParser()
    bench_calibration.add_arguments(parser)
    assert bench_calibration.record_name(parser.parse_args([])) == "calibration"
    auto = parser.parse_args(["--route", "auto"])
    assert bench_calibration.record_name(auto) == "calibration-auto"


def test_cached_metrics_belong_to_the_model_they_judged(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_accuracy

    path = tmp_path / "cell_n2000.json"
    path.write_text(json.dumps({"0/1": {"c2st": 0.6}}))
    # rows from before fingerprints were kept stay with the model now judged
    assert bench_accuracy.load_rows(path, "aaa") == {"0/1": {"c2st": 0.6}, "_model": "aaa"}
    path.write_text(json.dumps({"0/1": {"c2st": 0.6}, "_model": "aaa"}))
    assert bench_accuracy.load_rows(path, "aaa")["0/1"] == {"c2st": 0.6}
    assert bench_accuracy.load_rows(path, "bbb") == {"_model": "bbb"}
    assert bench_accuracy.load_rows(path)["0/1"] == {"c2st": 0.6}
    assert bench_accuracy.load_rows(tmp_path / "none.json", "aaa") == {"_model": "aaa"}


#: network sizes small enough for a cell to train in seconds
TINY = {"max_epochs": 2, "hidden_features": 16, "surrogate_hidden": 16, "flow_layers": 1}


@pytest.fixture
def work_dir(tmp_path: Path, monkeypatch) -> Path:
    """The benchmarks' work folder (runs, retired runs, metrics) moved to ``tmp_path``."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _common
    import bench_accuracy

    monkeypatch.setattr(_common, "WORK_DIR", tmp_path)
    monkeypatch.setattr(_common, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(_common, "RETIRED_DIR", tmp_path / "retired")
    monkeypatch.setattr(bench_accuracy, "CELLS_DIR", tmp_path / "accuracy")
    return tmp_path


def test_a_cell_trained_with_other_posterior_settings_is_retired_and_reused(
    work_dir: Path,
) -> None:
    import _common

    import gbi

    tmp_path, tiny = work_dir, TINY
    common = {"verbose": False, "progress": False, "device": "cpu", "simulations": 300}
    name = _common.run_name("two_moons", "b-nre", 300)
    old = gbi.train(
        "two_moons",
        out=tmp_path / "runs" / name,
        ema_decay=None,
        per_temperature=False,
        **common,
        **tiny,
    )
    (tmp_path / "accuracy").mkdir()
    (tmp_path / "accuracy" / f"{name}_n2000.json").write_text("{}")
    # the same settings: nothing retired, the finished run is loaded
    again = _common.trained_run(
        "two_moons", "b-nre", 300, progress=False, ema_decay=None, per_temperature=False, **tiny
    )
    assert again.report["npe"]["history"] == old.report["npe"]["history"]
    assert not (tmp_path / "retired").exists()
    # today's defaults: the old cell and its metrics move aside, its NRE is reused
    new = _common.trained_run("two_moons", "b-nre", 300, progress=False, **tiny)
    (retired,) = (tmp_path / "retired").iterdir()
    assert retired.name.startswith(f"{name}@")
    assert (retired / f"{name}_n2000.json").is_file()
    assert not (tmp_path / "accuracy" / f"{name}_n2000.json").exists()
    assert json.loads((retired / "run" / "config.json").read_text())["ema_decay"] is None
    assert new.report["config"]["ema_decay"] == 0.998
    assert new.report["simulations"]["reused"] == 300
    assert (retired / "run" / "surrogate_nre.safetensors").read_bytes() == (
        tmp_path / "runs" / name / "surrogate_nre.safetensors"
    ).read_bytes()
    # another difference as well (patience): nothing is moved, gbi.train refuses
    with pytest.raises(gbi.RunConfigMismatch, match="patience"):
        _common.trained_run(
            "two_moons", "b-nre", 300, progress=False, ema_decay=None, patience=3, **tiny
        )
    assert len(list((tmp_path / "retired").iterdir())) == 1
    assert (tmp_path / "runs" / name / "posterior.safetensors").is_file()
    # an experiment on the posterior network alone (a tagged cell) adopts the
    # grid cell's NRE; one that changes the NRE's settings trains its own
    tagged = _common.trained_run(
        "two_moons", "b-nre", 300, progress=False, tag="mdn", **{**tiny, "flow": "mdn"}
    )
    assert tagged.report["config"]["flow"] == "mdn"
    assert (tmp_path / "runs" / f"{name}_mdn" / "surrogate_nre.safetensors").stat().st_ino == (
        tmp_path / "runs" / name / "surrogate_nre.safetensors"
    ).stat().st_ino
    wider = _common.trained_run(
        "two_moons", "b-nre", 300, progress=False, tag="wide", **{**tiny, "surrogate_hidden": 8}
    )
    assert wider.report["surrogate"]["history"] != new.report["surrogate"]["history"]


def test_cells_of_another_seed_are_experiments_not_grid_cells(monkeypatch) -> None:
    """A seed-1 cell must not stand in for the grid's seed-0 cell in the targets table."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_accuracy

    record = {
        "cells": {
            "t/b-nre/10": {"tag": "", "seed": 0},
            "t/b-nre/10/s1": {"tag": "", "seed": 1},
            "t/b-nre/10/x": {"tag": "x", "seed": 0},
        }
    }
    assert list(bench_accuracy._official(record)) == ["t/b-nre/10"]


def test_the_plan_names_what_an_interrupted_cell_continues_from(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import _common
    import bench_accuracy

    monkeypatch.setattr(_common, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(bench_accuracy, "CELLS_DIR", tmp_path / "cells")
    parser = argparse.ArgumentParser()
    bench_accuracy.add_arguments(parser)
    args = parser.parse_args([])
    name = "lorenz96_b-nre_100000_s0"
    assert bench_accuracy.plan_line(args, name, "b-nre").endswith("judged rows=0")
    folder = tmp_path / "runs" / name
    folder.mkdir(parents=True)
    (folder / "surrogate_nre_snapshot.pt.stage0").write_bytes(b"")
    line = bench_accuracy.plan_line(args, name, "b-nre")
    assert line.endswith(
        "trained=False judged rows=0 continues from surrogate_nre_snapshot.pt.stage0"
    )
    (folder / "posterior.safetensors").write_bytes(b"")
    assert "continues" not in bench_accuracy.plan_line(args, name, "b-nre")


def test_an_experiment_whose_settings_became_the_defaults_is_adopted_as_the_grid_cell(
    work_dir: Path,
) -> None:
    import _common
    import bench_accuracy

    tmp_path, tiny = work_dir, TINY
    (tmp_path / "accuracy").mkdir()
    name = _common.run_name("two_moons", "b-nre", 300)
    # the grid cell under the old default; the experiment with what is now the default
    _common.trained_run(
        "two_moons", "b-nre", 300, progress=False, beta_sampling="distribution", **tiny
    )
    (tmp_path / "accuracy" / f"{name}_n2000.json").write_text('{"old": 1}')
    experiment = _common.trained_run(
        "two_moons", "b-nre", 300, progress=False, tag="ess", beta_sampling="ess", **tiny
    )
    posterior = (experiment.run_dir / "posterior.safetensors").read_bytes()
    (tmp_path / "accuracy" / f"{name}_ess_n2000.json").write_text('{"new": 1}')
    _common.trained_run("two_moons", "b-nre", 300, progress=False, tag="mdn", flow="mdn", **tiny)
    parser = argparse.ArgumentParser()
    bench_accuracy.add_arguments(parser)
    record = {
        "cells": {"two_moons/b-nre/300/ess": {"commit": "abc1234", "date": "d", "tag": "ess"}}
    }

    def adopt(tag: str) -> dict:
        args = parser.parse_args(["--adopt", tag])
        return bench_accuracy.adopt_experiment(args, record, "two_moons", "b-nre", 300, tiny)

    with pytest.raises(SystemExit, match="other settings"):
        adopt("mdn")  # flow=mdn is not the default
    with pytest.raises(SystemExit, match="no trained posterior"):
        adopt("nothing")
    assert adopt("ess") == {
        "commit": "abc1234",
        "date": "d",
        "adopted_from": "two_moons/b-nre/300/ess",
    }
    grid = tmp_path / "runs" / name
    assert (grid / "posterior.safetensors").read_bytes() == posterior
    assert not (tmp_path / "runs" / f"{name}_ess").exists()
    assert json.loads((tmp_path / "accuracy" / f"{name}_n2000.json").read_text()) == {"new": 1}
    (retired,) = (tmp_path / "retired").iterdir()
    assert json.loads((retired / f"{name}_n2000.json").read_text()) == {"old": 1}
    assert json.loads((retired / "run" / "config.json").read_text())["beta_sampling"] == (
        "distribution"
    )
    # the grid cell now loads as it is: today's defaults, nothing retrained or retired
    loaded = _common.trained_run("two_moons", "b-nre", 300, progress=False, **tiny)
    assert loaded.report["npe"]["history"] == experiment.report["npe"]["history"]
    assert len(list((tmp_path / "retired").iterdir())) == 1
    with pytest.raises(SystemExit, match="no trained posterior"):
        adopt("ess")  # adopted already


def test_an_anchor_that_fails_to_train_is_recorded_not_raised(tmp_path: Path, monkeypatch) -> None:
    """sbi's NPE stops on a non-finite loss (lorenz96 at 100k): the cell records why."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_accuracy

    monkeypatch.setattr(bench_accuracy, "CELLS_DIR", tmp_path / "cells")
    (tmp_path / "cells").mkdir()
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        raise ValueError("NaN/Inf present in NPE loss.\nmore detail")

    monkeypatch.setattr(bench_accuracy, "train_sbi_npe", failing)
    parser = argparse.ArgumentParser()
    bench_accuracy.add_arguments(parser)
    args = parser.parse_args([])
    cell = bench_accuracy.sbi_cell(args, "two_moons", 20)
    assert cell["rows"] == [] and cell["training"]["failed"] == "NaN/Inf present in NPE loss."
    again = bench_accuracy.sbi_cell(args, "two_moons", 20)  # seeded: not retried
    assert again["training"]["failed"] == cell["training"]["failed"] and len(calls) == 1

    rows = [
        {"observation": o, "beta": b, "c2st": 0.55, "mmd": 0.0}
        for o in (0, 1, 2)
        for b in bench_accuracy.BETAS
    ]
    stamp = {"tag": "", "seed": 0, "n": 2000, "commit": "abc", "simulations": 20}
    record = {
        "cells": {
            "two_moons/b-nre/20": {"task": "two_moons", "route": "b-nre", "rows": rows, **stamp},
            "two_moons/sbi/20": {"task": "two_moons", "route": "sbi", **cell, **stamp},
        }
    }
    (at_one,) = [e for e in bench_accuracy.summarize(record) if e["beta"] == 1.0]
    assert at_one["sbi_failed"] == "NaN/Inf present in NPE loss." and "sbi_c2st" not in at_one
    text = bench_accuracy.to_markdown(record)
    assert "failed: NaN/Inf present in NPE loss." in text and "sbi failed to train" in text


def test_a_route_auto_cell_takes_over_the_surrogates_of_the_grids_other_routes(
    work_dir: Path,
) -> None:
    """Route auto's NRE is route b-nre's cell's, its score model route a's."""
    import _common

    tmp_path, runs = work_dir, work_dir / "runs"
    _common.trained_run("two_moons", "a", 300, progress=False, **TINY)
    b = _common.trained_run("two_moons", "b-nre", 300, progress=False, **TINY)
    # a cell of other settings upstream lends nothing
    _common.trained_run("two_moons", "b-nre", 300, progress=False, seed=1, **TINY)
    auto = _common.trained_run("two_moons", "auto", 300, progress=False, **TINY)
    here = runs / _common.run_name("two_moons", "auto", 300)
    for name, route in (
        ("surrogate_nre.safetensors", "b-nre"),
        ("surrogate_score.safetensors", "a"),
    ):
        lender = runs / _common.run_name("two_moons", route, 300)
        assert (here / name).stat().st_ino == (lender / name).stat().st_ino
    assert auto.report["surrogate"]["history"] == b.report["surrogate"]["history"]
    assert not (tmp_path / "retired").exists()
    assert not _common._lends_stages(
        runs / _common.run_name("two_moons", "b-nre", 300, 1),
        dict(route="auto", simulations=300, seed=0, task_options={}),
        TINY,
    )


@pytest.mark.skipif(not RECORD.is_file(), reason="no stored hh record")
def test_the_hh_text_says_where_the_weights_collapse(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_hh

    record = json.loads(RECORD.read_text())
    weights = record["training"]["weights"]
    weights["beta"], weights["relative_ess"] = [0.1, 0.5, 0.9, 1.0], [0.0, 0.005, 0.7, 1.0]
    facts = " ".join(bench_hh._facts(record))
    assert "Up to beta = 0.5 the weights are collapsed" in facts
    assert "fewer than 100 effective pairs" in facts
    weights["relative_ess"] = [0.02, 0.3, 0.7, 1.0]
    assert "collapsed" not in " ".join(bench_hh._facts(record))
    # route auto trains on Route A pairs there: said once, its own way
    weights["relative_ess"] = [0.0, 0.005, 0.7, 1.0]
    record["training"]["auto"] = "Route A pairs for 8 of 16 temperature cells"
    assert "collapsed" not in " ".join(bench_hh._facts(record))


def test_the_network_label_says_how_route_auto_trained_its_route_a_rows(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_accuracy

    config = {"ema_decay": 0.998, "per_temperature": True, "beta_sampling": "ess"}
    weighted = {"config": config, "auto": {"summary": "pool"}}
    assert bench_accuracy.network_label(
        {"training": bench_accuracy.training_summary(weighted)}
    ) == ("avg 0.998, per-beta stop, ess beta")
    route_a = {"beta_sampling": "distribution", "per_temperature": False}
    mixed = {"config": config, "auto": {"summary": "Route A", "posterior_settings": route_a}}
    label = bench_accuracy.network_label({"training": bench_accuracy.training_summary(mixed)})
    assert label == "avg 0.998"


def _cell(task: str, route: str, simulations: int, c2st: dict[float, float]) -> dict:
    rows = [
        {"observation": obs, "beta": beta, "c2st": value}
        for beta, value in c2st.items()
        for obs in (0, 1, 2)
    ]
    return dict(
        task=task, route=route, simulations=simulations, rows=rows, n=2000, training={}, commit="a"
    )


def test_the_results_open_with_what_is_met_and_what_is_missing(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_accuracy
    import run

    betas = bench_accuracy.BETAS
    good = dict.fromkeys(betas, 0.52)
    cells = {
        "two_moons/b-nre/10000": _cell("two_moons", "b-nre", 10_000, {**good, 1.5: 0.63}),
        "two_moons/auto/10000": _cell("two_moons", "auto", 10_000, {**good, 1.0: 0.58, 1.5: 0.65}),
        "two_moons/sbi/10000": _cell("two_moons", "sbi", 10_000, {1.0: 0.50}),
    }
    lines = bench_accuracy.at_a_glance({"cells": cells})
    first = lines[0]
    assert first.startswith("two_moons, 10k: best-route median C2ST 0.520-0.630")
    assert "target <= 0.60 met at 8 of 9 betas (worst 0.630 at beta 1.5)" in first
    assert "beta = 1: 0.520 against sbi's 0.500 (tied within noise)" in first
    missing = lines[-1]
    assert missing.startswith("Grid cells not measured yet: two_moons a 10k, two_moons b-nle 10k")
    assert "two_moons auto 10k" not in missing and "lorenz96 auto 100k" in missing

    results = run.build_results({"accuracy": {"cells": cells, **_stamped()}})
    glance = results.index("## At a glance")
    assert glance < results.index("## Accuracy across temperatures")
    assert results.index("- two_moons, 10k: best-route") > glance
    if (BENCHMARKS / "findings.md").is_file():  # the notebook closes the page
        assert results.index("## Findings") > results.index("## Accuracy across temperatures")


def _stamped() -> dict:
    machine = dict(cpu_count=2, processor="x86_64", gpu=None)
    return dict(commit="abc", date="2026-12-04", machine=machine, wall_seconds=1.0)


CALIBRATION = BENCHMARKS.parent / "docs" / "benchmarks" / "calibration.json"


@pytest.mark.skipif(not CALIBRATION.is_file(), reason="no stored calibration record")
def test_the_calibration_names_sbis_anchor_or_why_it_is_missing(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_calibration

    record = json.loads(CALIBRATION.read_text())
    task = record["tasks"][0]
    at_one = next(c for c in task["cells"] if c["beta"] == 1.0)
    anchor = {**copy.deepcopy(at_one), "max_coverage_error": 0.011, "within_tolerance": True}
    task["anchor"] = {**anchor, "training": {"seconds": 99.0, "epochs": 77, "best_val": 1.0}}
    text = bench_calibration.to_markdown(record)
    assert f"| {task['task']}, sbi NPE (anchor) | 1 | exact |" in text
    assert "sbi's NPE on the same simulations, at beta = 1: calibrated" in text
    assert "77 epochs, 99 s" in text
    glance = bench_calibration.at_a_glance(record)[0]
    assert glance.endswith("; sbi's NPE at beta 1: 0.011 (calibrated).")
    task["anchor"] = {"training": {"seconds": 3.0, "failed": "NaN/Inf present in NPE loss."}}
    text = bench_calibration.to_markdown(record)
    assert "sbi NPE (anchor) | 1 | failed to train: NaN/Inf present in NPE loss." in text
    assert "sbi's NPE at beta 1" not in bench_calibration.at_a_glance(record)[0]


SPEED = BENCHMARKS.parent / "docs" / "benchmarks" / "speed.json"


@pytest.mark.skipif(not SPEED.is_file(), reason="no stored speed record")
def test_the_speed_section_says_why_a_target_is_missed(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_speed

    record = json.loads(SPEED.read_text())
    for task in record["sampling"]:
        for row in task["rows"]:
            row.update(ours_seconds=0.05, reference_seconds=2.0, ratio=40.0, meets_target=False)
    record["sampling"][0]["rows"][0].update(reference_seconds=0.5, ratio=10.0)
    training = record["training"]
    training["ours"].update(npe_epochs=500, seconds=220.0, stages={"nre": 20.0, "npe": 200.0})
    training["ours"].pop("npe_best_epochs", None)  # records before it was kept
    training["sbi"].update(available=True, epochs=128)
    training["meets_target"] = False
    text = bench_speed.to_markdown(record)
    # 1000x of 0.5-2 s is 0.5-2 ms; 50 ms is 25-100 times that
    assert "10,000 draws in 0.5-2 ms" in text and "ours take 50 ms, 25-100x longer" in text
    assert "500 epochs here (200 of the 220 s), where sbi's single-beta NPE stops after 128" in text
    training["ours"]["npe_best_epochs"] = {"beta=0.1": 90, "beta=2": 499}
    text = bench_speed.to_markdown(record)
    assert (
        "(200 of the 220 s; the epoch each validation temperature kept: beta 0.1: 91, beta 2: 500)"
        in text
    )

    for task in record["sampling"]:
        for row in task["rows"]:
            row.update(meets_target=True)
    training["meets_target"] = True
    text = bench_speed.to_markdown(record)
    assert "Why (a)" not in text and "Why (b)" not in text


@pytest.mark.skipif(not SPEED.is_file(), reason="no stored speed record")
def test_the_glance_says_when_training_meets_its_target_only_off_the_defaults(
    monkeypatch,
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_speed

    record = json.loads(SPEED.read_text())
    training = record["training"]

    def glance() -> str:
        return next(x for x in bench_speed.at_a_glance(record) if x.startswith("Training"))

    training.update(ratio=2.0, meets_target=False)
    for key in bench_speed.VARIANT_KEYS:
        training[key].update(ratio=0.9, meets_target=False)
    training["ours_compiled_warm"].update(ratio=0.45, meets_target=True)
    assert glance().endswith(
        "2.00x sbi's wall time with the defaults, 0.45x at best (posterior_epochs=150, "
        "compile (warm cache)); target <= 0.5x met with those settings, not with the defaults."
    )
    training["ours_compiled_warm"].update(ratio=0.6, meets_target=False)
    assert glance().endswith(
        "0.60x at best (posterior_epochs=150, compile (warm cache)); target <= 0.5x, not met."
    )
    training.update(ratio=0.4, meets_target=True)
    training["ours_compiled_warm"].update(ratio=0.3, meets_target=True)
    assert glance().endswith("target <= 0.5x met.")
