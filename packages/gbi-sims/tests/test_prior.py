from __future__ import annotations

import numpy as np
import pytest

from gbi_sims import BoxUniform


def test_samples_inside_and_log_prob() -> None:
    prior = BoxUniform([-1.0, 0.0, 10.0], [1.0, 2.0, 14.0])
    theta = prior.sample(10_000, seed=3)
    assert theta.shape == (10_000, 3)
    assert theta.dtype == np.float64
    assert prior.contains(theta).all()
    np.testing.assert_allclose(prior.log_prob(theta), -np.log(2 * 2 * 4))
    outside = np.array([[0.0, 1.0, 9.0], [2.0, 1.0, 12.0]])
    assert not prior.contains(outside).any()
    assert np.all(prior.log_prob(outside) == -np.inf)
    np.testing.assert_array_equal(prior.sample(7, seed=1), prior.sample(7, seed=1))


@pytest.mark.parametrize(
    ("low", "high"),
    [([0.0], [0.0]), ([0.0, 1.0], [1.0]), ([np.nan], [1.0]), ([1.0], [0.0])],
)
def test_bad_box(low: list[float], high: list[float]) -> None:
    with pytest.raises(ValueError, match=r"low|high"):
        BoxUniform(low, high)


def test_bad_n_and_shape() -> None:
    prior = BoxUniform([0.0, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        prior.sample(-1, seed=0)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        prior.log_prob(np.zeros(3))
