"""Early stopping per temperature: a weight set per temperature cell, and the loop."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from gbi_npe import (
    LogUniformBeta,
    Posterior,
    SplineFlowConfig,
    TrainConfig,
    fit,
    load_estimator,
    make_npe,
    save_estimator,
)
from gbi_npe.loop import train_loop
from gbi_npe.train import trusted_sources

SMALL = SplineFlowConfig(num_layers=2, hidden_features=16, num_blocks=1, num_bins=4)
GRID = [0.1, 0.5, 2.0]  # cells meet at sqrt(0.05) = 0.224 and 1.0
X = np.array([0.3, -1.0, 2.0])


@pytest.fixture
def two_weight_sets(make_ready):
    """The same estimator (A) and a copy with other encoder and core weights (B)."""
    a = make_ready(SMALL, 2, x_dim=3)
    b = copy.deepcopy(a)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in b.named_parameters():
            if name.startswith(("core.", "context_encoder.")):
                p.add_(0.3 * torch.randn(p.shape, generator=generator))
    return a, b


def _log_prob(estimator, theta, beta):
    return Posterior(estimator).log_prob(theta, X, beta)


def test_each_temperature_is_served_by_its_cells_weights(two_weight_sets, tmp_path):
    a, b = two_weight_sets
    pieced = copy.deepcopy(a)
    assert pieced.set_temperature_pieces(GRID, [None, b.state_dict(), None]) == 2
    assert len(pieced.pieces) == 1 and pieced.temperature_cells == 3
    theta = Posterior(a).sample(20, X, 1.0, seed=0)
    for beta, owner in [(0.1, a), (0.2, a), (0.25, b), (0.5, b), (0.99, b), (1.01, a), (2.0, a)]:
        np.testing.assert_allclose(
            _log_prob(pieced, theta, beta), _log_prob(owner, theta, beta), rtol=1e-6
        )
    # draws: every row uses its own cell's weights on the same base noise
    betas = np.array([0.1, 0.5, 2.0, 0.3])
    xs = np.tile(X, (4, 1))
    mixed = Posterior(pieced).sample(7, xs, betas, seed=3)
    for owner, rows in ((a, [0, 2]), (b, [1, 3])):
        alone = Posterior(owner).sample(7, xs, betas, seed=3)
        # float32 networks on batches of other sizes: vectorized and scalar
        # loops round differently, a few ulp per layer (the other weight set
        # would be off by O(1))
        np.testing.assert_allclose(mixed[rows], alone[rows], rtol=1.3e-6, atol=1e-5)
    # the grid check on x embeddings per weight set agrees with log_prob
    with torch.no_grad():
        t = torch.as_tensor(theta[:5])
        xt = torch.as_tensor(np.tile(X, (5, 1)))
        grid_lp = pieced.log_prob_at_betas(t, xt, torch.tensor([0.1, 0.5]))
    np.testing.assert_allclose(grid_lp[1].numpy(), _log_prob(b, theta[:5], 0.5), rtol=1e-6)
    # a model file keeps the pieces; an estimator without them loads as before
    path = save_estimator(pieced, tmp_path / "pieced.safetensors")
    loaded = load_estimator(path)
    assert loaded.temperature_cells == 3
    np.testing.assert_allclose(_log_prob(loaded, theta, 0.5), _log_prob(b, theta, 0.5), rtol=1e-6)
    assert load_estimator(save_estimator(a, tmp_path / "a.safetensors")).temperature_cells == 0
    pieced.clear_temperature_pieces()
    assert not any(k.startswith(("pieces.", "log_edges", "piece_of")) for k in pieced.state_dict())


def test_one_shared_state_makes_one_piece_and_none_makes_none(two_weight_sets):
    a, b = two_weight_sets
    state = b.state_dict()
    assert a.set_temperature_pieces(GRID, [state, state, None]) == 2
    assert a.piece_of_cell.tolist() == [1, 1, 0]
    assert a.set_temperature_pieces(GRID, [None, None, None]) == 1 and not a.pieces
    with pytest.raises(ValueError, match="increasing"):
        a.set_temperature_pieces([0.5, 0.1, 2.0], [None, state, None])
    with pytest.raises(ValueError, match="one state per temperature"):
        a.set_temperature_pieces(GRID, [None, state])


def _run_scripted(part0, part1, states=None, **config):
    """Run ``train_loop`` on a dummy module whose two validation parts follow the
    scripted curves ``part0`` and ``part1`` (one value per epoch); the total is
    their sum. ``config``: TrainConfig settings besides the loop's defaults."""
    module = nn.Linear(1, 1)
    epoch = -1

    def validation():
        nonlocal epoch
        epoch += 1
        return part0[epoch] + part1[epoch]

    return train_loop(
        module,
        lambda index, rng: module(torch.ones(index.size, 1)).pow(2).mean(),
        8,
        TrainConfig(max_epochs=len(part0), progress=False, device="cpu", **config),
        validation,
        validation_parts=(lambda: (part0[epoch], part1[epoch]), ("a", "b")),
        part_states={} if states is None else states,
    )


def test_the_loop_keeps_each_parts_best_epoch_and_waits_for_the_slowest():
    """Part 0 is best at epoch 3 and then worsens; part 1 improves until epoch 29.
    Stopping on the total would end near epoch 3 + patience; per temperature it
    runs until part 1 stalls, and each part keeps its own epoch's weights."""
    epochs, patience = 60, 5
    part0 = [1.0 - 0.1 * min(e, 3) + 0.05 * max(0, e - 3) for e in range(epochs)]
    part1 = [1.0 - 0.01 * min(e, 29) for e in range(epochs)]

    states: dict = {}
    total_only = _run_scripted(part0, part1, states, patience=patience, per_temperature=False)
    assert total_only.epochs == 3 + patience + 1 and not states
    history = _run_scripted(part0, part1, states, patience=patience, per_temperature=True)
    assert history.validation_part_best_epochs == (3, 29)
    assert history.epochs == 29 + patience + 1
    assert set(states) == {0, 1} and states[0] is not states[1]
    assert history.to_dict()["validation_part_best_epochs"] == [3, 29]


def test_each_temperature_keeps_the_lowest_epoch_of_its_smoothed_curve():
    """Part 0 has one lucky epoch (2) and a broad low stretch (15-30). With a
    smoothed curve (span 5) it keeps epoch 30, where the average of the
    stretch is lowest, not the single dip that the raw curve would pick.
    Part 1 falls until epoch 40 and then rises; training ends ``patience``
    epochs after the last smoothed improvement of any part."""
    epochs, patience = 70, 5
    part0 = [1.0] * epochs
    part0[2] = 0.5
    part0[15:31] = [0.6] * 16
    part1 = [1.0 - 0.01 * min(e, 40) + 0.02 * max(0, e - 40) for e in range(epochs)]

    def run(smoothing):
        return _run_scripted(
            part0, part1, patience=patience, smoothing=smoothing, per_temperature=True
        )

    assert run(1).validation_part_best_epochs == (2, 40)
    smoothed = run(5)
    assert smoothed.validation_part_best_epochs == (30, 40)
    # the smoothed curve of part 1 last improves at epoch 41 (it still falls one
    # epoch after the raw minimum)
    assert smoothed.epochs <= 41 + patience + 1


def test_per_temperature_needs_a_beta_distribution():
    npe = make_npe(2, 2, density=SMALL, low=[-1, -1], high=[1, 1], seed=0)
    theta = np.random.default_rng(0).uniform(-1, 1, (50, 2))
    config = TrainConfig(max_epochs=2, per_temperature=True, progress=False, device="cpu")
    with pytest.raises(ValueError, match="per_temperature needs beta to be a BetaDistribution"):
        fit(npe, theta, theta, 1.0, config=config)


def test_fit_per_temperature_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    theta = rng.uniform(-1, 1, (600, 2))
    x = theta + 0.3 * rng.normal(size=(600, 2))
    scores = -np.sum((theta - x) ** 2, axis=1) / 0.18
    scores -= scores.max()

    def log_weights_fn(beta, index):  # r^(beta - 1), normalized over the base set
        lw = (beta - 1.0) * scores[index]
        return lw - np.logaddexp.reduce((beta[0] - 1.0) * scores)

    npe = make_npe(2, 2, density=SMALL, low=[-1, -1], high=[1, 1], seed=0)
    # 60 validation pairs: every part may choose (min ESS 1), as chosen below
    config = TrainConfig(
        max_epochs=30,
        patience=5,
        per_temperature=True,
        per_temperature_min_ess=1.0,
        progress=False,
        device="cpu",
    )
    history = fit(
        npe, theta, x, LogUniformBeta(0.1, 2.0), log_weights_fn=log_weights_fn, config=config
    )
    parts = np.asarray(history.validation_parts)
    assert len(history.validation_part_best_epochs) == config.validation_betas
    for g, epoch in enumerate(history.validation_part_best_epochs):
        assert parts[epoch, g] == parts[:, g].min()
    distinct = {e for e in history.validation_part_best_epochs if e != history.best_epoch}
    assert len(npe.pieces) == len(distinct)
    assert npe.temperature_cells == (config.validation_betas if distinct else 0)
    posterior = Posterior(npe)
    draws = posterior.sample(5, [0.1, 0.2], 0.15, seed=0)
    path = posterior.save(tmp_path / "p.safetensors")
    np.testing.assert_allclose(
        Posterior.load(path).log_prob(draws, [0.1, 0.2], 0.15),
        posterior.log_prob(draws, [0.1, 0.2], 0.15),
    )


def test_a_temperature_with_few_effective_pairs_takes_its_nearest_trusted_neighbours_epoch():
    """Weights that collapse as beta falls: the small-beta parts rest on a few
    validation pairs. The history records each part's effective pairs; below
    ``per_temperature_min_ess`` a part takes the epoch (and weights) of the
    nearest part above it (``trusted_sources``); with no part above, all take
    the main weights."""
    rng = np.random.default_rng(1)
    n = 2000
    theta = rng.uniform(-1, 1, (n, 2))
    x = theta + 0.3 * rng.normal(size=(n, 2))
    scores = -np.sum((theta - x) ** 2, axis=1) / 0.18
    scores -= scores.max()

    def log_weights_fn(beta, index):  # each row normalized at its own beta
        log_z = np.logaddexp.reduce((beta[:, None] - 1.0) * scores[None, :], axis=1)
        return (beta - 1.0) * scores[index] - log_z

    def run(min_ess):
        npe = make_npe(2, 2, density=SMALL, low=[-1, -1], high=[1, 1], seed=0)
        config = TrainConfig(
            max_epochs=6,
            patience=6,
            per_temperature=True,
            per_temperature_min_ess=min_ess,
            progress=False,
            device="cpu",
        )
        history = fit(
            npe, theta, x, LogUniformBeta(0.1, 2.0), log_weights_fn=log_weights_fn, config=config
        )
        return npe, history

    _, history = run(100.0)
    ess = np.asarray(history.validation_part_ess)
    assert ess.shape == (8,) and np.all(np.diff(ess[:6]) > 0)  # fewer pairs as beta falls
    assert ess[0] < 0.2 * ess[5] and ess.max() <= 200  # 200 validation pairs
    sources = trusted_sources(ess, 100.0)
    assert sources[0] == sources[1] == sources[2] == int(np.flatnonzero(ess >= 100)[0])
    npe, none_trusted = run(1e6)
    assert none_trusted.validation_part_best_epochs == (none_trusted.best_epoch,) * 8
    assert npe.temperature_cells == 0


def test_trusted_sources_picks_the_nearest_part_with_enough_pairs():
    assert trusted_sources(np.array([5.0, 50, 150, 120, 30]), 100) == [2, 2, 2, 3, 3]
    assert trusted_sources(np.array([150.0, 5, 150]), 100) == [0, 2, 2]
    assert trusted_sources(np.array([150.0, 5, 5, 150]), 100) == [0, 0, 3, 3]
    assert trusted_sources(np.ones(3), 100) == [None, None, None]
