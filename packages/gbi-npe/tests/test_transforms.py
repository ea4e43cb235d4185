"""Box bijection and standardization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gbi_npe.transforms import (
    TAIL_THRESHOLD,
    BoxLogit,
    InputTransform,
    Standardize,
    feature_stats,
    standardization_stats,
)


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


# -- heavy tails (a simulator that sometimes blows up, such as lorenz96) ----------------


def _heavy(n: int = 2000, seed: int = 0) -> np.ndarray:
    """A normal feature beside one whose 3 % of rows blow up to 1e10 .. 1e160."""
    rng = np.random.default_rng(seed)
    normal = rng.normal(1.5, 0.5, n)
    blown = rng.normal(-2.0, 0.8, n)
    rows = rng.choice(n, size=int(0.03 * n), replace=False)
    blown[rows] = rng.choice([-1.0, 1.0], rows.size) * 10.0 ** rng.uniform(10, 160, rows.size)
    return np.c_[normal, blown]


def test_feature_stats_leaves_ordinary_features_alone():
    values = _heavy()
    shift, scale, tail = feature_stats(values)
    plain_shift, plain_scale = standardization_stats(values[:, :1])
    assert tail[0] == np.inf
    np.testing.assert_allclose([shift[0], scale[0]], [plain_shift[0], plain_scale[0]], rtol=1e-14)
    # the blown-up feature: median and IQR / 1.349 of the bulk (N(-2, 0.8) with 3 % outliers)
    assert tail[1] == TAIL_THRESHOLD
    assert abs(shift[1] + 2.0) < 0.1 and 0.7 < scale[1] < 0.95


def test_the_tail_threshold_can_be_moved_out(monkeypatch):
    """x of large but physical amplitude stays on its linear scale up to the threshold."""
    import gbi_npe
    from gbi_npe.transforms import shared_feature_stats

    values = _heavy()
    shift, scale, tail = feature_stats(values, tail_threshold=50.0)
    assert tail[0] == np.inf and tail[1] == 50.0
    np.testing.assert_array_equal([shift, scale], feature_stats(values)[:2])
    assert set(shared_feature_stats(values, tail_threshold=50.0)[2]) == {50.0}
    module = Standardize(2)
    module.set(shift, scale, tail)
    z = 40.0  # robust units: linear under 50, compressed to 3 + log(38) under 3
    y = module(torch.tensor([[0.0, shift[1] + z * scale[1]]], dtype=torch.float64))
    assert y[0, 1].item() == pytest.approx(z)
    for bad in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="tail_threshold"):
            feature_stats(values, tail_threshold=bad)
        with pytest.raises(ValueError, match="tail_threshold"):
            gbi_npe.EmbeddingConfig(tail_threshold=bad)
    # None reads the module's threshold when called
    monkeypatch.setattr(gbi_npe.transforms, "TAIL_THRESHOLD", 7.0)
    assert feature_stats(values)[2][1] == 7.0


def test_tail_compression_is_a_finite_monotone_bijection():
    values = _heavy()
    module = Standardize(2)
    module.set(*feature_stats(values))
    v = torch.as_tensor(values)
    y, log_det = module.forward_and_log_det(v)
    assert torch.isfinite(y).all() and torch.isfinite(log_det).all()
    assert y[:, 1].abs().max() < 400  # log(1e160) ~ 368: float32-safe
    order = torch.argsort(v[:, 1])
    assert (torch.diff(y[order, 1]) >= 0).all()
    back, log_det_back = module.inverse_and_log_det(y)
    np.testing.assert_allclose(back.numpy(), values, rtol=1e-9)
    np.testing.assert_allclose(log_det_back.numpy(), log_det.numpy(), rtol=1e-9)


def test_tail_log_det_matches_autograd():
    module = Standardize(2)
    module.set(np.array([0.5, -1.0]), np.array([2.0, 0.5]), np.array([3.0, np.inf]))
    v = torch.tensor([[0.7, 0.2], [40.0, -3.0], [-25.0, 9.0], [1e6, 0.0]], dtype=torch.float64)
    _, log_det = module.forward_and_log_det(v)
    for i in range(v.shape[0]):
        jac = torch.autograd.functional.jacobian(lambda row: module(row[None])[0], v[i])
        expected = torch.log(torch.abs(torch.linalg.det(jac)))
        np.testing.assert_allclose(log_det[i].item(), expected.item(), rtol=1e-10)


def test_models_saved_before_tails_load_without_compression():
    module = Standardize(3)
    state = {
        "shift": torch.ones(3, dtype=torch.float64),
        "scale": torch.ones(3, dtype=torch.float64),
    }
    module.load_state_dict(state)
    assert torch.isinf(module.tail).all() and not module.has_tails


def test_npe_trains_on_blown_up_contexts():
    """A context with 1e160 outliers: finite losses and log densities, no NaN anywhere."""
    from gbi_npe import MDNConfig, TrainConfig, fit, make_npe

    rng = np.random.default_rng(3)
    x = _heavy(n=1500, seed=3)
    theta = np.clip(0.3 * x[:, :1] + 0.05 * rng.normal(size=(1500, 1)), -1.9, 1.9)
    npe = make_npe(1, 2, density=MDNConfig(hidden_features=16), low=[-2.0], high=[2.0], seed=0)
    history = fit(npe, theta, x, 1.0, config=TrainConfig(max_epochs=3, batch_size=128, seed=0))
    assert np.isfinite(history.train_loss).all() and np.isfinite(history.validation_loss).all()
    with torch.no_grad():
        context = torch.as_tensor(np.c_[x[:50], np.ones(50)])
        log_prob = npe.log_prob(torch.as_tensor(theta[:50]), context)
    assert torch.isfinite(log_prob).all()
