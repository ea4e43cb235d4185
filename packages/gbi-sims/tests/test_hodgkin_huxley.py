"""hodgkin_huxley on the synthetic protocol: kernel, statistics, determinism, failures."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_hh import simulate_trace
from scipy import stats

from gbi_sims import SimulationWarning, count_failed, get_task, simulate_distributed
from gbi_sims._kernels import hodgkin_huxley as kernel
from gbi_sims._rng import make_key
from gbi_sims.hodgkin_huxley import (
    PRIOR_HIGH,
    PRIOR_LOW,
    STATISTIC_NAMES,
    TRUE_THETA,
    HodgkinHuxley,
    Protocol,
    sample_windows,
    summary_statistics,
    synthetic_protocol,
)


@pytest.fixture(scope="module")
def task() -> HodgkinHuxley:
    return get_task("hodgkin_huxley")


def _true_theta(n: int = 1) -> np.ndarray:
    return np.repeat(np.array([TRUE_THETA]), n, axis=0)


# -- the task contract -----------------------------------------------------


def test_task_contract(task: HodgkinHuxley) -> None:
    assert task.name == "hodgkin_huxley"
    assert (task.theta_dim, task.x_dim) == (8, 7)
    assert len(task.theta_names) == 8
    assert task.x_names == STATISTIC_NAMES
    np.testing.assert_array_equal(task.prior.low, PRIOR_LOW)
    np.testing.assert_array_equal(task.prior.high, PRIOR_HIGH)
    assert task.prior.contains(_true_theta()).all()
    p = task.protocol
    assert (p.n_samples, p.dt, p.v0, p.t_on, p.t_off) == (12001, 0.01, -70.0, 10.0, 110.0)
    step = 5e-4 / (np.pi * (70e-4) ** 2)
    assert np.flatnonzero(p.current).tolist() == list(range(1000, 11000))
    assert p.current[5000] == pytest.approx(step) and step == pytest.approx(3.2481, abs=1e-4)
    x = task.simulate(task.prior.sample(6, seed=0), seed=1)
    assert x.shape == (6, 7) and x.dtype == np.float64


def test_no_tractable_likelihood(task: HodgkinHuxley) -> None:
    assert not task.has_likelihood
    with pytest.raises(NotImplementedError, match="no tractable likelihood"):
        task.log_likelihood(_true_theta(), np.zeros(7))


def test_ground_truth_spikes_plausibly(task: HodgkinHuxley) -> None:
    """At TRUE_THETA the 3.25 uA/cm^2 step drives tonic firing that the M-current
    adapts (inter-spike intervals grow from ~15 to ~22 ms), so the 100 ms step
    gives about five spikes; the noise (0.1) barely moves the count. 3..10
    rejects a silent model (broken Na current, wrong current units) and a
    non-adapting or over-driven one."""
    x = task.simulate(_true_theta(16), seed=3)
    assert np.all(np.isfinite(x))
    assert np.all((x[:, 0] >= 3) & (x[:, 0] <= 10)), x[:, 0]
    assert np.all((x[:, 1] > -75) & (x[:, 1] < -65))  # rest near E_leak = -70 mV
    assert np.all(x[:, 4] > 0) and np.all(x[:, 6] > 1)  # a spiking window: heavy tails


# -- kernel vs the plain-numpy reference -----------------------------------


def test_kernel_matches_naive_reference() -> None:
    """25 ms with a strong step (several spikes): the exponential-Euler kernel and
    the step-by-step numpy reference, on the same random stream, agree to 1e-10 mV."""
    protocol = synthetic_protocol(duration=25.0, t_on=2.0, t_off=22.0, amplitude=6.0)
    short = HodgkinHuxley(protocol)
    theta = np.vstack([TRUE_THETA, short.prior.sample(5, seed=2)])
    traces = short.simulate_traces(theta, seed=7)
    key = make_key(7)
    references = np.array(
        [
            simulate_trace(theta[i], protocol.current, protocol.dt, protocol.v0, key, i)
            for i in range(theta.shape[0])
        ]
    )
    np.testing.assert_allclose(traces, references, rtol=0, atol=1e-10)
    assert np.sum(np.max(references, axis=1) > 0) >= 3  # spikes, not only the resting branch
    # and the kernel's statistics are those of the reference traces
    np.testing.assert_allclose(
        short.simulate(theta, seed=7),
        summary_statistics(references, protocol.dt, protocol.t_on, protocol.t_off),
        rtol=1e-9,
        atol=1e-12,
    )


# -- summary statistics ----------------------------------------------------


def _hand_built_trace() -> np.ndarray:
    """30 ms at dt = 0.1 (301 samples), t_on = 10, t_off = 20 ms, with known peaks."""
    k = np.arange(301)
    v = -65.0 + 3.0 * np.sin(0.37 * k) + 0.5 * np.cos(1.3 * k)  # below -10: no peaks
    for peak in (50, 100, 120, 123, 127, 150, 198, 200):
        v[peak] = 30.0
    v[160] = -20.0  # a local maximum below threshold
    v[170] = v[171] = 0.0  # a flat top counts once
    return v


def test_sample_windows_on_the_grid() -> None:
    # rest: t < 10 -> samples 0..99; stimulus: 10 < t < 20 -> samples 101..199
    assert sample_windows(301, 0.1, 10.0, 20.0) == (100, 101, 200)
    assert sample_windows(72500, 0.02, 205.0, 1204.98) == (10250, 10251, 60249)
    assert sample_windows(12001, 0.01, 10.0, 110.0) == (1000, 1001, 11000)
    with pytest.raises(ValueError, match="t_on < t_off"):
        sample_windows(301, 0.1, 20.0, 10.0)
    with pytest.raises(ValueError, match="strictly inside"):
        sample_windows(301, 0.1, 40.0, 50.0)


def test_summary_statistics_hand_built() -> None:
    v = _hand_built_trace()
    x = summary_statistics(v, dt=0.1, t_on=10.0, t_off=20.0)
    # counted: 12.0, 15.0, 17.1 (the second sample of a flat top), 19.8 ms.
    # Not counted: 5.0 (before t_on), 10.0 (= t_on), 12.3 and 12.7 (within 0.5 ms
    # of the previous detected peak), 16.0 (below -10 mV), 20.0 (= t_off).
    assert x[0] == 4
    assert x[1] == pytest.approx(np.mean(v[:100]), rel=1e-13)
    assert x[2] == pytest.approx(np.std(v[90:100]), rel=1e-12)
    window = v[101:200]
    assert x[3] == pytest.approx(np.mean(window), rel=1e-13)
    assert x[4] == pytest.approx(np.var(window), rel=1e-12)
    assert x[5] == pytest.approx(stats.skew(window), rel=1e-10)
    assert x[6] == pytest.approx(stats.kurtosis(window, fisher=False), rel=1e-10)
    # the kernel's reduction of the same trace gives the same numbers
    out = np.empty(7)
    kernel.trace_statistics(v, 0.1, 100, 101, 200, out)
    np.testing.assert_allclose(out, x, rtol=1e-12)
    # batched input gives the same rows
    np.testing.assert_array_equal(summary_statistics(np.vstack([v, v]), 0.1, 10.0, 20.0)[1], x)


def test_summary_statistics_no_spike_flat_and_diverged() -> None:
    quiet = -70.0 + 0.1 * np.sin(np.arange(301))
    assert summary_statistics(quiet, 0.1, 10.0, 20.0)[0] == 0
    flat = np.full(301, -70.0)
    x = summary_statistics(flat, 0.1, 10.0, 20.0)
    assert x[:5].tolist() == [0.0, -70.0, 0.0, -70.0, 0.0]
    assert np.isnan(x[5]) and np.isnan(x[6])
    out = np.empty(7)
    kernel.trace_statistics(flat, 0.1, 100, 101, 200, out)
    np.testing.assert_array_equal(out, x)
    diverged = quiet.copy()
    diverged[250:] = np.nan
    batch = summary_statistics(np.vstack([quiet, diverged]), 0.1, 10.0, 20.0)
    assert np.all(np.isfinite(batch[0])) and np.all(np.isnan(batch[1]))
    with pytest.raises(ValueError, match=r"shape \(T,\) or \(n, T\)"):
        summary_statistics(np.zeros((2, 2, 5)), 0.1, 0.2, 0.3)


def test_kernel_statistics_equal_statistics_of_traces(task: HodgkinHuxley) -> None:
    theta = np.vstack([TRUE_THETA, task.prior.sample(11, seed=4)])
    x = task.simulate(theta, seed=9)
    traces = task.simulate_traces(theta, seed=9)
    p = task.protocol
    assert traces.shape == (12, p.n_samples) and np.all(traces[:, 0] == p.v0)
    np.testing.assert_array_equal(x[:, 0], summary_statistics(traces, p.dt, p.t_on, p.t_off)[:, 0])
    np.testing.assert_allclose(
        x, summary_statistics(traces, p.dt, p.t_on, p.t_off), rtol=1e-10, atol=1e-12
    )
    assert np.any(x[:, 0] > 0) and np.any(x[:, 0] == 0)  # both kinds of rows are covered


# -- determinism and memory ------------------------------------------------

_SUBPROCESS = """
import sys, numba, numpy as np
from gbi_sims import get_task
task = get_task("hodgkin_huxley")
x = task.simulate(task.prior.sample(24, seed=5), seed=11, chunk_size=10)
sys.stderr.write(str(numba.get_num_threads()))
sys.stdout.write(x.tobytes().hex())
"""


def _simulate_in_subprocess(threads: int) -> np.ndarray:
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    done = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert done.stderr.strip().endswith(str(threads))
    return np.frombuffer(bytes.fromhex(done.stdout), dtype=np.float64).reshape(24, 7)


def test_same_numbers_for_any_thread_count_chunk_or_executor(task: HodgkinHuxley) -> None:
    theta = task.prior.sample(24, seed=5)
    x = task.simulate(theta, seed=11)
    np.testing.assert_array_equal(task.simulate(theta, seed=11, chunk_size=1), x)
    np.testing.assert_array_equal(task.simulate(theta, seed=11, chunk_size=7), x)
    np.testing.assert_array_equal(
        task.simulate(theta[5:9], seed=11)[0], task.simulate(theta[5:6], seed=11)[0]
    )  # row 0 of any call uses stream row 0
    assert not np.array_equal(task.simulate(theta, seed=12), x)
    with ThreadPoolExecutor(2) as pool:
        np.testing.assert_array_equal(simulate_distributed(task, theta, 11, pool, chunk_size=5), x)
    np.testing.assert_array_equal(_simulate_in_subprocess(1), x)
    np.testing.assert_array_equal(_simulate_in_subprocess(2), x)


def test_memory_is_bounded_by_threads_not_batch(task: HodgkinHuxley) -> None:
    theta = task.prior.sample(600, seed=1)
    task.simulate(theta[:2], seed=0)  # compiled already; warm
    tracemalloc.start()
    try:
        x = task.simulate(theta, seed=0, chunk_size=200)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    full_traces = theta.shape[0] * task.protocol.n_samples * 8  # 57.6 MB
    assert x.shape == (600, 7)
    assert peak < full_traces / 20, peak


# -- failures and bad input ------------------------------------------------


def test_diverged_rows_are_nan_and_counted() -> None:
    """A current of 1e308 uA/cm^2 overflows V: through a resting conductance
    below 1 mS/cm^2 to inf/NaN on the first step, through a large one to ~1e306
    mV whose statistics overflow. Both are diverged runs: NaN rows, counted in
    the warning; nothing raises."""
    current = np.full(1001, 1e308)
    blown = HodgkinHuxley(Protocol(current=current, dt=0.01, v0=-70.0, t_on=2.0, t_off=8.0))
    theta = np.array([blown.prior.low, TRUE_THETA, blown.prior.high])
    with pytest.warns(SimulationWarning, match="3 of 3 simulations failed"):
        x = blown.simulate(theta, seed=0)
    assert count_failed(x) == 3 and np.all(np.isnan(x))
    traces = blown.simulate_traces(theta, seed=0)
    assert np.all(traces[:, 0] == -70.0) and np.all(np.isnan(traces[:2, 1:]))
    assert np.all(np.isfinite(traces[2])) and np.min(traces[2, 1:]) > 1e300
    p = blown.protocol
    assert np.all(np.isnan(summary_statistics(traces, p.dt, p.t_on, p.t_off)))


def test_flat_window_rows_are_counted() -> None:
    """A noise-free cell with only a leak, resting at E_leak = V_0 with no current,
    has an exactly flat trace: skewness and kurtosis are NaN and the row counts as
    failed. (Inside the prior, noise >= 1e-4 keeps every window non-flat, so the
    rows go through ``simulate_rows``, which skips the prior check.)"""
    protocol = synthetic_protocol(amplitude=0.0, duration=20.0)
    quiet = HodgkinHuxley(protocol)
    flat_theta = [0.0, 0.0, 0.3, 0.0, 600.0, 60.0, 0.0, 70.0]
    theta = np.array([flat_theta, TRUE_THETA, flat_theta])
    with pytest.warns(SimulationWarning, match="2 of 3 simulations failed"):
        x = quiet.simulate_rows(theta, make_key(0), row_offset=0)
    assert count_failed(x) == 2
    np.testing.assert_array_equal(x[0, :5], [0.0, -70.0, 0.0, -70.0, 0.0])
    assert np.isnan(x[0, 5]) and np.isnan(x[0, 6]) and np.all(np.isfinite(x[1]))


def test_theta_outside_prior_raises(task: HodgkinHuxley) -> None:
    theta = _true_theta(3)
    theta[1, 4] = 10.0  # tau_max below 50 ms
    with pytest.raises(ValueError, match=r"inside the prior box of hodgkin_huxley.*row 1"):
        task.simulate(theta, seed=0)
    with pytest.raises(ValueError, match="inside the prior box"):
        task.simulate_traces(theta, seed=0)
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        task.simulate(np.array(TRUE_THETA), seed=0)
    with pytest.raises(ValueError, match="non-finite"):
        task.simulate(np.full((1, 8), np.nan), seed=0)
    with pytest.raises(ValueError, match="empty batch"):
        task.simulate(np.zeros((0, 8)), seed=0)


@settings(max_examples=30, deadline=None)
@given(
    column=st.integers(0, 7),
    below=st.booleans(),
    margin=st.floats(1e-6, 1e3, allow_nan=False, allow_infinity=False),
)
def test_any_coordinate_outside_the_box_raises(column: int, below: bool, margin: float) -> None:
    task = get_task("hodgkin_huxley")
    theta = _true_theta()
    span = PRIOR_HIGH[column] - PRIOR_LOW[column]
    theta[0, column] = (
        PRIOR_LOW[column] - margin * span if below else PRIOR_HIGH[column] + margin * span
    )
    with pytest.raises(ValueError, match="inside the prior box"):
        task.check_theta(theta)


def test_prior_corners_simulate(task: HodgkinHuxley) -> None:
    x = task.simulate(np.array([task.prior.low, task.prior.high]), seed=0)
    assert np.all(np.isfinite(x))


def test_bad_protocols_raise() -> None:
    good = {"current": np.zeros(101), "dt": 0.1, "v0": -70.0, "t_on": 1.0, "t_off": 9.0}
    Protocol(**good)
    with pytest.raises(ValueError, match="1-D array"):
        Protocol(**{**good, "current": np.zeros((2, 101))})
    with pytest.raises(ValueError, match="finite"):
        Protocol(**{**good, "current": np.full(101, np.nan)})
    with pytest.raises(ValueError, match="dt must be"):
        Protocol(**{**good, "dt": 0.0})
    with pytest.raises(ValueError, match="t_on < t_off"):
        Protocol(**{**good, "t_on": 9.0, "t_off": 1.0})
    with pytest.raises(ValueError, match="strictly inside"):
        Protocol(**{**good, "t_on": 20.0, "t_off": 30.0})
    with pytest.raises(ValueError, match="protocol must be a Protocol"):
        HodgkinHuxley(protocol="synthetic")  # type: ignore[arg-type]
    protocol = Protocol(**good)
    assert not protocol.current.flags.writeable


# -- fixed observations ----------------------------------------------------


def test_synthetic_observations(task: HodgkinHuxley) -> None:
    assert task.n_observations == 10
    first = task.observation(0)
    np.testing.assert_array_equal(first.theta, TRUE_THETA)
    np.testing.assert_array_equal(
        first.x, task.simulate(_true_theta(), seed=task.observation_seed)[0]
    )
    draws = [task.observation(i) for i in range(1, 10)]
    for obs in draws:
        assert task.prior.contains(obs.theta[None]).all()
        assert 5 < obs.x[0] < 40 and np.all(np.isfinite(obs.x))
        assert "5 < spike count < 40" in obs.description
    assert len({obs.theta.tobytes() for obs in draws}) == 9
    again = HodgkinHuxley().observation(5)
    np.testing.assert_array_equal(again.x, task.observation(5).x)
    np.testing.assert_array_equal(again.theta, task.observation(5).theta)
    with pytest.raises(ValueError, match="has 10 observations"):
        task.observation(10)
