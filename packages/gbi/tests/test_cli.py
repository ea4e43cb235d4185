"""The ``gbi`` command line, run as a user would: in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY

import gbi
from gbi.cli import main

VERBS = ["simulate", "train", "sample", "evaluate", "report", "demo"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gbi", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    gbi.train(
        "two_moons", simulations=300, out=out, verbose=False, progress=False, device="cpu", **TINY
    )
    return out


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``gbi ARGS`` through ``main`` in this process (the subprocess tests cover the entry)."""
    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return int(code or 0), captured.out, captured.err


def test_help_of_every_verb_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    top = run_cli("--help")
    assert top.returncode == 0
    for verb in VERBS:
        assert verb in top.stdout
        code, out, err = run_in_process(capsys, verb, "--help")
        assert code == 0, err
        assert "example" in out
        assert f"gbi {verb}" in out
        assert "--seed" in out
        assert "--device" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "three_moons", "--out", "x"], "unknown task 'three_moons'"),
        (["train", "two_moons", "--route", "z", "--out", "x"], "invalid choice"),
        (["train", "lorenz96", "--embedding", "cnn", "--out", "x"], "invalid choice"),
        (["train", "two_moons", "--embedding", "stencil", "--out", "x"], "declares no x_stencil"),
        (["train", "two_moons", "--patience", "0", "--out", "x"], "patience must be"),
        (["train", "two_moons", "--nle-contrast", "-1", "--out", "x"], "nle_contrast must be"),
        (["train", "two_moons", "--pair-sampling", "x", "--out", "x"], "invalid choice"),
        (["train", "two_moons", "--beta-sampling", "x", "--out", "x"], "invalid choice"),
        (["train", "lorenz96", "--posterior-embedding", "x", "--out", "x"], "invalid choice"),
        (
            [
                "train",
                "lorenz96",
                "--route",
                "a",
                "--posterior-embedding",
                "surrogate",
                "--out",
                "x",
            ],
            "needs route 'b-nre'",
        ),
        (["train", "two_moons", "--ema-decay", "1.5", "--out", "x"], "decay must lie in (0, 1)"),
        (["train", "two_moons", "--ema-decay", "fast", "--out", "x"], "or 'none'"),
        (["simulate", "two_moons", "-n", "-3", "--out", "s.npz"], "-n must be positive"),
        (["simulate", "two_moons", "-n", "3", "--out", "s.txt"], ".npz"),
        (
            ["simulate", "two_moons", "-n", "3", "--out", "s.npz", "--ema-decay", "0.9"],
            "unrecognized",
        ),
        (["sample", "nowhere", "--x", "0,0", "--beta", "1", "--out", "s.npy"], "not a gbi run"),
    ],
)
def test_bad_arguments_give_clear_errors(
    args: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_in_process(capsys, *args)
    assert code == 2
    assert message in err


def test_a_bad_argument_through_the_entry_point(tmp_path: Path) -> None:
    result = run_cli("train", "three_moons", "--out", "x", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown task 'three_moons'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--x", "0.1,abc", "--beta", "1"], "comma-separated numbers"),
        (["--x", "0.1,0.2,0.3", "--beta", "1"], "2 values per observation"),
        (["--x", "0.1,0.2", "--beta", "5"], "outside the trained range"),
        (["--x", "0.1,0.2", "--beta", "-1", "--extrapolate"], "--beta must be finite and > 0"),
        (["--x", "0.1,0.2", "--beta", "0"], "--beta must be finite and > 0"),
        (["--x", "0.1,0.2", "--beta", "nan"], "--beta must be finite and > 0"),
        (["--x", "0.1,0.2", "--beta", "1", "-n", "0"], "-n must be positive"),
        (["--beta", "1"], "exactly one of --x and --x-file"),
    ],
)
def test_sample_bad_arguments(
    trained: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_in_process(
        capsys, "sample", str(trained), *extra, "--out", str(trained / "s.npy")
    )
    assert code == 2, err
    assert message in err


def test_sample_on_a_missing_device_is_a_clear_error(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is present")
    code, _, err = run_in_process(
        capsys,
        "sample",
        str(trained),
        "--x",
        "0,0",
        "--beta",
        "1",
        "--device",
        "cuda",
        "--out",
        str(trained / "s.npy"),
    )
    assert code == 2
    assert "CUDA is not available" in err


def test_sample_writes_npy_and_csv(trained: Path, tmp_path: Path) -> None:
    result = run_cli(
        "sample",
        str(trained),
        "--x",
        "0.1,-0.2",
        "--beta",
        "0.5",
        "-n",
        "64",
        "--out",
        str(tmp_path / "one.npy"),
        "--seed",
        "3",
    )
    assert result.returncode == 0, result.stderr
    one = np.load(tmp_path / "one.npy")
    assert one.shape == (64, 2)
    np.save(tmp_path / "obs.npy", np.array([[0.1, -0.2], [0.0, 0.3], [0.2, 0.2]]))
    result = run_cli(
        "sample",
        str(trained),
        "--x-file",
        str(tmp_path / "obs.npy"),
        "--beta",
        "1.5",
        "-n",
        "10",
        "--out",
        str(tmp_path / "many.csv"),
    )
    assert result.returncode == 0, result.stderr
    table = np.loadtxt(tmp_path / "many.csv", delimiter=",", skiprows=1)
    assert table.shape == (30, 3)
    assert (tmp_path / "many.csv").read_text().splitlines()[0] == "observation,theta_1,theta_2"
    # the same seed gives the same samples
    again = run_cli(
        "sample",
        str(trained),
        "--x",
        "0.1,-0.2",
        "--beta",
        "0.5",
        "-n",
        "64",
        "--out",
        str(tmp_path / "two.npy"),
        "--seed",
        "3",
    )
    assert again.returncode == 0
    np.testing.assert_array_equal(np.load(tmp_path / "two.npy"), one)


def test_evaluate_refuses_a_missing_observation_before_any_work(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in trained.rglob("*"))
    code, _, err = run_in_process(
        capsys, "evaluate", str(trained), "--betas", "0.5", "--observations", "0,10", "-n", "50"
    )
    assert code == 2, err
    assert "two_moons has 10 observations (0..9), got index 10" in err
    assert sorted(p.name for p in trained.rglob("*")) == before  # no reference was drawn


def test_simulate_evaluate_and_report(trained: Path, tmp_path: Path) -> None:
    result = run_cli("simulate", "slcp", "-n", "500", "--out", str(tmp_path / "s.npz"))
    assert result.returncode == 0, result.stderr
    data = np.load(tmp_path / "s.npz")
    assert data["theta"].shape == (500, 5)
    assert data["x"].shape == (500, 8)
    result = run_cli("evaluate", str(trained), "--betas", "0.5,1.0", "-n", "200")
    assert result.returncode == 0, result.stderr
    assert "C2ST" in result.stdout
    metrics = gbi.RunDirectory(trained, gbi.open_run(trained).config).load_json("metrics.json")
    assert [row["beta"] for row in metrics["rows"]] == [0.5, 1.0]
    assert all(0.0 <= row["c2st"] <= 1.0 for row in metrics["rows"])
    result = run_cli("evaluate", str(trained), "--betas", "3.0")
    assert result.returncode == 2
    assert "outside the trained range" in result.stderr
    result = run_cli("report", str(trained), "-n", "200")
    assert result.returncode == 0, result.stderr
    assert (trained / "figures" / "pairs_across_beta.png").is_file()
    assert (trained / "figures" / "metrics_vs_beta.png").is_file()


def test_train_compile_and_beta_sampling_flags_reach_the_run(monkeypatch) -> None:
    seen = {}

    def fake_train(task, **kwargs):
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(gbi.api, "train", fake_train)
    with pytest.raises(SystemExit):
        main(
            [
                "train",
                "two_moons",
                "--out",
                "unused",
                "--compile",
                "--beta-sampling",
                "distribution",
                "--posterior-embedding",
                "surrogate",
            ]
        )
    assert seen["compile"] is True and seen["beta_sampling"] == "distribution"
    assert seen["posterior_embedding"] == "surrogate"
    seen.clear()
    with pytest.raises(SystemExit):
        main(["train", "two_moons", "--out", "unused"])
    assert "compile" not in seen and "beta_sampling" not in seen  # the RunConfig defaults


def test_demo_at_reduced_size(tmp_path: Path) -> None:
    result = run_cli(
        "demo",
        "--out",
        str(tmp_path / "demo"),
        "--simulations",
        "300",
        "--max-epochs",
        "1",
        "--posterior-epochs",
        "2",
        "--n-eval",
        "200",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    assert "figures:" in result.stdout
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["config"]["posterior_epochs"] == 2 and report["config"]["max_epochs"] == 1
    assert len(report["npe"]["history"]["train_loss"]) == 2
    assert "the NPE trained for all" not in result.stderr  # a budget is no warning
    for beta in ("0.10", "0.50", "1.00", "1.50"):
        assert beta in result.stdout
    assert (tmp_path / "demo" / "metrics.json").is_file()
    assert (tmp_path / "demo" / "figures" / "pairs_across_beta.png").is_file()


def test_train_reuse_and_the_posterior_network_switches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--simulations", "300", "--max-epochs", "2", "--no-progress", "--device", "cpu"]
    code, _, err = run_in_process(
        capsys,
        "train",
        "two_moons",
        "--out",
        str(tmp_path / "a"),
        "--ema-decay",
        "none",
        "--no-per-temperature",
        *common,
    )
    assert code == 0, err
    config = (tmp_path / "a" / "config.json").read_text()
    assert '"ema_decay": null' in config and '"per_temperature": false' in config
    code, _, err = run_in_process(
        capsys,
        "train",
        "two_moons",
        "--out",
        str(tmp_path / "b"),
        "--reuse",
        str(tmp_path / "a"),
        *common,
    )
    assert code == 0, err
    assert "reusing from" in err and "surrogate_nre.safetensors" in err
    config = (tmp_path / "b" / "config.json").read_text()
    assert '"ema_decay": 0.998' in config and '"per_temperature": true' in config
    code, _, err = run_in_process(
        capsys,
        "train",
        "two_moons",
        "--out",
        str(tmp_path / "c"),
        "--reuse",
        str(tmp_path / "a"),
        "--seed",
        "1",
        *common,
    )
    assert code == 2 and "seed: stored 0, now 1" in err
    code, _, err = run_in_process(
        capsys,
        "train",
        "two_moons",
        "--out",
        str(tmp_path / "d"),
        "--reuse",
        str(tmp_path / "a"),
        "--posterior-epochs",
        "3",
        *common,
    )
    assert code == 0, err
    assert "surrogate_nre.safetensors" in err  # a posterior-only setting
    report = json.loads((tmp_path / "d" / "report.json").read_text())
    assert report["config"]["posterior_epochs"] == 3
    assert len(report["npe"]["history"]["train_loss"]) == 3


def test_train_reuse_repeats_for_several_run_directories() -> None:
    from gbi.cli import build_parser

    args = build_parser().parse_args(
        ["train", "two_moons", "--route", "auto", "--out", "o", "--reuse", "b", "--reuse", "a"]
    )
    assert args.reuse == ["b", "a"]
    assert build_parser().parse_args(["train", "two_moons", "--out", "o"]).reuse is None


def test_train_takes_an_x_tail_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gbi.cli import build_parser

    args = build_parser().parse_args(
        ["train", "lorenz96", "--out", "o", "--x-tail-threshold", "50"]
    )
    assert args.x_tail_threshold == 50.0
    code, _, err = run_in_process(
        capsys, "train", "two_moons", "--out", str(tmp_path / "r"), "--x-tail-threshold", "-1"
    )
    assert code == 2 and "x_tail_threshold must be a finite number > 0" in err


def test_train_takes_the_pool_check_and_route_auto_pool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gbi.cli import build_parser

    flags = ["--auto-pool", "4", "--pool-max-excess", "1.5", "--auto-fallback", "a"]
    args = build_parser().parse_args(["train", "slcp", "--route", "auto", "--out", "o", *flags])
    assert args.auto_pool == 4 and args.pool_max_excess == 1.5 and args.auto_fallback == "a"
    plain = build_parser().parse_args(["train", "slcp", "--route", "auto", "--out", "o"])
    assert plain.auto_fallback is None  # RunConfig's default, "weights"
    code, _, err = run_in_process(
        capsys, "train", "two_moons", "--route", "auto", "--out", str(tmp_path / "r"),
        "--auto-fallback", "route-a",
    )  # fmt: skip
    assert code == 2 and "invalid choice: 'route-a'" in err, err
    # the values reach RunConfig: its checks answer in one line
    for flag, value, message in (
        ("--auto-pool", "-1", "auto_pool must be >= 0"),
        ("--pool-max-excess", "0", "pool_max_excess must be a finite number > 0"),
        ("--pool-max-excess", "inf", "pool_max_excess must be a finite number > 0"),
    ):
        code, _, err = run_in_process(
            capsys, "train", "two_moons", "--route", "auto", "--out", str(tmp_path / "r"),
            flag, value,
        )  # fmt: skip
        assert code == 2 and message in err, err


def test_the_pool_settings_are_read_only_where_a_pool_is_trained() -> None:
    from gbi import RunConfig

    auto, plain = RunConfig("slcp", route="auto"), RunConfig("slcp")
    assert auto.uses_pool and auto.auto_pool == 2 and auto.pool_max_excess == 2.0
    assert "pool_max_excess" not in auto.unread_settings
    assert not plain.uses_pool and {"pool_max_excess", "auto_pool"} <= plain.unread_settings
    assert not RunConfig("slcp", route="auto", auto_pool=0).uses_pool
    assert RunConfig("slcp", pool_contrast=2).uses_pool
    with pytest.raises(ValueError, match="auto_pool must be an int"):
        RunConfig("slcp", route="auto", auto_pool=True)


def test_route_as_settings_are_read_by_route_auto_only_with_its_route_a_fallback() -> None:
    from gbi import RunConfig

    auto = RunConfig("slcp", route="auto")
    assert auto.auto_fallback == "weights"
    assert {"langevin_steps", "synthetic_pairs"} <= auto.unread_settings
    assert "auto_fallback" not in auto.unread_settings
    with_a = RunConfig("slcp", route="auto", auto_fallback="a")
    assert not {"langevin_steps", "synthetic_pairs"} & with_a.unread_settings
    assert "auto_fallback" in RunConfig("slcp", route="b-nre").unread_settings
    with pytest.raises(ValueError, match="auto_fallback must be one of weights, a; got 'A'"):
        RunConfig("slcp", route="auto", auto_fallback="A")


def test_a_setting_the_run_never_reads_is_named_in_a_warning(tmp_path: Path) -> None:
    kwargs = {"simulations": 100, "verbose": False, "progress": False, "device": "cpu", **TINY}
    with pytest.warns(UserWarning, match="ignored, this run never reads them: ") as caught:
        gbi.train(
            "two_moons",
            route="b-nre",
            out=tmp_path / "b",
            auto_pool=3,
            pool_max_excess=1.0,
            **kwargs,
        )
    [message] = [str(w.message) for w in caught if "never reads" in str(w.message)]
    # TINY's Route A settings are named too; a setting left at its default is not
    assert "auto_pool (route 'b-nre' does not use it); " in message
    assert "pool_max_excess (no contrastive pool is trained)" in message
    assert "langevin_steps (route 'b-nre' does not use it)" in message
    assert "sigma_min" not in message
    with pytest.warns(UserWarning, match="ignored") as caught:
        gbi.train("two_moons", route="auto", auto_pool=0, **kwargs)
    assert any(
        "langevin_steps (route auto's auto_fallback 'weights' takes no Route A pairs)"
        in str(w.message)
        for w in caught
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gbi.train("two_moons", route="auto", auto_fallback="a", **kwargs)
    assert not [w for w in caught if "never reads" in str(w.message)]


def test_the_command_line_prints_a_warning_on_one_line() -> None:
    from gbi.cli import _format_warning

    text = _format_warning("ignored: auto_pool", UserWarning, "/deep/inside/api.py", 147)
    assert text == "gbi: UserWarning: ignored: auto_pool\n"


def test_threads_sets_torch_and_numba_and_refuses_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numba
    import torch

    from gbi.cli import build_parser

    before = torch.get_num_threads(), numba.get_num_threads()
    try:
        code, _, _ = run_in_process(
            capsys, "simulate", "two_moons", "-n", "10", "--out", str(tmp_path / "s.npz"),
            "--threads", "2",
        )  # fmt: skip
        assert code == 0
        assert torch.get_num_threads() == 2
        assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
    code, _, err = run_in_process(
        capsys, "simulate", "two_moons", "-n", "10", "--out", str(tmp_path / "t.npz"),
        "--threads", "0",
    )  # fmt: skip
    assert code == 2 and "--threads must be >= 1, got 0" in err
    # the demo runs on one thread unless told otherwise; other verbs keep torch's default
    assert build_parser().parse_args(["demo"]).threads == 1
    assert build_parser().parse_args(["train", "two_moons", "--out", "o"]).threads is None
