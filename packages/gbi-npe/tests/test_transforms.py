"""Box bijection and standardization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gbi_npe.transforms import BoxLogit, InputTransform, standardization_stats


def test_constant_feature_gives_no_nan():
    rng = np.random.default_rng(0)
    values = np.c_[np.ones(100), rng.normal(3.0, 2.0, 100), np.full(100, -7.5)]
    shift, scale = standardization_stats(values)
    assert np.isfinite(shift).all() and np.isfinite(scale).all()
    np.testing.assert_array_equal(scale[[0, 2]], [1.0, 1.0])
    np.testing.assert_array_equal(shift[[0, 2]], [1.0, -7.5])
    # Weighted, with all the weight on two rows: still no NaN, constants untouched.
    weights = np.zeros(100)
    weights[:2] = 1.0
    _, scale_w = standardization_stats(values, weights)
    assert np.isfinite(scale_w).all() and (scale_w > 0).all()
    np.testing.assert_array_equal(scale_w[[0, 2]], [1.0, 1.0])


def test_weighted_statistics():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(1000, 2))
    weights = rng.uniform(size=1000)
    shift, scale = standardization_stats(values, weights)
    w = weights / weights.sum()
    mean = w @ values
    np.testing.assert_allclose(shift, mean)
    np.testing.assert_allclose(scale, np.sqrt(w @ (values - mean) ** 2))
    # Collapsed weights: the scale is floored at 0.1 x the unweighted std.
    collapsed = np.zeros(1000)
    collapsed[0] = 1.0
    _, scale_c = standardization_stats(values, collapsed)
    np.testing.assert_allclose(scale_c, 0.1 * values.std(axis=0))


def test_box_logit_round_trip_and_interior():
    box = BoxLogit((-1.0, 0.0), (2.0, 1e-3))
    theta = torch.tensor([[0.5, 5e-4], [-0.999, 1e-9], [1.999999, 9.99e-4]], dtype=torch.float64)
    z, _ = box(theta)
    back, _ = box.inverse(z)
    torch.testing.assert_close(back, theta, rtol=1e-10, atol=1e-12)
    extreme = torch.tensor([[-1e4, 1e4], [800.0, -800.0]], dtype=torch.float64)
    inside, log_det = box.inverse(extreme)
    assert ((inside > box.low) & (inside < box.high)).all()
    assert torch.isfinite(log_det).all()
    # Points on the faces map to finite values.
    on_face = torch.tensor([[-1.0, 1e-3]], dtype=torch.float64)
    assert torch.isfinite(box(on_face)[0]).all()


@pytest.mark.parametrize("bounded", [True, False])
def test_log_det_matches_autograd(bounded):
    low, high = ((-1.0, 2.0, 0.0), (3.0, 2.5, 1e-2)) if bounded else (None, None)
    transform = InputTransform(3, low, high)
    transform.standardize.set(np.array([0.3, -0.2, 1.0]), np.array([1.7, 0.4, 2.5]))
    rng = np.random.default_rng(2)
    if bounded:
        points = rng.uniform(low, high, (5, 3))
    else:
        points = rng.normal(size=(5, 3))
    for point in torch.as_tensor(points):
        jacobian = torch.autograd.functional.jacobian(lambda t: transform(t[None])[0][0], point)
        expected = torch.linalg.slogdet(jacobian).logabsdet
        torch.testing.assert_close(transform(point[None])[1][0], expected)
        # The inverse reports the same forward log-det at the point it returns.
        y, _ = transform(point[None])
        back, log_det_back = transform.inverse(y)
        torch.testing.assert_close(back[0], point)
        torch.testing.assert_close(log_det_back[0], expected)
