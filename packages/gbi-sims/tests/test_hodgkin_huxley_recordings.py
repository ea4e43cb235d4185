"""hodgkin_huxley on real protocols: the shipped Allen recordings and the paper's setup."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest

from gbi_sims import get_task
from gbi_sims.hodgkin_huxley import (
    ALLEN_CELL_IDS,
    SOMA_AREA_CM2,
    TRUE_THETA,
    HodgkinHuxley,
    Recording,
    load_recording,
    summary_statistics,
)


@pytest.fixture(scope="module")
def shared() -> HodgkinHuxley:
    return get_task("hodgkin_huxley", recording="all")


def test_ten_recordings_ship_inside_the_package() -> None:
    data = resources.files("gbi_sims.hodgkin_huxley").joinpath("data")
    names = sorted(entry.name for entry in data.iterdir())
    assert "README.md" in names
    assert "Allen Cell Types Database" in data.joinpath("README.md").read_text()
    expected = sorted(f"cell_{c}_sweep_{SOMA_AREA_CM2[c][0]}.npz" for c in ALLEN_CELL_IDS)
    assert [n for n in names if n.endswith(".npz")] == expected
    assert len(ALLEN_CELL_IDS) == 10 and ALLEN_CELL_IDS[0] == 518290966


@pytest.mark.parametrize("cell_id", ALLEN_CELL_IDS)
def test_recording_loads_with_plausible_statistics(cell_id: int) -> None:
    """Every recording is a 1 s step that drives regular firing: 11..25 spikes
    (we check 5 < count < 40, the window the paper keeps for synthetic data),
    a resting potential between -95 and -55 mV once shifted by -14 mV, and a
    spiking window (positive skewness, heavy tails)."""
    rec = load_recording(cell_id)
    assert rec.voltage.shape == (72500,) and rec.dt_ms == 0.02 and rec.t_on_ms == 205.0
    np.testing.assert_allclose(rec.voltage, rec.voltage_mV - 14.0)
    x = rec.statistics()
    assert x.shape == (7,) and np.all(np.isfinite(x))
    assert 5 < x[0] < 40, x[0]
    assert -95 < x[1] < -55 and 0 < x[2] < 1
    assert x[5] > 0 and x[6] > 3
    p = rec.protocol()
    assert p.n_samples == 72500 and p.v0 == rec.voltage[0]
    assert (p.t_on, p.t_off) == (rec.t_on_ms, rec.t_off_ms)
    np.testing.assert_allclose(p.current, rec.current_uA / SOMA_AREA_CM2[cell_id][1])
    assert 0.5 < p.current.max() < 3  # uA/cm^2, the same order as the synthetic step


def test_task_on_one_recording() -> None:
    task = get_task("hodgkin_huxley", recording=509881736)
    rec = task.recordings[0]
    assert task.protocol.name == "cell 509881736 sweep 39" and task.n_observations == 11
    obs = task.observation(0)
    assert np.all(np.isnan(obs.theta))
    np.testing.assert_array_equal(obs.x, rec.statistics())
    theta = np.vstack([TRUE_THETA, task.prior.sample(3, seed=0)])
    x = task.simulate(theta, seed=1)
    assert x.shape == (4, 7) and np.all(np.isfinite(x))
    traces = task.simulate_traces(theta[:2], seed=1)
    assert traces.shape == (2, 72500)
    p = task.protocol
    np.testing.assert_allclose(
        summary_statistics(traces, p.dt, p.t_on, p.t_off), x[:2], rtol=1e-9, atol=1e-12
    )


def test_task_on_a_user_recording() -> None:
    """Any recording: voltage, current, dt, soma area and junction potential."""
    allen = load_recording(518290966)
    rec = Recording(
        voltage_mV=allen.voltage_mV[:20000],
        current_uA=allen.current_uA[:20000],
        dt_ms=0.02,
        t_on_ms=205.0,
        t_off_ms=380.0,
        soma_area_cm2=2e-4,
        junction_potential_mV=-10.0,
        name="user cell",
    )
    task = HodgkinHuxley.from_recording(rec)
    assert task.protocol.v0 == allen.voltage_mV[0] - 10.0
    assert task.protocol.current.max() == pytest.approx(0.00017 / 2e-4, rel=1e-6)
    x0 = task.observation(0).x
    np.testing.assert_array_equal(
        x0, summary_statistics(allen.voltage_mV[:20000] - 10.0, 0.02, 205.0, 380.0)
    )
    assert task.simulate(task.prior.sample(2, seed=0), seed=0).shape == (2, 7)
    with pytest.raises(ValueError, match="one length"):
        Recording(
            voltage_mV=np.zeros(10),
            current_uA=np.zeros(9),
            dt_ms=0.1,
            t_on_ms=0.3,
            t_off_ms=0.7,
            soma_area_cm2=1e-4,
        )
    with pytest.raises(ValueError, match="soma_area_cm2"):
        Recording(
            voltage_mV=np.zeros(10),
            current_uA=np.zeros(10),
            dt_ms=0.1,
            t_on_ms=0.3,
            t_off_ms=0.7,
            soma_area_cm2=0.0,
        )


def test_shared_protocol_setup(shared: HodgkinHuxley) -> None:
    """The paper's setup: one model on the protocol of cell 518290966 sweep 57,
    observations 0..9 the ten recordings (each with its own t_on/t_off), then
    ten prior draws simulated on that protocol with 5 < spike count < 40."""
    assert shared.protocol.name == "cell 518290966 sweep 57"
    assert shared.protocol.n_samples == 72500 and shared.n_observations == 20
    for i, cell in enumerate(ALLEN_CELL_IDS):
        obs = shared.observation(i)
        rec = load_recording(cell)
        assert np.all(np.isnan(obs.theta)) and str(cell) in obs.description
        np.testing.assert_array_equal(
            obs.x, summary_statistics(rec.voltage, rec.dt_ms, rec.t_on_ms, rec.t_off_ms)
        )
    synthetic = [shared.observation(i) for i in range(10, 20)]
    for obs in synthetic:
        assert shared.prior.contains(obs.theta[None]).all()
        assert 5 < obs.x[0] < 40 and np.all(np.isfinite(obs.x))
    assert len({obs.theta.tobytes() for obs in synthetic}) == 10


def test_bad_recording_options() -> None:
    with pytest.raises(ValueError, match="no shipped recording for cell 123"):
        get_task("hodgkin_huxley", recording=123)
    with pytest.raises(ValueError, match="'all' or a cell id"):
        get_task("hodgkin_huxley", recording="everything")
    with pytest.raises(ValueError, match="cell_id must be an int"):
        load_recording(5.5)  # type: ignore[arg-type]
