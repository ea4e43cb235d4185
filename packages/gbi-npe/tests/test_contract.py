"""The contract every estimator satisfies (zuko-style): one test suite, every family."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gbi_npe import load_estimator, save_estimator


@pytest.mark.parametrize("theta_dim", [1, 2, 3])
def test_shapes_and_dtypes(density, make_ready, npe_contexts, theta_dim):
    estimator = make_ready(density, theta_dim)
    context = npe_contexts(5)
    theta = torch.as_tensor(np.random.default_rng(1).uniform(-0.5, 0.5, (5, theta_dim)) + 0.5)
    theta = theta.clamp(torch.as_tensor(estimator.spec.low), torch.as_tensor(estimator.spec.high))
    log_q = estimator.log_prob(theta, context)
    assert log_q.shape == (5,) and log_q.dtype == torch.float64
    samples, log_q_samples = estimator.sample_and_log_prob(7, context[:4])
    assert samples.shape == (4, 7, theta_dim) and samples.dtype == torch.float64
    assert log_q_samples.shape == (4, 7)
    assert estimator.sample(3, context[:1]).shape == (1, 3, theta_dim)


@pytest.mark.parametrize("theta_dim", [1, 2])
def test_every_parameter_gets_a_gradient(density, make_ready, npe_contexts, theta_dim):
    estimator = make_ready(density, theta_dim)
    estimator.train()
    context = npe_contexts(64)
    with torch.no_grad():
        theta = estimator.sample(1, context).reshape(64, theta_dim)
    loss = -estimator.log_prob(theta, context).mean()
    loss.backward()
    for name, parameter in estimator.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(parameter.grad).all(), f"{name} has a non-finite gradient"
        assert parameter.grad.abs().max() > 0, f"{name} has an all-zero gradient"


def _grid(low: np.ndarray, high: np.ndarray, points: int) -> tuple[np.ndarray, float]:
    """Midpoints of a regular grid on the box and the volume of one cell."""
    axes = [np.linspace(lo, hi, points + 1) for lo, hi in zip(low, high, strict=True)]
    mids = [0.5 * (a[1:] + a[:-1]) for a in axes]
    mesh = np.stack(np.meshgrid(*mids, indexing="ij"), axis=-1).reshape(-1, len(low))
    cell = float(np.prod([(hi - lo) / points for lo, hi in zip(low, high, strict=True)]))
    return mesh, cell


@pytest.mark.parametrize("theta_dim", [1, 2])
@pytest.mark.parametrize("box", [True, False], ids=["box", "unbounded"])
def test_log_prob_integrates_to_one(density, make_ready, npe_contexts, theta_dim, box):
    # Midpoint quadrature of q(theta | x, beta) over its support.
    # * Unbounded: a theta grid spanning +-12 standardized units (the mass
    #   outside is < 1e-20 for the Gaussian tails both families have).
    # * Box: near a face the density piles up in a sliver that a regular theta
    #   grid cannot resolve, so the grid is regular in z = logit(u) instead and
    #   the integrand is q(theta(z)) * prod_j w_j s(z_j) (1 - s(z_j)) (s the
    #   sigmoid, w the box width), with that Jacobian written here in numpy,
    #   independently of the package; z spans +-25 (s(-25) < 1e-10).
    # With 20000 (1-D) or 400^2 (2-D) cells the quadrature error is far below
    # the 2e-3 tolerance (the weights are perturbed moderately: large noise
    # makes spline densities spike more sharply than any grid resolves).
    estimator = make_ready(density, theta_dim, box=box, perturbation=0.15)
    points = 20000 if theta_dim == 1 else 400
    if box:
        low, high = np.asarray(estimator.spec.low), np.asarray(estimator.spec.high)
        z, cell = _grid(np.full(theta_dim, -25.0), np.full(theta_dim, 25.0), points)
        s = 1.0 / (1.0 + np.exp(-z))
        theta = low + (high - low) * s
        log_jacobian = np.log((high - low) * s * (1.0 - s)).sum(axis=1)
    else:
        standardize = estimator.input_transform.standardize
        shift, scale = standardize.shift.numpy(), standardize.scale.numpy()
        theta, cell = _grid(shift - 12 * scale, shift + 12 * scale, points)
        log_jacobian = np.zeros(theta.shape[0])
    for context in npe_contexts(2, seed=3):
        with torch.no_grad():
            log_q = estimator.log_prob(
                torch.as_tensor(theta), context.expand(theta.shape[0], -1)
            ).numpy()
        total = float(np.exp(log_q + log_jacobian).sum() * cell)
        assert total == pytest.approx(1.0, abs=2e-3)


def test_samples_lie_inside_the_box(density, make_ready, npe_contexts):
    estimator = make_ready(density, 3)
    # Stretch the standardization so that many draws land deep in the logit tails.
    estimator.input_transform.standardize.set(np.zeros(3), np.full(3, 30.0))
    samples, log_q = estimator.sample_and_log_prob(2000, npe_contexts(3))
    low = torch.as_tensor(estimator.spec.low)
    high = torch.as_tensor(estimator.spec.high)
    assert ((samples > low) & (samples < high)).all()
    assert torch.isfinite(log_q).all()


def test_log_prob_is_minus_inf_outside_the_box(density, make_ready, npe_contexts):
    estimator = make_ready(density, 2)
    theta = torch.tensor([[0.0, 1.0], [-1.5, 1.0], [0.0, 3.5]], dtype=torch.float64)
    with torch.no_grad():
        log_q = estimator.log_prob(theta, npe_contexts(3))
    assert math.isfinite(log_q[0]) and log_q[1] == -math.inf and log_q[2] == -math.inf


@pytest.mark.parametrize("box", [True, False], ids=["box", "unbounded"])
def test_sample_log_prob_matches_log_prob(density, make_ready, npe_contexts, box):
    # The density computed along the sampling direction equals log_prob (inverse
    # and Jacobians consistent).
    estimator = make_ready(density, 2, box=box)
    context = npe_contexts(4)
    with torch.no_grad():
        samples, log_q = estimator.sample_and_log_prob(50, context)
        again = estimator.log_prob(samples.reshape(-1, 2), context.repeat_interleave(50, 0))
    # float32 networks: inverting a steep spline loses ~1e-4 in log density.
    np.testing.assert_allclose(again.numpy(), log_q.reshape(-1).numpy(), atol=2e-3, rtol=1e-5)


def test_sampling_is_deterministic_for_a_seed(density, make_ready, npe_contexts):
    estimator = make_ready(density, 2)
    context = npe_contexts(3)

    def draw(seed: int, chunk_rows: int = 1 << 18) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            return estimator.sample(40, context, generator, chunk_rows=chunk_rows)

    first = draw(7)
    assert torch.equal(first, draw(7))
    assert not torch.equal(first, draw(8))
    # Chunking does not change the draws: the noise is drawn once, up front
    # (only float32 rounding in matrix products of other shapes may differ).
    for chunk_rows in (13, 40):
        torch.testing.assert_close(first, draw(7, chunk_rows=chunk_rows), rtol=0, atol=1e-5)


def test_save_load_round_trip_is_exact(density, make_ready, npe_contexts, tmp_path):
    estimator = make_ready(density, 2)
    path = save_estimator(estimator, tmp_path / "model.safetensors", metadata={"task": "t"})
    loaded = load_estimator(path)
    original_state, loaded_state = estimator.state_dict(), loaded.state_dict()
    assert original_state.keys() == loaded_state.keys()
    for name, tensor in original_state.items():
        assert tensor.dtype == loaded_state[name].dtype
        assert torch.equal(tensor, loaded_state[name]), name
    assert loaded.spec == estimator.spec
    assert loaded.beta_range == estimator.beta_range
    context = npe_contexts(3)
    with torch.no_grad():
        theta = estimator.sample(5, context, torch.Generator().manual_seed(0))
        theta_loaded = loaded.sample(5, context, torch.Generator().manual_seed(0))
        assert torch.equal(theta, theta_loaded)
        rows = theta.reshape(-1, 2)
        contexts = context.repeat_interleave(5, 0)
        assert torch.equal(estimator.log_prob(rows, contexts), loaded.log_prob(rows, contexts))


def test_generic_estimator_without_box(density, make_ready):
    # The NLE shape: inputs = x (unbounded), context = theta; no beta.
    estimator = make_ready(density, 3, x_dim=2, box=False, beta=False)
    context = torch.as_tensor(np.random.default_rng(0).normal(size=(4, 2)))
    with torch.no_grad():
        samples, log_q = estimator.sample_and_log_prob(10, context)
        again = estimator.log_prob(samples.reshape(-1, 3), context.repeat_interleave(10, 0))
    assert samples.shape == (4, 10, 3)
    np.testing.assert_allclose(again.numpy(), log_q.reshape(-1).numpy(), atol=2e-3)
    assert estimator.input_transform.box is None


def test_mlp_embedding(density, tmp_path):
    from gbi_npe import EmbeddingConfig, make_npe

    embedding = EmbeddingConfig(kind="mlp", hidden_features=8, num_layers=1, output_features=4)
    estimator = make_npe(2, 6, density=density, embedding=embedding)
    assert estimator.context_encoder.output_features == 4 + 2  # embedding + log_beta, beta
    rng = np.random.default_rng(0)
    estimator.set_standardization(
        rng.normal(size=(64, 2)), rng.normal(size=(64, 6)), None, rng.uniform(0.5, 1.0, 64)
    )
    context = torch.as_tensor(np.c_[rng.normal(size=(3, 6)), [0.5, 0.7, 1.0]])
    with torch.no_grad():
        samples = estimator.sample(4, context, torch.Generator().manual_seed(0))
    assert samples.shape == (3, 4, 2)
    loaded = load_estimator(save_estimator(estimator, tmp_path / "mlp.safetensors"))
    with torch.no_grad():
        again = loaded.sample(4, context, torch.Generator().manual_seed(0))
    assert torch.equal(samples, again)
