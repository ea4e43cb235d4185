"""Every route end to end at a tiny budget: stages compose, results are saved and reused."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY

import gbi
import gbi_npe
import gbi_sims
import gbi_surrogates
import gbi_tempering
from gbi import Problem, RunConfig, RunConfigMismatch, routes
from gbi.simulation import BaseSet


def _canonical(report: dict) -> str:
    """JSON text (NaN-safe comparison of reports)."""
    return json.dumps(json.loads(json.dumps(report, default=float)), sort_keys=True)


def _train_two_moons(route: str, out: Path, **settings) -> gbi.TrainingResult:
    """A tiny two_moons run: 400 simulations, seed 1, the TINY networks."""
    return gbi.train(
        "two_moons",
        route=route,
        simulations=400,
        seed=1,
        out=out,
        verbose=False,
        progress=False,
        device="cpu",
        **TINY,
        **settings,
    )


@pytest.mark.parametrize("route", ["b-nre", "b-nle", "a", "auto"])
def test_route_end_to_end(route: str, tmp_path: Path) -> None:
    result = _train_two_moons(route, tmp_path / route)
    posterior = result.posterior
    assert posterior.beta_range == (0.1, 2.0)
    x_obs = np.array([0.1, -0.2])
    samples = posterior.sample(300, x_obs, 0.5, seed=0)
    assert samples.shape == (300, 2)
    assert np.all((samples >= -1) & (samples <= 1))
    batch = posterior.sample(50, np.stack([x_obs, x_obs + 0.1]), np.array([0.3, 1.7]), seed=0)
    assert batch.shape == (2, 50, 2)
    report = result.report
    assert report["simulations"]["requested"] == 400
    assert report["simulations"]["dropped_nonfinite"] == 0
    assert report["npe"]["history"]["train_loss"]
    assert report["surrogate"]["history"]["validation_loss"]
    if route.startswith("b-"):
        # both Route B surrogates give likelihood-to-evidence ratios by default
        assert report["weights"]["form"] == "nre"
    if route.startswith("b") or route == "auto":
        weights = report["weights"]
        # the Markov check of the matched pairs' log-ratios is reported (400 pairs)
        assert weights["low_ratios"]["floor"] == pytest.approx(-(np.log(400) + 3))
        assert len(weights["beta"]) == len(weights["relative_ess"]) == len(weights["ess"])
        assert weights["relative_ess"][weights["beta"].index(1.0)] == pytest.approx(1.0)
    for name in ("config.json", "report.json", "posterior.safetensors"):
        assert (tmp_path / route / name).is_file()
    # another posterior network on the same stages: every file before the
    # posterior (simulations, surrogate, scores, synthesized pairs) is reused
    gbi.train(
        "two_moons",
        route=route,
        simulations=400,
        seed=1,
        out=tmp_path / "again",
        reuse=tmp_path / route,
        ema_decay=None,
        verbose=False,
        progress=False,
        device="cpu",
        **TINY,
    )
    own = {"config.json", "report.json", "posterior.safetensors"}
    upstream = [p for p in (tmp_path / route).rglob("*") if p.is_file() and p.name not in own]
    assert upstream
    for path in upstream:
        twin = tmp_path / "again" / path.relative_to(tmp_path / route)
        assert twin.stat().st_ino == path.stat().st_ino, f"{twin.name} was made again"


#: a relative-ESS floor of 0.999 (with any k-hat counting as heavy) fails every
#: temperature cell away from beta = 1
_FAIL_ALL_BUT_ONE = {"auto_min_relative_ess": 0.999, "auto_max_k_hat": -1e9, "auto_grid": 6}


def _train_auto(out: Path, **settings) -> gbi.TrainingResult:
    """Route auto on 400 two_moons simulations with every cell but beta = 1's failing."""
    return gbi.train(
        "two_moons",
        route="auto",
        simulations=400,
        seed=2,
        out=out,
        verbose=False,
        progress=False,
        device="cpu",
        **_FAIL_ALL_BUT_ONE,
        **settings,
        **TINY,
    )


def test_auto_reports_what_it_chose_and_uses_both_routes(tmp_path: Path) -> None:
    # every cell away from beta = 1 fails, so auto (no pool tried, Route A asked
    # for) must synthesize Route A pairs there and keep the weights near 1
    result = _train_auto(tmp_path / "auto", auto_pool=0, auto_fallback="a")
    auto = result.report["auto"]
    routes = [cell["route"] for cell in auto["cells"]]
    assert "a" in routes
    assert "b-nre" in routes  # the cell containing beta = 1 keeps ESS ~ N
    assert len(auto["cells"]) == 6
    assert "Route A pairs for" in auto["summary"]
    # each base row serves one healthy cell; each failing cell gets as many Route A
    # pairs as a healthy cell has rows: about N (1 + failing / healthy) NPE rows in all
    n_base = result.report["weights"]["n"]
    per_cell = n_base // routes.count("b-nre")
    assert result.report["synthesis"]["pairs"] == per_cell * routes.count("a")
    history = result.report["npe"]["history"]
    n_synth = per_cell * routes.count("a") - result.report["synthesis"]["dropped_nonfinite"]
    assert history["n_train"] + history["n_validation"] == n_base + n_synth
    for cell in auto["cells"]:
        assert cell["route"] == ("a" if cell["relative_ess"] < 0.999 else "b-nre")
    # rows with a fixed beta each: no temperature distribution to tilt or stop per part
    assert result.report["config"]["per_temperature"] is True
    assert history["validation_part_best_epochs"] == []
    assert auto["posterior_settings"] == {"beta_sampling": "distribution", "per_temperature": False}


def test_auto_trains_on_the_nre_pool_where_the_weights_fail_and_the_pool_holds(
    tmp_path: Path,
) -> None:
    # the pool serves every temperature the matched pairs fail
    result = _train_auto(tmp_path / "auto", pool_relative_ess=1.0, pool_max_excess=50.0)
    auto = result.report["auto"]
    cell_routes = [cell["route"] for cell in auto["cells"]]
    assert "b-nre pool" in cell_routes and "b-nre" in cell_routes and "a" not in cell_routes
    assert "contrastive pool (M = 2) holds there" in auto["summary"]
    excess = auto["pool_excess"]
    assert excess["beta"][0] == 0.1 and excess["excess"][0] <= 50.0
    # no score model, no synthesis: the NPE trained on the pool's 3 rows per x
    assert "score_surrogate" not in result.report and "synthesis" not in result.report
    assert not (tmp_path / "auto" / "surrogate_score.safetensors").exists()
    history = result.report["npe"]["history"]
    assert history["n_train"] + history["n_validation"] == 3 * 400
    # weighted pairs: trained as route b trains them, each temperature stopping on its own
    assert result.report["config"]["per_temperature"] is True
    assert result.report["config"]["beta_sampling"] == "ess"
    assert len(history["validation_part_best_epochs"]) == len(history["validation_parts"][0])
    scores = np.load(tmp_path / "auto" / "scores_pool.npz")["scores"]
    assert scores.shape == (3 * 400,)


def _inflate_the_pool_check(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every pool fail its check (as a saturated NRE's: prior draws over-weighted);
    returns the list the run's log messages go to."""
    exact = gbi_tempering.pool_excess

    def inflated(own, partners, beta):
        check = exact(own, partners, beta)
        return dataclasses.replace(check, excess=check.excess + 10.0)

    monkeypatch.setattr(gbi_tempering, "pool_excess", inflated)
    messages: list[str] = []
    monkeypatch.setattr(gbi.api, "_log_fn", lambda verbose: messages.append)
    return messages


def test_auto_falls_back_to_the_failing_weights_where_the_pool_check_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = _inflate_the_pool_check(monkeypatch)
    result = _train_auto(tmp_path / "auto")
    auto = result.report["auto"]
    assert auto["fallback"] == "weights"
    assert "trained on the SNIS-weighted base set at every beta all the same" in auto["summary"]
    assert "pool failed its check there (excess" in auto["summary"]
    assert any("contrastive pool fails the check" in m for m in messages)
    # the failing cells are named as such, and every cell trains on the weights
    assert {cell["route"] for cell in auto["cells"]} == {"b-nre"}
    assert [c["weights_fail"] for c in auto["cells"]] == [
        c["relative_ess"] < 0.999 for c in auto["cells"]
    ]
    assert sum(c["weights_fail"] for c in auto["cells"]) == 5
    # no score model, no synthesis: the matched pairs alone, trained as route b trains them
    assert "score_surrogate" not in result.report and "synthesis" not in result.report
    assert not (tmp_path / "auto" / "surrogate_score.safetensors").exists()
    history = result.report["npe"]["history"]
    assert history["n_train"] + history["n_validation"] == 400
    assert result.report["config"]["beta_sampling"] == "ess"
    assert len(history["validation_part_best_epochs"]) == len(history["validation_parts"][0])
    assert "posterior_settings" not in auto


def test_auto_without_a_pool_or_route_a_trains_route_b_nres_network(tmp_path: Path) -> None:
    # the same NRE (one seed per surrogate kind) and weights, and the fallback trains
    # on them as route b-nre does: the same network, bit for bit
    auto = _train_auto(tmp_path / "auto", auto_pool=0)
    b = gbi.train(
        "two_moons",
        route="b-nre",
        simulations=400,
        seed=2,
        out=tmp_path / "b",
        verbose=False,
        progress=False,
        device="cpu",
        **TINY,
    )
    assert any(cell["weights_fail"] for cell in auto.report["auto"]["cells"])
    x = np.array([[0.1, -0.2]])
    for beta in (0.1, 1.0, 1.7):
        assert np.array_equal(
            auto.posterior.sample(50, x, beta, seed=3), b.posterior.sample(50, x, beta, seed=3)
        )


def test_auto_falls_back_to_route_a_where_asked_and_the_pool_check_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = _inflate_the_pool_check(monkeypatch)
    result = _train_auto(tmp_path / "auto", auto_fallback="a")
    auto = result.report["auto"]
    assert "Route A pairs for" in auto["summary"]
    excess = auto["pool_excess"]["excess"][0]
    assert f"pool failed its check there (excess {excess:.2f} ± " in auto["summary"]
    assert auto["pool_excess"]["excess"][0] > 2.0
    assert {cell["route"] for cell in auto["cells"]} == {"a", "b-nre"}
    assert any("contrastive pool fails the check" in m for m in messages)
    assert (tmp_path / "auto" / "surrogate_score.safetensors").is_file()


def test_a_pool_failing_its_check_on_route_b_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exact = gbi_tempering.pool_excess
    monkeypatch.setattr(
        gbi_tempering,
        "pool_excess",
        lambda *args: dataclasses.replace(exact(*args), excess=exact(*args).excess + 10.0),
    )
    messages: list[str] = []
    monkeypatch.setattr(gbi.api, "_log_fn", lambda verbose: messages.append)
    result = gbi.train(
        "two_moons",
        simulations=300,
        out=tmp_path / "run",
        progress=False,
        device="cpu",
        pool_contrast=2,
        **TINY,
    )
    excess = result.report["weights"]["pool_excess"]
    assert len(excess["beta"]) == len(excess["excess"]) == len(excess["standard_error"])
    assert excess["beta"][0] == 0.1 and excess["excess"][0] > 2.0
    assert any(
        m.startswith("contrastive pool: at beta 0.1 the prior draws carry") for m in messages
    )
    assert any(m.startswith("warning: that is more than exp(2)") for m in messages)


def test_rerun_reuses_a_finished_run_and_refuses_another_config(tmp_path: Path) -> None:
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    first = gbi.train("two_moons", out=tmp_path / "run", **kwargs, **TINY)
    second = gbi.train("two_moons", out=tmp_path / "run", **kwargs, **TINY)
    assert _canonical(second.report) == _canonical(first.report)
    np.testing.assert_array_equal(
        first.posterior.sample(20, [0.0, 0.0], 1.0, seed=3),
        second.posterior.sample(20, [0.0, 0.0], 1.0, seed=3),
    )
    with pytest.raises(RunConfigMismatch, match="simulations") as refused:
        gbi.train("two_moons", out=tmp_path / "run", **{**kwargs, "simulations": 301}, **TINY)
    assert "--reuse" not in str(refused.value)
    # only the posterior network's settings differ: the message says how to reuse the run
    with pytest.raises(RunConfigMismatch, match="beta_sampling") as refused:
        gbi.train("two_moons", out=tmp_path / "run", beta_sampling="distribution", **kwargs, **TINY)
    assert f"--reuse {tmp_path / 'run'}" in str(refused.value)


def test_a_run_from_before_a_setting_existed_still_resumes(tmp_path: Path) -> None:
    # runs written before pair_sampling / nle_contrast / ema_decay / per_temperature /
    # beta_sampling existed used "uniform" / 0 / None / False / "distribution"
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    old = {
        "nle_contrast": 0,
        "ema_decay": None,
        "per_temperature": False,
        "beta_sampling": "distribution",
    }
    gbi.train("two_moons", route="b-nle", out=tmp_path / "run", **old, **kwargs, **TINY)
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    for key in ("pair_sampling", "nle_contrast", "ema_decay", "per_temperature", "beta_sampling"):
        del stored[key]
    (tmp_path / "run" / "config.json").write_text(json.dumps(stored))
    again = gbi.train("two_moons", route="b-nle", out=tmp_path / "run", **old, **kwargs, **TINY)
    assert again.report["weights"]["form"] == "nle"
    with pytest.raises(RunConfigMismatch, match="pair_sampling: stored 'uniform', now 'weights'"):
        gbi.train(
            "two_moons",
            route="b-nle",
            out=tmp_path / "run",
            pair_sampling="weights",
            **old,
            **kwargs,
            **TINY,
        )
    with pytest.raises(RunConfigMismatch, match="nle_contrast: stored 0, now 1000"):
        gbi.train("two_moons", route="b-nle", out=tmp_path / "run", **kwargs, **TINY)
    # today's defaults train the posterior network differently: refused, not mixed
    with pytest.raises(RunConfigMismatch, match=r"ema_decay: stored None, now 0\.998"):
        gbi.train(
            "two_moons", route="b-nle", out=tmp_path / "run", nle_contrast=0, **kwargs, **TINY
        )


def test_a_setting_the_route_never_reads_does_not_block_a_rerun(tmp_path: Path) -> None:
    # route b-nre never reads nle_contrast: a run made before it existed (or
    # with another value) is the same run; route b-nle reads it (see above)
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    first = gbi.train("two_moons", route="b-nre", out=tmp_path / "run", **kwargs, **TINY)
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    del stored["nle_contrast"]
    (tmp_path / "run" / "config.json").write_text(json.dumps(stored))
    again = gbi.train(
        "two_moons", route="b-nre", out=tmp_path / "run", nle_contrast=5, **kwargs, **TINY
    )
    assert _canonical(again.report) == _canonical(first.report)
    assert "nle_contrast" not in json.loads((tmp_path / "run" / "config.json").read_text())
    # and its stages serve a run that differs in such a setting and the network
    reused = gbi.train(
        "two_moons",
        route="b-nre",
        out=tmp_path / "other",
        reuse=tmp_path / "run",
        ema_decay=None,
        **kwargs,
        **TINY,
    )
    assert reused.report["surrogate"] == first.report["surrogate"]
    assert RunConfig("two_moons", route="b-nle").unread_settings.isdisjoint({"nle_contrast"})
    for route, unread in gbi.config.UNREAD_SETTINGS.items():
        assert unread <= set(RunConfig("two_moons", route=route).to_dict())


def test_weighted_pair_sampling_end_to_end(tmp_path: Path) -> None:
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    result = gbi.train("two_moons", out=tmp_path / "run", pair_sampling="weights", **kwargs, **TINY)
    assert result.report["config"]["pair_sampling"] == "weights"
    assert np.isfinite(result.report["npe"]["history"]["train_loss"]).all()
    assert result.posterior.sample(10, [0.0, 0.0], 0.2, seed=0).shape == (10, 2)


def test_averaging_and_per_temperature_stopping_reach_the_posterior_network_only(
    tmp_path: Path,
) -> None:
    config = RunConfig("two_moons", ema_decay=0.99, per_temperature=True)
    npe, nre = (routes.train_config(config, s, 10, False) for s in ("npe", "nre"))
    assert npe.ema_decay == 0.99 and npe.per_temperature
    assert nre.ema_decay is None and not nre.per_temperature
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    result = gbi.train(
        "two_moons", out=tmp_path / "run", ema_decay=0.99, per_temperature=True, **kwargs, **TINY
    )
    assert result.report["config"]["ema_decay"] == 0.99
    history = result.report["npe"]["history"]
    assert len(history["validation_part_best_epochs"]) == len(history["validation_part_labels"])
    assert result.posterior.sample(10, [0.0, 0.0], 0.5, seed=0).shape == (10, 2)


def test_a_posterior_budget_trains_that_many_epochs_on_a_cosine_schedule(
    tmp_path: Path, capsys
) -> None:
    config = RunConfig("two_moons", posterior_epochs=7, max_epochs=40)
    npe, nre = (routes.train_config(config, s, 40, False) for s in ("npe", "nre"))
    assert npe.lr_schedule == "cosine" and npe.lr_patience is None
    assert nre.lr_schedule == "plateau" and nre.max_epochs == 40
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="posterior_epochs"):
            RunConfig("two_moons", posterior_epochs=bad)
    kwargs = {"simulations": 300, "seed": 0, "verbose": True, "progress": False, "device": "cpu"}
    settings = {**TINY, "patience": 50}  # the budget, not patience, ends it
    result = gbi.train("two_moons", out=tmp_path / "run", posterior_epochs=5, **kwargs, **settings)
    history = result.report["npe"]["history"]
    assert len(history["train_loss"]) == 5
    rates = np.asarray(history["learning_rates"])
    assert np.all(np.diff(rates) < 0) and rates[-1] == pytest.approx(1e-3 / 16)
    assert not result.report["npe"]["reached_max_epochs"]
    assert "the NPE trained for all" not in capsys.readouterr().err  # the NRE may warn
    assert result.report["config"]["posterior_epochs"] == 5


def test_compile_reaches_the_posterior_network_and_a_run_resumes_either_way(
    tmp_path: Path, monkeypatch
) -> None:
    config = RunConfig("two_moons", compile=True)
    assert routes.train_config(config, "npe", 40, False).compile
    assert routes.train_config(config, "nle", 40, False).compile  # a flow, trained by gbi-npe
    assert routes.train_config(config, "nre", 40, False).compile
    assert not routes.train_config(config, "score", 40, False).compile
    with pytest.raises(ValueError, match="compile must be a bool"):
        RunConfig("two_moons", compile="yes")
    compiled = []

    def spy(fn, **options):  # records what would be compiled, runs it eagerly
        compiled.append(getattr(fn, "func", fn).__name__)
        return fn

    monkeypatch.setattr(gbi_npe.compiling.torch, "compile", spy)
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    gbi.train("two_moons", out=tmp_path / "run", **kwargs, **TINY)
    assert compiled == []
    (tmp_path / "run" / "posterior.safetensors").unlink()  # as if killed during NPE training
    (tmp_path / "run" / "report.json").unlink()
    # not part of the run's identity: the rerun continues the same run directory
    result = gbi.train("two_moons", out=tmp_path / "run", compile=True, **kwargs, **TINY)
    assert compiled == ["log_prob"]  # the NPE's loss (the NRE was trained before)
    assert result.report["simulations"]["reused"] == 300
    assert result.report["config"]["compile"] is True


def test_interrupted_training_resumes_from_the_saved_stages(tmp_path: Path) -> None:
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    gbi.train("two_moons", out=tmp_path / "run", **kwargs, **TINY)
    (tmp_path / "run" / "posterior.safetensors").unlink()  # as if killed during NPE training
    (tmp_path / "run" / "report.json").unlink()
    resumed = gbi.train("two_moons", out=tmp_path / "run", **kwargs, **TINY)
    assert resumed.report["simulations"]["reused"] == 300
    assert resumed.report["simulations"]["seconds"] < 5
    assert (tmp_path / "run" / "posterior.safetensors").is_file()


def test_resumed_b_nle_reuses_its_saved_scores(tmp_path: Path, monkeypatch) -> None:
    """The NLE's evidence is costly: a run killed after it resumes without recomputing it."""
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    first = gbi.train("two_moons", route="b-nle", out=tmp_path / "run", **kwargs, **TINY)
    assert (tmp_path / "run" / "scores_nle.npz").is_file()
    (tmp_path / "run" / "posterior.safetensors").unlink()
    (tmp_path / "run" / "report.json").unlink()

    def fail(*args, **kwargs):
        raise AssertionError("the scores were computed again")

    monkeypatch.setattr(routes, "scores_of", fail)
    resumed = gbi.train("two_moons", route="b-nle", out=tmp_path / "run", **kwargs, **TINY)
    assert _canonical(resumed.report["weights"]) == _canonical(first.report["weights"])


def test_an_interrupted_nle_evidence_continues_where_it_stopped(
    tmp_path: Path, monkeypatch
) -> None:
    """A run killed during the NLE's evidence keeps its progress (saved every
    ``EVIDENCE_CHECKPOINT_SECONDS``) and finishes it to the same scores."""
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    run = tmp_path / "run"
    gbi.train("two_moons", route="b-nle", out=run, **kwargs, **TINY)
    whole = np.load(run / "scores_nle.npz")["scores"]
    for name in ("scores_nle.npz", "posterior.safetensors", "report.json"):
        (run / name).unlink()

    original = gbi_surrogates.NLE.log_likelihood
    calls = []

    def interrupted(self, *args, **kw):
        calls.append(1)
        if len(calls) > 120:
            raise KeyboardInterrupt
        return original(self, *args, **kw)

    monkeypatch.setattr(routes, "EVIDENCE_CHECKPOINT_SECONDS", 0.0)
    monkeypatch.setattr(gbi_surrogates.NLE, "log_likelihood", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gbi.train("two_moons", route="b-nle", out=run, **kwargs, **TINY)
    partial = np.load(run / "scores_nle_partial.npz")
    assert int(partial["done"]) == 120 and int(partial["contrasts"]) == 300

    def counted(self, *args, **kw):
        calls.append(1)
        return original(self, *args, **kw)

    calls.clear()
    monkeypatch.setattr(gbi_surrogates.NLE, "log_likelihood", counted)
    gbi.train("two_moons", route="b-nle", out=run, **kwargs, **TINY)
    assert len(calls) == 300 - 120 + 1  # the other contrasts, then the own terms
    np.testing.assert_array_equal(np.load(run / "scores_nle.npz")["scores"], whole)
    assert not (run / "scores_nle_partial.npz").exists()


def test_an_interrupted_posterior_training_continues_to_the_same_network(
    tmp_path: Path, monkeypatch
) -> None:
    """A run killed while its NPE trains keeps the epochs of its last snapshot and
    finishes to the network an uninterrupted run gives; a snapshot of another
    training is discarded, not mixed in."""
    kwargs = {"simulations": 300, "verbose": False, "progress": False, "device": "cpu"}
    settings = {**TINY, "max_epochs": 4, "patience": 10}
    whole = gbi.train("two_moons", seed=0, out=tmp_path / "whole", **kwargs, **settings)
    original = gbi_npe.objective.ContinuousBetaNLL.batch_loss
    calls = []

    def interrupted(self, *args, **kw):
        calls.append(1)
        if len(calls) == 3 * 2 + 2:  # 3 batches an epoch: in the third epoch
            raise KeyboardInterrupt
        return original(self, *args, **kw)

    run = tmp_path / "run"
    monkeypatch.setattr(routes, "TRAINING_SNAPSHOT_SECONDS", 0.0)
    monkeypatch.setattr(gbi_npe.objective.ContinuousBetaNLL, "batch_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gbi.train("two_moons", seed=0, out=run, **kwargs, **settings)
    assert (run / routes.POSTERIOR_SNAPSHOT).is_file()
    monkeypatch.setattr(gbi_npe.objective.ContinuousBetaNLL, "batch_loss", original)
    resumed = gbi.train("two_moons", seed=0, out=run, **kwargs, **settings)
    assert not (run / routes.POSTERIOR_SNAPSHOT).exists()
    x = np.array([0.1, -0.2])
    for beta in (0.1, 1.0, 2.0):
        np.testing.assert_array_equal(
            resumed.posterior.sample(200, x, beta, seed=1),
            whole.posterior.sample(200, x, beta, seed=1),
        )
    history = resumed.report["npe"]["history"]
    assert history["train_loss"] == whole.report["npe"]["history"]["train_loss"]
    # the epochs run before the interruption count in the training's time
    assert (
        resumed.report["npe"]["seconds"] >= history["seconds"] >= sum(history["epoch_seconds"][:2])
    )

    # another run's snapshot (another seed, so other data and settings): trained anew
    other = tmp_path / "other"
    first = gbi.train("two_moons", seed=1, out=other, **kwargs, **settings)
    (other / "posterior.safetensors").unlink()
    (other / "report.json").unlink()
    calls.clear()
    monkeypatch.setattr(gbi_npe.objective.ContinuousBetaNLL, "batch_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gbi.train("two_moons", seed=0, out=tmp_path / "run0", **kwargs, **settings)
    (tmp_path / "run0" / routes.POSTERIOR_SNAPSHOT).rename(other / routes.POSTERIOR_SNAPSHOT)
    monkeypatch.setattr(gbi_npe.objective.ContinuousBetaNLL, "batch_loss", original)
    again = gbi.train("two_moons", seed=1, out=other, **kwargs, **settings)
    np.testing.assert_array_equal(
        again.posterior.sample(200, x, 1.0, seed=1), first.posterior.sample(200, x, 1.0, seed=1)
    )
    assert not (other / routes.POSTERIOR_SNAPSHOT).exists()


def test_an_interrupted_surrogate_training_continues_to_the_same_run(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import gbi_npe.loop

    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    settings = {**TINY, "max_epochs": 4, "patience": 10}
    whole = gbi.train("two_moons", out=tmp_path / "whole", **kwargs, **settings)
    original, steps = gbi_npe.loop._adam, []

    def interrupting_adam(parameters, learning_rate):
        optimizer = original(parameters, learning_rate)
        step = optimizer.step

        def counted(*args, **kw):
            steps.append(1)
            if len(steps) == 5:  # the NRE's second epoch (3 steps an epoch)
                raise KeyboardInterrupt
            return step(*args, **kw)

        optimizer.step = counted
        return optimizer

    run = tmp_path / "run"
    monkeypatch.setattr(routes, "TRAINING_SNAPSHOT_SECONDS", 0.0)
    monkeypatch.setattr(gbi_npe.loop, "_adam", interrupting_adam)
    with pytest.raises(KeyboardInterrupt):
        gbi.train("two_moons", out=run, **kwargs, **settings)
    monkeypatch.setattr(gbi_npe.loop, "_adam", original)
    assert not (run / "surrogate_nre.safetensors").exists()
    assert (run / "surrogate_nre_snapshot.pt.stage0").is_file()
    capsys.readouterr()
    resumed = gbi.train("two_moons", out=run, **(kwargs | {"verbose": True}), **settings)
    assert "continuing the NRE's training from" in capsys.readouterr().err
    assert sorted(p.name for p in run.glob("*snapshot*")) == []
    surrogate = resumed.report["surrogate"]["history"]
    assert surrogate["train_loss"] == whole.report["surrogate"]["history"]["train_loss"]
    x = np.array([0.1, -0.2])
    np.testing.assert_array_equal(
        resumed.posterior.sample(200, x, 0.5, seed=1), whole.posterior.sample(200, x, 0.5, seed=1)
    )


def test_user_simulator_end_to_end() -> None:
    def simulator(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return theta + 0.2 * rng.standard_normal(theta.shape)

    problem = Problem(low=[-2, -2], high=[2, 2], simulator=simulator, name="gauss")
    result = gbi.train(
        problem, route="b-nle", simulations=400, verbose=False, progress=False, device="cpu", **TINY
    )
    samples = result.posterior.sample(100, [0.5, -0.5], 1.0, seed=0)
    assert samples.shape == (100, 2)
    assert np.all(np.abs(samples) <= 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"route": "c"}, "route must be one of"),
        ({"simulations": 0}, "simulations"),
        ({"beta_range": (1.5, 2.0)}, "beta_range"),
        ({"beta_range": (0.0, 2.0)}, "beta_range"),
        ({"stabilization": "magic"}, "stabilization"),
        ({"max_epochs": -1}, "max_epochs"),
        ({"not_a_setting": 1}, "not_a_setting"),
        ({"embedding": "cnn"}, "embedding must be one of"),
        ({"embedding_features": 0}, "embedding_features"),
        ({"nle_contrast": -1}, "nle_contrast"),
        ({"pair_sampling": "importance"}, "pair_sampling must be one of"),
        ({"beta_sampling": "uniform"}, "beta_sampling must be one of"),
        ({"beta_sampling": "ess", "route": "a"}, "beta_sampling='ess' needs route"),
        ({"ema_decay": 1.0}, "ema_decay must lie in"),
        ({"per_temperature": "yes"}, "per_temperature must be a bool"),
        ({"per_temperature": True, "route": "a"}, "per_temperature needs route"),
    ],
)
def test_bad_settings(kwargs: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        gbi.train("two_moons", verbose=False, **kwargs)


def test_hodgkin_huxley_report_has_marginals_and_predictive_traces(tmp_path: Path) -> None:
    gbi.train(
        "hodgkin_huxley",
        route="b-nle",
        simulations=200,
        out=tmp_path / "hh",
        verbose=False,
        progress=False,
        device="cpu",
        **TINY,
    )
    paths = gbi.make_report(tmp_path / "hh", n=100)
    assert sorted(p.name for p in paths) == ["marginals_across_beta.png", "predictive_traces.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)


def test_lorenz96_reads_x_through_its_stencil(tmp_path: Path) -> None:
    result = gbi.train(
        "lorenz96",
        simulations=300,
        out=tmp_path / "run",
        verbose=False,
        progress=False,
        device="cpu",
        **TINY,
    )
    assert result.report["embedding"] == "stencil"
    embedding = result.posterior.estimator.spec.embedding
    assert embedding.kind == "stencil" and embedding.grid == (21, 8)
    # the saved run loads without any code of the user's
    run = gbi.open_run(tmp_path / "run")
    x_obs = gbi.make_problem("lorenz96").task.observation(0).x
    np.testing.assert_allclose(
        run.posterior.sample(50, x_obs, 0.5, seed=3),
        result.posterior.sample(50, x_obs, 0.5, seed=3),
    )
    plain = gbi.train(
        "lorenz96",
        simulations=300,
        embedding="identity",
        verbose=False,
        progress=False,
        device="cpu",
        **TINY,
    )
    assert plain.report["embedding"] == "identity"
    assert plain.posterior.estimator.spec.embedding.kind == "identity"


def test_a_user_stencil_is_checked_before_training() -> None:
    def walk(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        steps = theta[:, :1] + rng.standard_normal((theta.shape[0], 12))
        return np.cumsum(steps, axis=1)

    with pytest.raises(ValueError, match="x_stencil must be a dict"):
        Problem(low=[-1], high=[1], simulator=walk, x_stencil={"grid": (12,)})
    with pytest.raises(ValueError, match=r"offsets, each with 1 entries"):
        Problem(low=[-1], high=[1], simulator=walk, x_stencil={"grid": [12], "offsets": [[0, 1]]})
    # JSON-style lists are stored as the tuples a stencil embedding keeps
    listed = Problem(low=[-1], high=[1], simulator=walk, x_stencil={"grid": [12], "offsets": [[0]]})
    assert listed.x_stencil == {"grid": (12,), "offsets": ((0,),), "cyclic": ()}
    wrong = Problem(
        low=[-1], high=[1], simulator=walk, x_stencil={"grid": (13,), "offsets": ((0,), (1,))}
    )
    with pytest.raises(ValueError, match=r"13 cells but the x that .* returns has 12 values"):
        gbi.train(wrong, simulations=100, verbose=False, progress=False, **TINY)
    with pytest.raises(ValueError, match="declares no x_stencil"):
        gbi.train("two_moons", simulations=100, embedding="stencil", verbose=False, **TINY)
    right = Problem(
        low=[-1], high=[1], simulator=walk, x_stencil={"grid": (12,), "offsets": ((0,), (1,))}
    )
    result = gbi.train(right, simulations=200, verbose=False, progress=False, device="cpu", **TINY)
    assert result.report["embedding"] == "stencil"


def test_a_network_stopped_by_max_epochs_is_reported_as_possibly_underfit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # TINY bounds every network to 2 epochs: too few for early stopping to end them
    result = gbi.train("two_moons", simulations=300, progress=False, device="cpu", **TINY)
    assert result.report["npe"]["reached_max_epochs"] is True
    assert "the NPE trained for all 2 epochs" in capsys.readouterr().err
    settings = TINY | {"max_epochs": 200, "patience": 1}
    result = gbi.train("two_moons", simulations=300, verbose=False, device="cpu", **settings)
    history = result.report["npe"]["history"]
    assert history["stopped_early"] and len(history["train_loss"]) < 200
    assert result.report["npe"]["reached_max_epochs"] is False


def test_nle_scores_are_contrastive_ratios_unless_switched_off() -> None:
    """b-nle's SNIS scores: log p(x | theta) / p(x) with the evidence estimated on the
    first ``nle_contrast`` base parameters; ``nle_contrast=0`` gives raw likelihoods."""
    theta = np.random.default_rng(0).uniform(-1, 1, (200, 2))
    x = gbi_sims.get_task("two_moons").simulate(theta, seed=0)
    base = BaseSet(theta=theta, x=x, n_requested=200, n_dropped=0, n_reused=0, seconds=0.0)
    nle, _ = gbi_surrogates.fit_nle(
        base.theta,
        base.x,
        gbi_surrogates.NLEConfig(density=gbi_npe.MDNConfig(num_components=2)),
        gbi_npe.TrainConfig(max_epochs=2, progress=False, device="cpu"),
    )
    scores, form = routes.scores_of(nle, base, RunConfig("two_moons", nle_contrast=7))
    assert form == "nre"
    np.testing.assert_allclose(scores, nle.log_ratio(base.theta, base.x, base.theta[:7]))
    assert np.all(scores <= np.log(8) + 1e-9)
    scores, form = routes.scores_of(nle, base, RunConfig("two_moons", nle_contrast=0))
    assert form == "nle"
    np.testing.assert_allclose(scores, nle.log_likelihood(base.theta, base.x))


class _GaussianRatio:
    """The exact log-ratio of x | theta ~ N(theta, 0.3^2) against a U(-1, 1) prior."""

    def log_ratio(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        from scipy.stats import norm

        lik = norm.logpdf(x[:, 0], theta[:, 0], 0.3)
        evidence = np.log((norm.cdf((1 - x[:, 0]) / 0.3) - norm.cdf((-1 - x[:, 0]) / 0.3)) / 2)
        return lik - evidence


def test_contrastive_pool_pairs_each_x_with_its_theta_and_m_others() -> None:
    rng = np.random.default_rng(0)
    theta = rng.uniform(-1, 1, (200, 1))
    x = theta + 0.3 * rng.normal(size=(200, 1))
    base = BaseSet(theta=theta, x=x, n_requested=200, n_dropped=0, n_reused=0, seconds=0.0)
    config = RunConfig("two_moons", pool_contrast=4, pool_relative_ess=0.0)
    pool, groups, weights, _ = routes.contrastive_pool(_GaussianRatio(), base, config)
    assert pool.theta.shape == (1000, 1) and np.array_equal(groups, np.repeat(np.arange(200), 5))
    np.testing.assert_array_equal(pool.x, x[groups])
    np.testing.assert_array_equal(pool.theta[::5], theta)  # each x's own theta first
    others = pool.theta.reshape(200, 5)[:, 1:]
    assert not np.any(others == theta)  # never its own again
    # w(beta) = r^beta / (r + M), normalized over the pool
    s = _GaussianRatio().log_ratio(pool.theta, pool.x)
    for beta in (0.2, 1.0, 1.8):
        a = beta * s - np.log(np.exp(s) + 4)
        np.testing.assert_allclose(weights.log_weights(beta)[0], a - np.log(np.exp(a).sum()))
    # at small beta the prior draws carry the weight and the pool's ESS beats the
    # matched pairs' (whose weights r^(beta - 1) favour the rare low-ratio pairs)
    matched = gbi_tempering.SNISWeights(s[::5], form="nre")
    assert weights.diagnostics([0.1]).ess[0] > 2 * matched.diagnostics([0.1]).ess[0]


def test_the_pool_hands_over_to_the_matched_pairs_where_their_ess_suffices() -> None:
    rng = np.random.default_rng(2)
    theta = rng.uniform(-1, 1, (200, 1))
    x = theta + 0.3 * rng.normal(size=(200, 1))
    base = BaseSet(theta=theta, x=x, n_requested=200, n_dropped=0, n_reused=0, seconds=0.0)
    config = RunConfig("two_moons", pool_contrast=4)  # pool_relative_ess 0.5
    pool, _, weights, _ = routes.contrastive_pool(_GaussianRatio(), base, config)
    s = _GaussianRatio().log_ratio(pool.theta, pool.x)
    matched = gbi_tempering.SNISWeights(s[::5], form="nre")
    grid = np.geomspace(0.1, 2.0, 64)
    relative = matched.diagnostics(grid, warn=False).relative_ess
    switch = grid[np.argmax(relative >= 0.5)]
    assert weights.beta_switch == switch and 0.1 < switch < 1.0
    assert relative[grid < switch].max() < 0.5
    everywhere = routes.contrastive_pool(
        _GaussianRatio(), base, dataclasses.replace(config, pool_relative_ess=0.0)
    )[2]
    assert isinstance(everywhere, gbi_tempering.SNISWeights)
    below = 0.9 * switch
    np.testing.assert_allclose(weights.log_weights(below), everywhere.log_weights(below))
    for above in (switch, 1.0, 1.7):
        w = weights.log_weights(above)[0]
        assert np.isneginf(w.reshape(200, 5)[:, 1:]).all()  # the prior draws drop out
        np.testing.assert_allclose(w[::5], matched.log_weights(above)[0])
    # the trainer's per-pair queries agree with the full rows on both sides
    index = np.arange(1000)
    for beta in (below, 1.3):
        np.testing.assert_allclose(
            weights.log_weights_fn(np.full(1000, beta), index), weights.log_weights(beta)[0]
        )
    diag = weights.diagnostics([below, 1.3], warn=False)
    assert diag.ess[0] == pytest.approx(everywhere.diagnostics([below]).ess[0])
    assert diag.ess[1] == pytest.approx(matched.diagnostics([1.3]).ess[0])
    # a threshold the matched pairs never reach leaves the pool everywhere
    never = routes.contrastive_pool(
        _GaussianRatio(), base, dataclasses.replace(config, pool_relative_ess=1.0)
    )[2]
    assert isinstance(never, gbi_tempering.SNISWeights)
    with pytest.raises(ValueError, match="pool_relative_ess must be a number in"):
        RunConfig("two_moons", pool_contrast=4, pool_relative_ess=1.5)


class _GaussianLikelihood(_GaussianRatio):
    """The same model as an NLE sees it: the log-likelihood, and the exact evidence."""

    def log_likelihood(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        from scipy.stats import norm

        return norm.logpdf(x[:, 0], theta[:, 0], 0.3)

    def log_evidence(self, x: np.ndarray) -> np.ndarray:
        return self.log_likelihood(np.zeros_like(x), x) - self.log_ratio(np.zeros_like(x), x)


def test_an_nle_pool_weights_its_likelihoods_over_the_evidence_like_the_ratio() -> None:
    rng = np.random.default_rng(1)
    theta = rng.uniform(-1, 1, (150, 1))
    x = theta + 0.3 * rng.normal(size=(150, 1))
    base = BaseSet(theta=theta, x=x, n_requested=150, n_dropped=0, n_reused=0, seconds=0.0)
    config = RunConfig("two_moons", route="b-nle", pool_contrast=3)
    nle = _GaussianLikelihood()
    pool, groups, weights, _ = routes.contrastive_pool(
        nle, base, config, log_evidence=nle.log_evidence(x)
    )
    ratio_pool, ratio_groups, ratio_weights, _ = routes.contrastive_pool(
        _GaussianRatio(), base, config
    )
    np.testing.assert_array_equal(pool.theta, ratio_pool.theta)
    np.testing.assert_array_equal(groups, ratio_groups)
    for beta in (0.1, 1.0, 2.0):
        np.testing.assert_allclose(
            weights.log_weights(beta), ratio_weights.log_weights(beta), atol=1e-9
        )


def test_pool_contrast_on_route_b_nle_end_to_end(tmp_path: Path) -> None:
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    result = gbi.train(
        "two_moons",
        route="b-nle",
        out=tmp_path / "run",
        pool_contrast=2,
        nle_contrast=50,
        **kwargs,
        **TINY,
    )
    weights = result.report["weights"]
    assert weights["form"] == "pool" and weights["pool_rows"] == 3 * 300
    pool = np.load(tmp_path / "run" / "scores_pool.npz")["scores"]
    matched = np.load(tmp_path / "run" / "scores_nle.npz")["scores"]
    # each x's own theta comes first: its pool score is the matched pair's log-ratio
    np.testing.assert_allclose(pool[::3], matched, rtol=1e-5, atol=1e-5)
    assert not np.allclose(pool[1::3], matched)
    assert result.posterior.sample(10, [0.0, 0.0], 0.2, seed=0).shape == (10, 2)

    # another pool and evidence on the same NLE: the run directory is refused with
    # the way to reuse it, and reuse trains no surrogate but redoes what they shape
    other = {"pool_contrast": 3, "nle_contrast": 40}
    with pytest.raises(RunConfigMismatch, match=r"nle_contrast.*pool_contrast") as refused:
        gbi.train("two_moons", route="b-nle", out=tmp_path / "run", **other, **kwargs, **TINY)
    assert f"--reuse {tmp_path / 'run'}" in str(refused.value)
    again = gbi.train(
        "two_moons",
        route="b-nle",
        out=tmp_path / "again",
        reuse=tmp_path / "run",
        **other,
        **kwargs,
        **TINY,
    )
    first, second = tmp_path / "run", tmp_path / "again"
    assert (second / "surrogate_nle.safetensors").stat().st_ino == (
        first / "surrogate_nle.safetensors"
    ).stat().st_ino  # linked, not trained again
    assert again.report["surrogate"] == result.report["surrogate"]
    rescored = np.load(second / "scores_nle.npz")["scores"]
    assert not np.allclose(rescored, matched)  # the evidence from 40 draws, not 50
    assert again.report["weights"]["pool_rows"] == 4 * 300
    np.testing.assert_allclose(
        np.load(second / "scores_pool.npz")["scores"][::4], rescored, rtol=1e-5, atol=1e-5
    )


def test_pool_contrast_end_to_end_and_checked(tmp_path: Path, monkeypatch) -> None:
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    result = gbi.train("two_moons", out=tmp_path / "run", pool_contrast=3, **kwargs, **TINY)
    weights = result.report["weights"]
    assert weights["form"] == "pool" and weights["pool_rows"] == 4 * 300
    history = result.report["npe"]["history"]
    assert history["n_train"] + history["n_validation"] == 4 * 300
    assert (tmp_path / "run" / "scores_pool.npz").is_file()
    assert result.posterior.sample(10, [0.0, 0.0], 0.2, seed=0).shape == (10, 2)
    with pytest.raises(ValueError, match="pool_contrast needs route 'b-nre' or 'b-nle'"):
        RunConfig("two_moons", route="auto", pool_contrast=3)
    with pytest.raises(ValueError, match="needs nle_contrast > 0"):
        RunConfig("two_moons", route="b-nle", pool_contrast=3, nle_contrast=0)
    # a run stopped after the pool was scored resumes without scoring it again
    (tmp_path / "run" / "posterior.safetensors").unlink()
    (tmp_path / "run" / "report.json").unlink()
    scored = []
    original = gbi_surrogates.NRE.log_ratio
    monkeypatch.setattr(
        gbi_surrogates.NRE,
        "log_ratio",
        lambda self, *a, **k: scored.append(1) or original(self, *a, **k),
    )
    resumed = gbi.train("two_moons", out=tmp_path / "run", pool_contrast=3, **kwargs, **TINY)
    assert not scored
    assert _canonical(resumed.report["weights"]) == _canonical(weights)


def test_the_cli_knows_the_pair_and_beta_samplings_gbi_npe_accepts() -> None:
    # gbi.config keeps its own copy (it is imported without torch, for the CLI's start)
    assert gbi.config.PAIR_SAMPLINGS == gbi_npe.config.PAIR_SAMPLING
    assert gbi.config.BETA_SAMPLINGS == gbi_npe.config.BETA_SAMPLING


def test_beta_sampling_defaults_to_ess_where_the_network_trains_on_weighted_pairs() -> None:
    for route in ("b-nre", "b-nle", "auto"):
        config = RunConfig("two_moons", route=route)
        assert config.beta_sampling == "ess" and config.per_temperature
    config = RunConfig("two_moons", route="a")
    assert config.beta_sampling == "distribution" and not config.per_temperature
    assert config.to_dict()["beta_sampling"] == "distribution"  # stored resolved
    assert routes.train_config(config, "npe", 40, False).beta_sampling == "distribution"
    explicit = RunConfig("two_moons", beta_sampling="distribution")
    assert routes.train_config(explicit, "npe", 40, False).beta_sampling == "distribution"


def test_ess_beta_sampling_retrains_only_the_posterior_network(tmp_path: Path) -> None:
    config = RunConfig("two_moons")
    assert routes.train_config(config, "npe", 40, False).beta_sampling == "ess"
    for stream in ("nle", "nre", "score"):
        assert routes.train_config(config, stream, 40, False).beta_sampling == "distribution"
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    first = gbi.train(
        "two_moons", out=tmp_path / "a", beta_sampling="distribution", **kwargs, **TINY
    )
    second = gbi.train("two_moons", out=tmp_path / "b", reuse=tmp_path / "a", **kwargs, **TINY)
    assert second.report["config"]["beta_sampling"] == "ess"
    assert (tmp_path / "b" / "scores_nre.npz").read_bytes() == (
        tmp_path / "a" / "scores_nre.npz"
    ).read_bytes()
    x = [0.0, 0.1]
    assert not np.allclose(
        first.posterior.sample(5, x, 1.0, seed=0), second.posterior.sample(5, x, 1.0, seed=0)
    )


def test_reuse_retrains_only_the_posterior_network(tmp_path: Path) -> None:
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    first = gbi.train("two_moons", out=tmp_path / "a", ema_decay=None, **kwargs, **TINY)
    second = gbi.train(
        "two_moons", out=tmp_path / "b", reuse=tmp_path / "a", ema_decay=0.9, **kwargs, **TINY
    )
    assert second.report["simulations"]["reused"] == 300
    # the NRE and its scores were taken over, not retrained: the same weights
    for name in ("surrogate_nre.json", "scores_nre.npz"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()
    assert second.report["weights"]["relative_ess"] == first.report["weights"]["relative_ess"]
    assert second.report["config"]["ema_decay"] == 0.9
    x = [0.0, 0.1]
    assert not np.allclose(
        first.posterior.sample(5, x, 1.0, seed=0), second.posterior.sample(5, x, 1.0, seed=0)
    )
    with pytest.raises(RunConfigMismatch, match="simulations: stored 300, now 200"):
        gbi.train(
            "two_moons",
            out=tmp_path / "c",
            reuse=tmp_path / "a",
            **(kwargs | {"simulations": 200}),
            **TINY,
        )
    with pytest.raises(ValueError, match="reuse needs out"):
        gbi.train("two_moons", reuse=tmp_path / "a", **kwargs, **TINY)


def _diverging(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x = theta + noise, and for theta_0 > 0.5 a second statistic that blows up
    (to 1e200 at the box's edge), as diverging trajectories do."""
    noise = 0.1 * rng.standard_normal(theta.shape)
    blow_up = np.where(theta[:, 0] > 0.5, 10.0 ** (400.0 * (theta[:, 0] - 0.5)), 0.0)
    return np.c_[theta[:, 0] + noise[:, 0], theta[:, 1] + noise[:, 1] + blow_up]


def test_score_coordinates_compress_only_heavy_tailed_x() -> None:
    rng = np.random.default_rng(0)
    tame = rng.normal(size=(500, 3))
    plain = routes.ScoreCoordinates(tame)
    assert not plain.compressed and plain.info() == {"x": "original"}
    assert plain.to_u(tame) is tame and plain.to_x(tame) is tame
    theta = rng.uniform(-1, 1, size=(500, 2))
    x = _diverging(theta, rng)
    assert not np.isfinite(np.var(x, axis=0)).all()  # what an affine standardization meets
    coordinates = routes.ScoreCoordinates(x)
    assert coordinates.compressed
    u = coordinates.to_u(x)
    assert np.isfinite(u).all() and np.abs(u).max() < 500  # log(1e200) is about 460
    assert np.isfinite(np.var(u, axis=0)).all()
    np.testing.assert_allclose(coordinates.to_x(u), x, rtol=1e-9)
    info = coordinates.info()
    assert info["heavy_features"] == 1 and info["tail"][0] is None
    base = BaseSet(theta, x, 500, 0, 0, 0.0)
    moved = coordinates.of(base)
    np.testing.assert_array_equal(moved.x, u)
    np.testing.assert_array_equal(moved.theta, theta)


@pytest.mark.parametrize("route", ["a", "auto"])
def test_route_a_trains_on_a_simulator_whose_x_diverges(route: str, tmp_path: Path) -> None:
    """An affine standardization of such x overflows (the joint score model
    refused lorenz96); Route A now works in compressed x and hands the NPE
    pairs in the original coordinates."""
    problem = Problem(low=[-1, -1], high=[1, 1], simulator=_diverging, name="diverging")
    settings = {**TINY, "max_epochs": 3}
    if route == "auto":  # thresholds no cell passes: Route A pairs alone, equally weighted
        settings |= {
            "auto_min_relative_ess": 0.999,
            "auto_max_k_hat": -1.0,
            "auto_pool": 0,
            "auto_fallback": "a",
        }
    result = gbi.train(
        problem,
        route=route,
        simulations=400,
        out=tmp_path / route,
        verbose=False,
        progress=False,
        device="cpu",
        **settings,
    )
    if route == "auto":
        assert {cell["route"] for cell in result.report["auto"]["cells"]} == {"a"}
    synthesis = result.report["synthesis"]
    assert synthesis["coordinates"]["x"].startswith("tail-compressed")
    assert synthesis["coordinates"]["heavy_features"] == 1
    name = "synthesized.npz" if route == "a" else "synthesized_auto.npz"
    stored = np.load(tmp_path / route / name)
    assert np.isfinite(stored["x"]).all()
    # original coordinates: the blown-up statistic keeps its magnitude
    assert np.abs(stored["x"][:, 1]).max() > 1e6
    samples = result.posterior.sample(50, [0.9, 1e40], 0.5, seed=0)
    assert samples.shape == (50, 2) and np.isfinite(samples).all()


def test_the_synthesis_check_measures_how_far_pairs_near_beta_1_stray() -> None:
    rng = np.random.default_rng(5)
    base_x = rng.normal(size=(20_000, 3))
    beta = rng.uniform(0.1, 2.0, size=4000)  # about 400 pairs in [0.9, 1.1]
    good = routes._synthesis_check(rng.normal(size=(4000, 3)), beta, base_x)
    assert good["pairs_near_beta_1"] == int(np.sum((beta >= 0.9) & (beta <= 1.1)))
    # 1 % expected; the binomial standard error over ~1200 values is 0.3 %
    assert abs(good["x_outside_near_beta_1"] - 0.01) < 0.01
    bad = routes._synthesis_check(rng.normal(size=(4000, 3)) * 3.0, beta, base_x)
    assert bad["x_outside_near_beta_1"] > 0.3  # P(|3 z| > 2.58) = 0.39
    few = routes._synthesis_check(rng.normal(size=(50, 3)), np.ones(50), base_x)
    assert few == {"pairs_near_beta_1": 50, "x_outside_near_beta_1": None}
    nan_rows = np.full((200, 3), np.nan)  # dropped rows are not judged
    assert routes._synthesis_check(nan_rows, np.ones(200), base_x)["pairs_near_beta_1"] == 0


def test_route_a_warns_when_its_pairs_near_beta_1_leave_the_simulations(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    real = routes.synthesize_pairs

    def strayed(*args, **kwargs):
        theta, x, info = real(*args, **kwargs)
        return theta, x + 10.0, info  # far outside two_moons' x range

    monkeypatch.setattr(routes, "synthesize_pairs", strayed)
    result = gbi.train(
        "two_moons",
        route="a",
        simulations=400,
        synthetic_pairs=2000,
        out=tmp_path,
        verbose=True,
        progress=False,
        device="cpu",
        **TINY,
    )
    synthesis = result.report["synthesis"]
    assert synthesis["pairs_near_beta_1"] >= routes.MIN_CHECK_PAIRS
    assert synthesis["x_outside_near_beta_1"] > 0.9
    assert "fall outside the simulations' central 99 % range" in capsys.readouterr().err


def test_the_posterior_network_can_read_x_with_the_nres_embedding(tmp_path: Path) -> None:
    import torch

    # the default: the NRE's embedding for route b-nre where x is embedded, else its own
    assert RunConfig("lorenz96", embedding="stencil").posterior_embedding == "surrogate"
    assert RunConfig("lorenz96", embedding="identity").posterior_embedding == "own"
    assert RunConfig("lorenz96", route="b-nle", embedding="stencil").posterior_embedding == "own"
    assert RunConfig("lorenz96", route="auto", embedding="mlp").posterior_embedding == "surrogate"
    assert RunConfig("lorenz96").posterior_embedding is None  # 'auto': the problem decides
    for task, chosen in (("lorenz96", "surrogate"), ("two_moons", "own")):
        config, _ = gbi.api.resolve_config(RunConfig(task), gbi.make_problem(task))
        assert config.posterior_embedding == chosen
    for bad, match in [
        ({"posterior_embedding": "nre"}, "posterior_embedding must be one of"),
        ({"posterior_embedding": "surrogate", "route": "b-nle"}, "needs route 'b-nre'"),
        ({"posterior_embedding": "surrogate", "embedding": "identity"}, "needs an x embedding"),
    ]:
        with pytest.raises(ValueError, match=match):
            RunConfig("lorenz96", **bad)
    with pytest.raises(ValueError, match="use embedding='mlp'"):  # 'auto' finds no stencil
        gbi.train("two_moons", posterior_embedding="surrogate", simulations=100, verbose=False)
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    own = gbi.train("lorenz96", out=tmp_path / "own", posterior_embedding="own", **kwargs, **TINY)
    runs = {
        choice or "surrogate": gbi.train(
            "lorenz96",
            out=tmp_path / (choice or "default"),
            reuse=tmp_path / "own",
            posterior_embedding=choice,
            **kwargs,
            **TINY,
        )
        for choice in (None, "surrogate-init")  # None: the default, resolved
    }
    nre = gbi_surrogates.load_surrogate(tmp_path / "own" / "surrogate_nre.safetensors")
    source = nre.network.embedding.state_dict()
    for choice, result in [("own", own), *runs.items()]:
        encoder = result.posterior.estimator.context_encoder
        mine = encoder.embedding.state_dict()
        same = all(torch.equal(mine[k], source[k]) for k in source)
        assert same == (choice == "surrogate"), choice
        # the x standardization is the NRE's unless the network learns its own
        adopted = torch.equal(encoder.x_standardize.scale, nre.network.standardize.x.scale)
        assert adopted == (choice != "own"), choice
        assert result.report["config"]["posterior_embedding"] == choice
    # reusing the NRE: only the posterior network was trained again
    assert runs["surrogate"].report["surrogate"] == own.report["surrogate"]
    x = gbi_sims.get_task("lorenz96").observation(0).x
    assert runs["surrogate"].posterior.sample(4, x, 0.5, seed=0).shape == (4, 3)
    reloaded = gbi.open_run(tmp_path / "default").posterior  # no NRE needed to load
    np.testing.assert_array_equal(
        reloaded.sample(4, x, 0.5, seed=0), runs["surrogate"].posterior.sample(4, x, 0.5, seed=0)
    )
    # route auto trains an NRE too, and its posterior network reads x with it
    auto = gbi.train("lorenz96", route="auto", out=tmp_path / "auto", **kwargs, **TINY)
    nre = gbi_surrogates.load_surrogate(tmp_path / "auto" / "surrogate_nre.safetensors")
    mine = auto.posterior.estimator.context_encoder.embedding.state_dict()
    source = nre.network.embedding.state_dict()
    assert all(torch.equal(mine[k], source[k]) for k in source)
    assert auto.report["config"]["posterior_embedding"] == "surrogate"


def test_route_auto_reuses_the_nre_of_b_nre_and_the_score_model_of_route_a(
    tmp_path: Path, monkeypatch
) -> None:
    kwargs = {"simulations": 300, "seed": 0, "verbose": False, "progress": False, "device": "cpu"}
    gbi.train("two_moons", route="b-nre", out=tmp_path / "b", **kwargs, **TINY)
    gbi.train("two_moons", route="a", out=tmp_path / "a", **kwargs, **TINY)

    def trains(*args, **kw):
        raise AssertionError("a surrogate was trained again")

    monkeypatch.setattr(gbi_surrogates, "fit_nre", trains)
    monkeypatch.setattr(gbi_surrogates, "fit_score", trains)
    reused = gbi.train(
        "two_moons",
        route="auto",
        out=tmp_path / "reused",
        reuse=[tmp_path / "b", tmp_path / "a"],
        **kwargs,
        **TINY,
    )
    for name, source in (
        ("surrogate_nre.safetensors", "b"),
        ("scores_nre.npz", "b"),
        ("surrogate_score.safetensors", "a"),
    ):
        assert (tmp_path / "reused" / name).read_bytes() == (tmp_path / source / name).read_bytes()
    assert reused.posterior.sample(10, [0.0, 0.1], 0.5, seed=0).shape == (10, 2)
    # the NRE's weights are the lender's: the same scores
    assert (
        reused.report["weights"]["relative_ess"]
        == json.loads((tmp_path / "b" / "report.json").read_text())["weights"]["relative_ess"]
    )
    # another route's run still has to share the simulations
    with pytest.raises(RunConfigMismatch, match="simulations: stored 300, now 200"):
        gbi.train(
            "two_moons",
            route="auto",
            out=tmp_path / "other",
            reuse=[tmp_path / "a"],
            **(kwargs | {"simulations": 200}),
            **TINY,
        )
    with pytest.raises(ValueError, match="empty list"):
        gbi.train("two_moons", route="auto", out=tmp_path / "none", reuse=[], **kwargs, **TINY)


def test_x_tail_threshold_sets_where_both_networks_compress_x(tmp_path: Path) -> None:
    problem = Problem(low=[-1, -1], high=[1, 1], simulator=_diverging, name="diverging")
    tails = {}
    for threshold in (None, 50.0):
        out = tmp_path / str(threshold)
        result = gbi.train(
            problem,
            simulations=300,
            out=out,
            x_tail_threshold=threshold,
            verbose=False,
            progress=False,
            device="cpu",
            **TINY,
        )
        nre = gbi_surrogates.load_surrogate(out / "surrogate_nre.safetensors")
        npe_tail = result.posterior.estimator.context_encoder.x_standardize.tail.tolist()
        assert nre.network.standardize.x.tail.tolist() == npe_tail
        tails[threshold] = npe_tail
        assert result.report["config"]["x_tail_threshold"] == threshold
    assert tails == {None: [np.inf, 3.0], 50.0: [np.inf, 50.0]}
    # the NRE reads x differently: reusing the default run's NRE is refused
    with pytest.raises(RunConfigMismatch, match="x_tail_threshold"):
        gbi.train(
            problem,
            simulations=300,
            out=tmp_path / "c",
            reuse=tmp_path / "None",
            x_tail_threshold=20.0,
            verbose=False,
            progress=False,
            device="cpu",
            **TINY,
        )
    with pytest.raises(ValueError, match="x_tail_threshold must be a finite number > 0"):
        RunConfig(problem="two_moons", x_tail_threshold=0.0)


@pytest.mark.parametrize("route", ["b-nle", "auto"])
def test_misjudged_matched_pairs_are_reported_and_warned_about(
    route: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scores_of = routes.scores_of

    def misjudging(model, base, config, *args, **kwargs):
        scores, form = scores_of(model, base, config, *args, **kwargs)
        scores = scores.copy()
        scores[[3, 30, 300]] = [-49.0, -30.0, -20.0]  # below -(log 400 + 3) = -9.0
        return scores, form

    monkeypatch.setattr(routes, "scores_of", misjudging)
    messages: list[str] = []
    monkeypatch.setattr(gbi.api, "_log_fn", lambda verbose: messages.append)
    settings = {"auto_pool": 0} if route == "auto" else {}
    result = _train_two_moons(route, tmp_path / route, **settings)
    low = result.report["weights"]["low_ratios"]
    assert low["count"] >= 3 and low["lowest"][:3] == [-49.0, -30.0, -20.0]
    warned = [m for m in messages if "matched pairs have a log-ratio below" in m]
    assert len(warned) == 1 and "(lowest -49.0)" in warned[0]
