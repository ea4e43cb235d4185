"""The trainer: reproducibility, early stopping, weights, continuous beta, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from gbi_npe import (
    LogUniformBeta,
    MDNConfig,
    Posterior,
    SplineFlowConfig,
    TrainConfig,
    fit,
    fit_conditional,
    make_conditional_estimator,
    make_npe,
    normalize_log_weights,
    resolve_device,
    train_loop,
)
from gbi_npe.objective import WeightedNLL
from gbi_npe.train import _split

SMALL_FLOW = SplineFlowConfig(num_layers=2, hidden_features=16, num_blocks=1, num_bins=4)
SMALL_MDN = MDNConfig(num_components=2, hidden_features=32, num_hidden_layers=2)
QUICK = TrainConfig(max_epochs=3, batch_size=64, progress=False)


def toy_data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """theta in the box [-2, 2]^2, x = theta + noise / sqrt(beta), beta in [0.2, 1.5]."""
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-2.0, 2.0, (n, 2))
    beta = np.exp(rng.uniform(np.log(0.2), np.log(1.5), n))
    x = np.c_[theta + 0.3 * rng.normal(size=(n, 2)) / np.sqrt(beta)[:, None], rng.normal(size=n)]
    return theta, x, beta


def toy_npe(density=SMALL_FLOW, seed: int = 0):
    return make_npe(2, 3, density=density, low=[-2.0, -2.0], high=[2.0, 2.0], seed=seed)


def test_fit_is_reproducible():
    theta, x, beta = toy_data(400)
    first, second, other = toy_npe(), toy_npe(), toy_npe()
    h1 = fit(first, theta, x, beta, config=QUICK)
    h2 = fit(second, theta, x, beta, config=QUICK)
    h3 = fit(other, theta, x, beta, config=TrainConfig(**(QUICK.to_dict() | {"seed": 1})))
    assert h1.train_loss == h2.train_loss and h1.validation_loss == h2.validation_loss
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[name]), name
    assert h1.train_loss != h3.train_loss
    # Training leaves global random state alone.
    state = torch.random.get_rng_state()
    fit(toy_npe(), theta, x, beta, config=QUICK)
    assert torch.equal(state, torch.random.get_rng_state())


def test_history():
    theta, x, beta = toy_data(300)
    history = fit(toy_npe(), theta, x, beta, config=QUICK)
    assert history.epochs == 3 and len(history.validation_loss) == 3
    assert len(history.epoch_seconds) == 3 and min(history.epoch_seconds) > 0
    assert history.n_train == 270 and history.n_validation == 30
    assert history.device == str(resolve_device("auto"))
    assert history.best_validation_loss == min(history.validation_loss)
    json.dumps(history.to_dict())
    no_validation = TrainConfig(**(QUICK.to_dict() | {"validation_fraction": 0.0}))
    history = fit(toy_npe(), theta, x, beta, config=no_validation)
    assert history.best_epoch is None and history.validation_loss == ()


def test_early_stopping_restores_the_best_weights():
    theta, x, beta = toy_data(160)
    config = TrainConfig(
        max_epochs=300, patience=3, batch_size=32, learning_rate=3e-3, progress=False, seed=4
    )
    big = SplineFlowConfig(num_layers=3, hidden_features=64, num_blocks=2)
    estimator = toy_npe(big)
    history = fit(estimator, theta, x, beta, config=config)
    assert history.stopped_early
    assert history.best_epoch == int(np.argmin(history.validation_loss))
    assert history.epochs == history.best_epoch + 1 + config.patience
    # Recompute the validation loss of the restored weights on the same split.
    split_seed = np.random.SeedSequence(config.seed).spawn(2)[0]
    _, val = _split(160, config.validation_fraction, np.random.default_rng(split_seed))
    objective = WeightedNLL(
        estimator,
        torch.as_tensor(theta[val]),
        torch.as_tensor(np.c_[x[val], beta[val]]),
        normalize_log_weights(None, beta[val], val.size),
    )
    assert objective.full_loss() == pytest.approx(history.best_validation_loss, rel=1e-6)


def test_learning_rate_decays_on_plateaus_down_to_its_floor():
    """A validation loss that never improves after epoch 0: the rate halves every
    ``lr_patience`` bad epochs (never below the floor) until ``patience`` stops it."""
    module = nn.Linear(1, 1)
    values = iter([1.0] + [2.0] * 50)
    config = TrainConfig(
        max_epochs=50,
        patience=12,
        lr_patience=3,
        lr_decay=0.5,
        min_lr_factor=0.15,
        learning_rate=0.1,
        progress=False,
        device="cpu",
    )
    history = train_loop(
        module,
        lambda index, rng: module(torch.ones(index.size, 1)).pow(2).mean(),
        8,
        config,
        lambda: next(values),
    )
    assert history.epochs == 13 and history.best_epoch == 0
    # decays after bad epochs 3, 6, 9: 0.1, 0.05, 0.025, then the floor 0.015
    expected = [0.1] * 4 + [0.05] * 3 + [0.025] * 3 + [0.015] * 3
    np.testing.assert_allclose(history.learning_rates, expected)
    # without lr_patience the rate is constant
    constant = train_loop(
        module,
        lambda index, rng: module(torch.ones(index.size, 1)).pow(2).mean(),
        8,
        TrainConfig(max_epochs=5, learning_rate=0.1, progress=False, device="cpu"),
        lambda: 1.0,
    )
    assert set(constant.learning_rates) == {0.1}


def test_the_cosine_schedule_falls_from_the_rate_to_its_floor_over_max_epochs(monkeypatch):
    """Every optimizer step takes the cosine's rate: the first the full rate,
    the last of ``max_epochs`` epochs the floor; a plateau does not change it."""
    module = nn.Linear(1, 1)
    seen = []

    class Recording(torch.optim.Adam):
        def step(self, closure=None):
            seen.append(self.param_groups[0]["lr"])
            return super().step(closure)

    config = TrainConfig(
        max_epochs=6,
        batch_size=3,
        patience=100,
        lr_schedule="cosine",
        min_lr_factor=0.1,
        learning_rate=0.2,
        progress=False,
        device="cpu",
    )
    monkeypatch.setattr(torch.optim, "Adam", Recording)
    history = train_loop(
        module,
        lambda index, rng: module(torch.ones(index.size, 1)).pow(2).mean(),
        8,  # 3 steps per epoch: 18 in all
        config,
        lambda: 1.0,  # never improves after epoch 0
    )
    steps = np.arange(18)
    expected = 0.2 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * steps / 17)))
    np.testing.assert_allclose(seen, expected, rtol=1e-12)
    assert seen[0] == pytest.approx(0.2) and seen[-1] == pytest.approx(0.02)
    assert history.epochs == 6
    np.testing.assert_allclose(history.learning_rates, expected[2::3], rtol=1e-12)


def test_the_cosine_schedule_is_not_combined_with_plateau_decay():
    with pytest.raises(ValueError, match="lr_patience"):
        TrainConfig(lr_schedule="cosine", lr_patience=3)
    with pytest.raises(ValueError, match="lr_schedule must be one of"):
        TrainConfig(lr_schedule="linear")


def test_smoothing_keeps_training_while_a_noisy_curve_still_falls():
    """A falling validation curve with a lucky dip every 10 epochs: counted
    against the raw best, 5 bad epochs follow each dip and patience 5 stops
    training after the first; counted against the moving average (span 5),
    the trend keeps resetting the count. The weights kept are still those of
    the best single epoch."""
    curve = [1 - 0.01 * e - (0.15 if e % 10 == 0 and e > 0 else 0.0) for e in range(60)]

    def run(smoothing: int):
        module = nn.Linear(1, 1)
        values = iter(curve)
        config = TrainConfig(
            max_epochs=60, patience=5, smoothing=smoothing, progress=False, device="cpu"
        )
        return train_loop(
            module,
            lambda index, rng: module(torch.ones(index.size, 1)).pow(2).mean(),
            8,
            config,
            lambda: next(values),
        )

    raw = run(1)
    assert raw.stopped_early and raw.best_epoch == 10 and raw.epochs == 16
    smoothed = run(5)
    assert not smoothed.stopped_early and smoothed.epochs == 60
    assert smoothed.best_epoch == int(np.argmin(curve)) == 50
    with pytest.raises(ValueError, match="smoothing"):
        TrainConfig(smoothing=0)


def test_weight_averaging_validates_and_returns_the_moving_average():
    """A loss with a constant gradient: Adam moves the weight by ``lr`` per step
    (its normalized step is ``g / |g|`` up to eps), so the live weight after k
    steps is ``w0 - k lr`` and the moving average has a closed recursion. The
    validation sees the average, training goes on from the live weights, and
    the average of the best epoch is returned. The decay warms up as
    ``min(decay, (1 + t) / (10 + t))``: with 0.6 the first 12 of the 24 steps
    use the warm-up and the rest the decay itself."""
    lr, decay, batches, epochs = 0.01, 0.6, 4, 6

    def run(ema_decay, validate):
        torch.manual_seed(0)
        module = nn.Linear(1, 1, bias=False)
        start = module.weight.item()
        seen = []
        config = TrainConfig(
            batch_size=1,
            learning_rate=lr,
            max_epochs=epochs,
            patience=epochs,
            clip_grad_norm=None,
            ema_decay=ema_decay,
            progress=False,
            device="cpu",
        )
        history = train_loop(
            module,
            lambda index, rng: module.weight.sum() * 1.0,
            batches,
            config,
            (lambda: seen.append(module.weight.item()) or seen[-1]) if validate else None,
        )
        return start, module.weight.item(), seen, history

    live = [w0 - k * lr for w0 in [run(None, False)[0]] for k in range(epochs * batches + 1)]
    start, raw, _, _ = run(None, False)
    np.testing.assert_allclose(raw, live[-1], atol=1e-5)
    average = [start]
    for t, w in enumerate(live[1:], start=1):
        d = min(decay, (1 + t) / (10 + t))
        average.append(average[-1] + (1 - d) * (w - average[-1]))
    # the validation loss w falls every epoch: the last average is validated best and kept
    _, kept, seen, history = run(decay, True)
    np.testing.assert_allclose(seen, average[batches::batches], atol=1e-5)
    assert history.best_epoch == epochs - 1
    np.testing.assert_allclose(kept, average[-1], atol=1e-5)
    # without validation, the last average
    np.testing.assert_allclose(run(decay, False)[1], average[-1], atol=1e-5)
    for bad in (0.0, 1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="ema_decay"):
            TrainConfig(ema_decay=bad)


def test_weighted_training_matches_training_on_a_resampled_set():
    # theta | x ~ N(x, 1) in the data; weights w = N(theta; x + 0.5, 0.6^2) /
    # N(theta; x, 1) turn it into theta | x ~ N(x + 0.5, 0.6^2) (and leave the
    # x marginal alone). One model is fit with the weights, one on a multinomial
    # resample of size N drawn with probabilities w~. Both must agree with each
    # other and with the target.
    #
    # Tolerances: the relative ESS of these weights is about 0.8, so each fit
    # sees ~3000 effective pairs; the statistical error of a fitted conditional
    # mean is then ~0.6 * sqrt(3 / 3000) ~ 0.02 (three effective parameters
    # near each x), and 4000 posterior draws add 0.6 / sqrt(4000) ~ 0.01. The
    # bounds (0.12 on means, 12 % on standard deviations, against the truth and
    # between the fits) leave room for the approximation error of a small MDN
    # trained for a few seconds.
    rng = np.random.default_rng(0)
    n = 4000
    x = rng.normal(size=(n, 1))
    theta = x + rng.normal(size=(n, 1))
    r = (theta - x - 0.5)[:, 0]
    log_w = -0.5 * (r / 0.6) ** 2 - np.log(0.6) + 0.5 * ((theta - x)[:, 0]) ** 2
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    resampled = rng.choice(n, size=n, p=w)
    config = TrainConfig(
        max_epochs=60, patience=8, batch_size=128, learning_rate=3e-3, progress=False
    )
    weighted = make_npe(1, 1, density=SMALL_MDN)
    plain = make_npe(1, 1, density=SMALL_MDN)
    fit(weighted, theta, x, 1.0, w, config)
    fit(plain, theta[resampled], x[resampled], 1.0, config=config)
    for x_obs in (-1.0, 0.0, 1.0):
        draws = [
            Posterior(model).sample(4000, np.array([x_obs]), 1.0, seed=1)[:, 0]
            for model in (weighted, plain)
        ]
        means = np.array([d.mean() for d in draws])
        sds = np.array([d.std() for d in draws])
        assert np.abs(means - (x_obs + 0.5)).max() < 0.12
        assert np.abs(sds / 0.6 - 1).max() < 0.12
        assert abs(means[0] - means[1]) < 0.12
        assert abs(sds[0] / sds[1] - 1) < 0.12


def test_weights_given_as_log_weights_are_the_same():
    theta, x, beta = toy_data(300)
    w = np.random.default_rng(1).uniform(0.1, 2.0, 300)
    a, b = toy_npe(), toy_npe()
    h1 = fit(a, theta, x, beta.round(1), w, QUICK)
    h2 = fit(b, theta, x, beta.round(1), config=QUICK, log_weights=np.log(w))
    np.testing.assert_allclose(h1.train_loss, h2.train_loss, rtol=1e-6)


def test_continuous_beta_with_log_weights_fn():
    theta, x, _ = toy_data(400)
    n = theta.shape[0]
    seen = []

    s = -0.5 * ((x[:, 0] - theta[:, 0]) / 0.3) ** 2  # a log-likelihood per pair

    def log_weights_fn(beta: np.ndarray, index: np.ndarray) -> np.ndarray:
        # SNIS weights w ∝ exp((beta - 1) s_i), normalized over all N pairs per beta.
        seen.append((beta.copy(), index.copy()))
        table = (beta[:, None] - 1.0) * s[None, :]  # (b, N)
        top = table.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(table - top).sum(axis=1))
        return table[np.arange(beta.size), index] - log_norm

    estimator = toy_npe()
    distribution = LogUniformBeta(0.2, 1.5)
    history = fit(estimator, theta, x, distribution, config=QUICK, log_weights_fn=log_weights_fn)
    assert estimator.beta_range == (0.2, 1.5)
    assert np.isfinite(history.train_loss).all() and len(history.validation_loss) == 3
    betas = np.concatenate([b for b, _ in seen])
    assert betas.min() >= 0.2 and betas.max() <= 1.5
    indices = np.concatenate([i for _, i in seen])
    assert indices.min() >= 0 and indices.max() < n
    assert all(b.shape == i.shape and b.ndim == 1 for b, i in seen)
    # The posterior accepts the whole range.
    Posterior(estimator).sample(5, x[0], np.array([0.2, 1.5]), seed=0)

    def broken(beta: np.ndarray, index: np.ndarray) -> np.ndarray:
        return np.zeros(beta.size + 1)

    with pytest.raises(ValueError, match="log_weights_fn must return an array of shape"):
        fit(toy_npe(), theta, x, distribution, config=QUICK, log_weights_fn=broken)


def test_refit_keeps_the_standardization_and_widens_the_range():
    theta, x, beta = toy_data(300)
    estimator = toy_npe()
    fit(estimator, theta, x, np.clip(beta, 0.5, 1.0), config=QUICK)
    shift = estimator.input_transform.standardize.shift.clone()
    second_beta = np.clip(beta, 0.2, 0.8)
    fit(estimator, theta + 0.1 * (theta < 1.8), x + 5.0, second_beta, config=QUICK)
    assert torch.equal(shift, estimator.input_transform.standardize.shift)
    assert estimator.beta_range == (second_beta.min(), 1.0)


def test_constant_x_feature_trains_without_nan():
    # lorenz96's x_0 is the same in every simulation.
    theta, x, beta = toy_data(300)
    x[:, 1] = 1.0
    estimator = toy_npe()
    history = fit(estimator, theta, x, beta, config=QUICK)
    assert np.isfinite(history.train_loss).all() and np.isfinite(history.validation_loss).all()
    assert estimator.context_encoder.x_standardize.scale[1] == 1.0
    assert np.isfinite(Posterior(estimator).sample(10, x[0], 0.5, seed=0)).all()


def test_fit_conditional_for_a_likelihood():
    # NLE shape: x (unbounded) given theta, no beta, no box.
    rng = np.random.default_rng(0)
    theta = rng.uniform(-1, 1, (600, 2))
    x = np.c_[theta.sum(1), theta[:, 0] - theta[:, 1]] + 0.1 * rng.normal(size=(600, 2))
    estimator = make_conditional_estimator(2, 2, density=SMALL_FLOW)
    config = TrainConfig(max_epochs=8, batch_size=64, learning_rate=3e-3, progress=False)
    history = fit_conditional(estimator, x, theta, config=config)
    assert history.validation_loss[-1] < history.validation_loss[0]
    with pytest.raises(ValueError, match=r"inputs columns \[1\] are constant"):
        fit_conditional(make_conditional_estimator(2, 2), np.c_[x[:, 0], np.ones(600)], theta)


def _bad_fit_calls():
    theta, x, beta = toy_data(50)
    return [
        ({"theta": theta[:, :1]}, r"theta must have shape \(n, 2\), got \(50, 1\)"),
        ({"x": x[:, :2]}, r"x must have shape \(n, 3\)"),
        ({"x": x[:40]}, "same number of rows"),
        ({"x": np.where(np.arange(50)[:, None] == 3, np.nan, x)}, "x must be finite"),
        ({"theta": theta + 5.0}, "must lie inside the box"),
        ({"beta": -beta}, "beta must be finite and > 0"),
        ({"beta": beta[:10]}, r"beta must be a scalar or have shape \(50,\)"),
        ({"weights": -np.ones(50)}, "weights must be finite and >= 0"),
        ({"weights": np.ones(49)}, r"weights must have shape \(50,\)"),
        ({"weights": np.ones(50), "log_weights": np.zeros(50)}, "not both"),
        ({"weights": np.ones(50)}, "every row has a different beta"),
        ({"beta": 1.0, "weights": np.zeros(50)}, "all weights are zero"),
        ({"log_weights_fn": lambda b, i: b}, "log_weights_fn needs beta to be a BetaDistribution"),
        ({"beta": LogUniformBeta(0.1, 1.0), "weights": np.ones(50)}, "pass log_weights_fn"),
        ({"config": {"max_epochs": 3}}, "config must be a TrainConfig"),
        ({"estimator": make_conditional_estimator(2, 3)}, "beta-conditioned estimator"),
        ({"estimator": nn.Linear(2, 2)}, "must be a ConditionalDensityEstimator"),
    ]


@pytest.mark.parametrize(("change", "message"), _bad_fit_calls())
def test_fit_rejects_bad_input(change, message):
    theta, x, beta = toy_data(50)
    arguments = {"estimator": toy_npe(), "theta": theta, "x": x, "beta": beta, "config": QUICK}
    with pytest.raises(ValueError, match=message):
        fit(**(arguments | change))


def test_device_resolution():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_train_loop_is_generic(capfd):
    # Any module and loss (the surrogates reuse it): a linear regression.
    rng = np.random.default_rng(0)
    inputs = torch.as_tensor(rng.normal(size=(512, 3)), dtype=torch.float32)
    targets = inputs @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    model = nn.Linear(3, 1)

    def batch_loss(index: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        return ((model(inputs[index])[:, 0] - targets[index]) ** 2).mean()

    def validation() -> float:
        with torch.no_grad():
            return float(((model(inputs[:64])[:, 0] - targets[:64]) ** 2).mean())

    config = TrainConfig(max_epochs=40, batch_size=32, learning_rate=0.05, progress=True)
    history = train_loop(model, batch_loss, 512, config, validation, description="regression")
    assert history.best_validation_loss < 1e-3
    torch.testing.assert_close(model.weight[0], torch.tensor([1.0, -2.0, 0.5]), atol=0.02, rtol=0)
    assert "regression" in capfd.readouterr().err

    def nan_loss(index: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        return model(inputs[index]).sum() * float("nan")

    with pytest.raises(FloatingPointError, match="training loss became nan"):
        train_loop(model, nan_loss, 512, TrainConfig(max_epochs=2, progress=False))


def test_groups_stay_on_one_side_of_the_validation_split() -> None:
    groups = np.repeat(np.arange(50), 4)  # 50 x's with 4 thetas each
    train, val = _split(200, 0.2, np.random.default_rng(0), groups)
    assert set(groups[train]).isdisjoint(groups[val])
    assert val.size == 40 and np.array_equal(np.sort(np.r_[train, val]), np.arange(200))
    # without groups the split is the one it always was
    plain = _split(200, 0.2, np.random.default_rng(0))
    again = _split(200, 0.2, np.random.default_rng(0), None)
    assert all(np.array_equal(a, b) for a, b in zip(plain, again, strict=True))


def test_bad_groups_are_refused() -> None:
    from gbi_npe import LogUniformBeta, SplineFlowConfig

    npe = make_npe(2, 3, density=SplineFlowConfig(num_layers=1, hidden_features=8, num_bins=4))
    rng = np.random.default_rng(0)
    theta, x = rng.normal(size=(10, 2)), rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match="groups must be an integer array"):
        fit(npe, theta, x, LogUniformBeta(0.5, 1.5), groups=np.zeros(9, dtype=int))
    with pytest.raises(ValueError, match="groups needs beta to be a BetaDistribution"):
        fit(npe, theta, x, 1.0, groups=np.zeros(10, dtype=int))
