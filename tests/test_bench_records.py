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
