from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gbi
from gbi import Problem, make_problem, simulate_base_set
from gbi.simulation import derive_seed


def shift_simulator(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return theta + 0.1 * rng.standard_normal(theta.shape)


class CountingSimulator:
    """A user simulator that counts rows and can fail after some chunks."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.rows = 0
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        self.rows += theta.shape[0]
        return shift_simulator(theta, rng)


def test_user_problem_from_a_plain_function() -> None:
    problem = Problem(low=[-1, -1], high=[1, 1], simulator=shift_simulator, name="shift")
    base = simulate_base_set(problem, 1000, seed=3, chunk_size=300)
    assert base.theta.shape == (1000, 2)
    assert base.x.shape == (1000, 2)
    np.testing.assert_allclose(np.std(base.x - base.theta), 0.1, rtol=0.1)
    again = simulate_base_set(problem, 1000, seed=3, chunk_size=300)
    np.testing.assert_array_equal(base.x, again.x)

    # A simulator of theta alone is accepted too.
    det = Problem(low=[0.0], high=[1.0], simulator=lambda theta: 2 * theta)
    out = simulate_base_set(det, 10, seed=0, chunk_size=4)
    np.testing.assert_allclose(out.x, 2 * out.theta)


def test_builtin_chunks_equal_one_big_simulation() -> None:
    problem = make_problem("slcp")
    base = simulate_base_set(problem, 1000, seed=5, chunk_size=333)
    whole = simulate_base_set(problem, 1000, seed=5, chunk_size=1000)
    np.testing.assert_array_equal(base.x, whole.x)


def test_nonfinite_simulations_are_dropped_and_counted() -> None:
    def sometimes_nan(theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = theta.copy()
        x[theta[:, 0] > 0.5] = np.nan
        return x

    problem = Problem(low=[0.0], high=[1.0], simulator=sometimes_nan)
    base = simulate_base_set(problem, 1000, seed=0)
    drawn = problem.prior.sample(1000, seed=derive_seed(0, "prior"))
    assert base.n_dropped == int(np.sum(drawn[:, 0] > 0.5))
    assert base.n_requested == 1000
    np.testing.assert_array_equal(base.theta, drawn[drawn[:, 0] <= 0.5])
    assert np.isfinite(base.x).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"low": [0.0], "high": [1.0], "simulator": None}, "callable"),
        ({"low": [1.0], "high": [0.0], "simulator": shift_simulator}, "high must exceed low"),
        (
            {"low": [0.0], "high": [1.0], "simulator": shift_simulator, "theta_names": ("a", "b")},
            "theta_names",
        ),
    ],
)
def test_bad_user_problem(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Problem(**kwargs)


def test_bad_simulator_output_is_named() -> None:
    problem = Problem(low=[0.0], high=[1.0], simulator=lambda theta, rng: np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"must return shape \(n, x_dim\)"):
        simulate_base_set(problem, 10, seed=0)


def test_unknown_task() -> None:
    with pytest.raises(ValueError, match="unknown task"):
        make_problem("three_moons")


def test_interrupted_simulation_resumes_without_redoing_chunks(tmp_path: Path) -> None:
    config = {"problem": "counting", "simulations": 1000}
    run = gbi.RunDirectory(tmp_path / "run", config)
    interrupted = CountingSimulator(fail_after=3)
    problem = Problem(low=[-1, -1], high=[1, 1], simulator=interrupted, name="counting")
    with pytest.raises(KeyboardInterrupt):
        simulate_base_set(problem, 1000, seed=1, run=run, chunk_size=100)
    assert interrupted.rows == 300
    assert len(list((run.path / "simulations").glob("chunk_*.npz"))) == 3

    resumed_sim = CountingSimulator()
    resumed = simulate_base_set(
        Problem(low=[-1, -1], high=[1, 1], simulator=resumed_sim, name="counting"),
        1000,
        seed=1,
        run=gbi.RunDirectory(tmp_path / "run", config),
        chunk_size=100,
    )
    assert resumed_sim.rows == 700  # only the 7 missing chunks
    assert resumed.n_reused == 300
    fresh = simulate_base_set(
        Problem(low=[-1, -1], high=[1, 1], simulator=shift_simulator),
        1000,
        seed=1,
        chunk_size=100,
    )
    np.testing.assert_array_equal(resumed.x, fresh.x)
    np.testing.assert_array_equal(resumed.theta, fresh.theta)
