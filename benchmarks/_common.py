"""Shared plumbing for the benchmarks: machine facts, timing, result files.

Each benchmark module ``benchmarks/bench_<name>.py`` defines

    def add_arguments(parser: argparse.ArgumentParser) -> None: ...
    def run(args: argparse.Namespace) -> dict: ...   # returns a JSON-able record
    def to_markdown(record: dict) -> str: ...        # the section for docs/benchmarks.md

``benchmarks/run.py`` calls them, stamps the record with the commit and the
machine (``machine_info``), writes ``docs/benchmarks/<name>.json`` and rebuilds
``docs/benchmarks.md`` from every stored record.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "docs" / "benchmarks"
WORK_DIR = ROOT / "benchmarks" / "_work"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "gpu": None,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        import numba

        info["numba"] = numba.__version__
        info["numba_threads"] = numba.get_num_threads()
    except ImportError:
        pass
    return info


def best_time(fn: Callable[[], Any], *, repeat: int = 3, min_time: float = 0.2) -> float:
    """Best wall time of ``fn()`` over ``repeat`` rounds, each at least ``min_time`` long."""
    best = float("inf")
    for _ in range(repeat):
        calls = 0
        start = time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return best


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_record(name: str, record: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=float) + "\n")
    os.replace(tmp, path)
    return path


def read_records() -> dict[str, dict[str, Any]]:
    if not RESULTS_DIR.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(RESULTS_DIR.glob("*.json"))}


# -- trained runs shared by the accuracy, calibration, speed and HH benchmarks ---------

RUNS_DIR = WORK_DIR / "runs"


def route_variant(name: str, route: str, default_route: str, sep: str = "-") -> str:
    """``name`` for a benchmark's default route, else ``name`` + ``sep`` + ``route``:
    the record (``hh``, ``hh-auto``) and figure suffix (``""``, ``"_auto"``) of a
    benchmark run on another route, so that it does not replace the default's."""
    return name if route == default_route else f"{name}{sep}{route}"


def run_name(task: str, route: str, simulations: int, seed: int = 0, tag: str = "") -> str:
    """The folder name of one trained cell: ``<task>_<route>_<simulations>_s<seed>[_tag]``."""
    return f"{task}_{route}_{simulations}_s{seed}" + (f"_{tag}" if tag else "")


def trained_run(
    task: str,
    route: str,
    simulations: int,
    *,
    seed: int = 0,
    tag: str = "",
    task_options: dict[str, Any] | None = None,
    progress: bool = True,
    **settings: Any,
):
    """Train (or reload, or resume) one cell with ``gbi.train`` in ``benchmarks/_work/runs``.

    Every benchmark that needs a trained posterior goes through here, so a
    model trained by one benchmark is reused by the others, and a run killed
    half way resumes from its last finished stage (``gbi.RunDirectory``).
    A new tagged cell (an experiment) whose settings differ from its grid
    cell's only in those read after the surrogates (the posterior network's,
    the pool's, ...) adopts that cell's simulations, surrogates and the scores
    those settings leave alone (``gbi.train(reuse=)``).

    Returns:
        the ``gbi.TrainingResult`` (``.posterior``, ``.report``, ``.run_dir``).
    """
    import gbi

    name = run_name(task, route, simulations, seed, tag)
    out = RUNS_DIR / name
    identity = dict(
        route=route, simulations=simulations, seed=seed, task_options=task_options or {}
    )
    reuse = _retire_if_downstream_settings_changed(out, name, identity, settings)
    untagged = RUNS_DIR / run_name(task, route, simulations, seed)
    if (
        reuse is None
        and tag
        and not out.exists()
        and downstream_settings_differing(untagged, identity, settings) is not None
    ):
        # an experiment downstream of the surrogates: the grid cell's
        # simulations and surrogates serve it as they are
        reuse = untagged
    lenders = [
        folder
        for other in SHARED_SURROGATES.get(route, ())
        if _lends_stages(
            folder := RUNS_DIR / run_name(task, other, simulations, seed), identity, settings
        )
    ]
    return gbi.train(
        task,
        route=route,
        simulations=simulations,
        seed=seed,
        out=out,
        progress=progress,
        task_options=task_options,
        reuse=([reuse] if reuse is not None else []) + lenders or None,
        **settings,
    )


#: the grid cells of other routes whose surrogates a route trains too: route
#: auto's NRE is route b-nre's and its score model route a's (``gbi.train(reuse=)``
#: takes them over across routes)
SHARED_SURROGATES = {"auto": ("b-nre", "a"), "b-nre": ("auto",), "a": ("auto",)}


def _lends_stages(folder: Path, identity: dict[str, Any], settings: dict[str, Any]) -> bool:
    """Whether the run in ``folder`` (another route's grid cell) has a finished
    surrogate that the run asked for (``identity`` and ``settings``) may take over:
    it differs only in the route and in settings read after the surrogates."""
    from gbi.config import REUSABLE_ACROSS

    if not any(folder.glob("surrogate_*.json")):
        return False
    differing = _settings_differing(folder, identity, settings)
    return differing is not None and not set(differing) - set(REUSABLE_ACROSS)


def _settings_differing(
    folder: Path, identity: dict[str, Any], settings: dict[str, Any]
) -> list[str] | None:
    """The settings in which the run in ``folder`` differs from the run asked for
    (``identity`` and ``settings``, as ``gbi.train`` takes them); None where
    there is no run."""
    import gbi
    from gbi.config import LEGACY_SETTINGS
    from gbi.rundir import config_differences, read_config

    if not (folder / "config.json").is_file():
        return None
    stored = read_config(folder / "config.json")
    problem = gbi.make_problem(stored["problem"], **identity.get("task_options", {}))
    wanted, _ = gbi.api.resolve_config(
        gbi.RunConfig(problem=stored["problem"], **identity, **settings), problem
    )
    return list(
        config_differences(stored, wanted.to_dict(), LEGACY_SETTINGS, wanted.unread_settings)
    )


def downstream_settings_differing(
    folder: Path, identity: dict[str, Any], settings: dict[str, Any]
) -> list[str] | None:
    """The settings read after the surrogates (``gbi.config.DOWNSTREAM_SETTINGS``:
    the posterior network's, the pool's, ...) in which the run in ``folder``
    differs from the run asked for; None where there is no run or it differs in
    other settings too."""
    from gbi.config import DOWNSTREAM_SETTINGS

    differing = _settings_differing(folder, identity, settings)
    if differing is None or set(differing) - set(DOWNSTREAM_SETTINGS):
        return None
    return differing


RETIRED_DIR = WORK_DIR / "retired"


def _retire_if_downstream_settings_changed(
    out: Path, name: str, identity: dict[str, Any], settings: dict[str, Any]
) -> Path | None:
    """Move a cell trained with other settings downstream of its surrogates aside.

    When the library's defaults for what follows the surrogates change
    (``gbi.config.DOWNSTREAM_SETTINGS``: averaging, per-temperature stopping,
    the temperature draw, ...), a cell's run directory no longer matches what
    ``gbi.train`` is asked for. The directory and its cached metrics then move
    aside (``retire_run``), and the new run adopts the simulations, surrogates
    and the scores still valid from there (``gbi.train(reuse=)``). A directory
    that differs in any other setting is left where it is, for ``gbi.train``
    to refuse.

    Returns:
        the retired run directory to reuse, or None.
    """
    differing = downstream_settings_differing(out, identity, settings)
    if not differing:
        return None
    return retire_run(
        out,
        name,
        why=f"trained with other settings after its surrogates ({', '.join(differing)})",
    )


def retire_run(out: Path, name: str, why: str) -> Path:
    """Move the run directory ``out`` of cell ``name`` and its cached metrics to
    ``_work/retired/<name>@<date of its report>/``; returns the moved run directory
    (whose simulations and surrogate a new run may reuse)."""
    stored_path = out / "config.json"
    report = out / "report.json"
    stamp = time.strftime(
        "%Y%m%d-%H%M", time.gmtime((report if report.is_file() else stored_path).stat().st_mtime)
    )
    target = RETIRED_DIR / f"{name}@{stamp}"
    target.mkdir(parents=True, exist_ok=False)
    os.replace(out, target / "run")
    for metrics in (WORK_DIR / "accuracy").glob(f"{name}_n*.json"):
        os.replace(metrics, target / metrics.name)
    print(f"   {name}: {why}; moved to {target}", flush=True)
    return target / "run"
