"""The stencil embedding: patches, symmetry, configuration, saving, shared standardization."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gbi_npe import (
    EmbeddingConfig,
    EstimatorSpec,
    SplineFlowConfig,
    StencilEmbedding,
    fit,
    load_estimator,
    make_npe,
    save_estimator,
    stencil_patches,
)

# a path of 5 states of 4 sites on a ring; term (t, k) reads k-1, k, k+1 of state t
# and site k of state t + 1
GRID = (5, 4)
OFFSETS = ((0, -1), (0, 0), (0, 1), (1, 0))
CYCLIC = (False, True)
STENCIL = EmbeddingConfig(
    kind="stencil", grid=GRID, offsets=OFFSETS, cyclic=CYCLIC, hidden_features=8, output_features=3
)
SMALL = SplineFlowConfig(num_layers=2, hidden_features=16, num_blocks=1, num_bins=4)


def test_patches_read_the_right_cells() -> None:
    index, position = stencil_patches(GRID, OFFSETS, CYCLIC)
    assert index.shape == (4 * 4, 4)  # anchors t = 0..3 (t + 1 must exist), every k
    cell = np.arange(20).reshape(GRID)
    for row, (t, k) in enumerate(np.ndindex(4, 4)):
        expected = [cell[t, (k - 1) % 4], cell[t, k], cell[t, (k + 1) % 4], cell[t + 1, k]]
        assert index[row].tolist() == expected
        assert position[row, 0] == pytest.approx(2 * t / 3 - 1)
    assert position.shape == (16, 1)  # the cyclic axis carries no position


def test_a_stencil_longer_than_the_grid_is_refused() -> None:
    with pytest.raises(ValueError, match="longer than the grid"):
        stencil_patches((2, 4), ((0, 0), (2, 0)), CYCLIC)


def test_embedding_is_invariant_to_rotating_a_cyclic_axis() -> None:
    torch.manual_seed(0)
    net = StencilEmbedding(GRID, OFFSETS, CYCLIC, 16, 2, 5)
    x = torch.randn(7, 20)
    rotated = torch.roll(x.reshape(7, *GRID), shifts=1, dims=2).reshape(7, 20)
    torch.testing.assert_close(net(rotated), net(x), rtol=1e-5, atol=1e-5)
    # but not to shifting along the path: position matters there
    shifted = torch.roll(x.reshape(7, *GRID), shifts=1, dims=1).reshape(7, 20)
    assert not torch.allclose(net(shifted), net(x), atol=1e-4)


def test_embedding_rejects_the_wrong_width() -> None:
    net = StencilEmbedding(GRID, OFFSETS, CYCLIC, 8, 1, 2)
    with pytest.raises(ValueError, match=r"shape \(b, 20\)"):
        net(torch.zeros(3, 19))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"grid": ()}, "grid of positive sizes"),
        ({"grid": (5, 0)}, "grid of positive sizes"),
        ({"offsets": ()}, "needs offsets"),
        ({"offsets": ((0,),)}, "2 entries"),
        ({"cyclic": (True,)}, "cyclic needs 2"),
        ({"grid": "ab"}, "sequences of ints"),
    ],
)
def test_bad_stencil_configs(kwargs: dict, match: str) -> None:
    settings = {"kind": "stencil", "grid": GRID, "offsets": OFFSETS, "cyclic": CYCLIC} | kwargs
    with pytest.raises(ValueError, match=match):
        EmbeddingConfig(**settings)


def test_stencil_fields_need_the_stencil_kind() -> None:
    with pytest.raises(ValueError, match="only to kind='stencil'"):
        EmbeddingConfig(kind="mlp", grid=GRID)


def test_grid_must_match_x() -> None:
    with pytest.raises(ValueError, match="20 cells but x has 21"):
        make_npe(2, 21, density=SMALL, embedding=STENCIL)


def test_spec_round_trips_through_json() -> None:
    for embedding in (STENCIL, EmbeddingConfig(kind="mlp")):
        spec = EstimatorSpec(inputs_features=2, context_features=21, embedding=embedding)
        again = EstimatorSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert again == spec


def test_trained_stencil_npe_saves_loads_and_shares_one_scale(tmp_path) -> None:
    rng = np.random.default_rng(0)
    theta = rng.uniform(-1, 1, size=(300, 2))
    # x: a random walk on the grid whose drift is theta[0] and noise exp(theta[1])
    steps = theta[:, :1, None] + np.exp(theta[:, 1:, None]) * rng.standard_normal((300, 5, 4))
    x = np.cumsum(steps, axis=1).reshape(300, 20)
    x[:5] *= 1e12  # a few blow-ups: the shared scale must stay robust
    npe = make_npe(2, 20, density=SMALL, embedding=STENCIL, low=[-1, -1], high=[1, 1], seed=0)
    fit(npe, theta, x, 1.0, config=_config())
    standardize = npe.context_encoder.x_standardize
    assert torch.all(standardize.shift == standardize.shift[0])
    assert torch.all(standardize.scale == standardize.scale[0])
    assert 0.1 < float(standardize.scale[0]) < 100.0  # not set by the blow-ups
    path = save_estimator(npe, tmp_path / "stencil.safetensors")
    loaded = load_estimator(path)  # built-in kind: no module to pass back
    context = torch.as_tensor(np.c_[x[5:25], np.ones(20)])
    inputs = torch.as_tensor(theta[5:25])
    torch.testing.assert_close(loaded.log_prob(inputs, context), npe.log_prob(inputs, context))
    assert torch.isfinite(
        npe.log_prob(torch.as_tensor(theta[:5]), torch.as_tensor(np.c_[x[:5], np.ones(5)]))
    ).all()


def _config():
    from gbi_npe import TrainConfig

    return TrainConfig(batch_size=64, max_epochs=2, patience=2, seed=0)


def test_log_prob_at_betas_embeds_x_once_and_matches_log_prob() -> None:
    rng = np.random.default_rng(3)
    theta = rng.uniform(-1, 1, size=(200, 2))
    x = rng.normal(size=(200, 20))
    npe = make_npe(2, 20, density=SMALL, embedding=STENCIL, low=[-1, -1], high=[1, 1], seed=0)
    fit(npe, theta, x, 1.0, config=_config())
    calls = []
    npe.context_encoder.embedding.register_forward_hook(lambda *_: calls.append(1))
    betas = np.array([0.2, 1.0, 1.7])
    inputs = torch.as_tensor(theta[:30])
    with torch.no_grad():
        grid = npe.log_prob_at_betas(inputs, torch.as_tensor(x[:30]), betas)
        assert grid.shape == (3, 30) and len(calls) == 1
        for g, beta in enumerate(betas):
            context = torch.as_tensor(np.c_[x[:30], np.full(30, beta)])
            torch.testing.assert_close(grid[g], npe.log_prob(inputs, context))


def _random_walks(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-1, 1, size=(n, 2))
    steps = theta[:, :1, None] + np.exp(theta[:, 1:, None]) * rng.standard_normal((n, 5, 4))
    return theta, np.cumsum(steps, axis=1).reshape(n, 20)


def _fixed_source():
    """Another network's x embedding and x standardization, to adopt."""
    from gbi_npe.transforms import Standardize

    source = StencilEmbedding(GRID, OFFSETS, CYCLIC, 8, 2, 3)
    standardize = Standardize(20)
    standardize.set(np.zeros(20), np.full(20, 2.0))
    return source, standardize


def _adopting_npe(source, standardize):
    """A stencil NPE reading x through ``source``, fixed."""
    npe = make_npe(2, 20, density=SMALL, embedding=STENCIL, low=[-1, -1], high=[1, 1], seed=0)
    npe.adopt_x_embedding(source, standardize, trainable=False)
    return npe


def _global_log_weights_fn(n: int, seed: int):
    """``log_weights_fn`` of n pairs with random scores s: weights exp(beta s), normalized."""
    log_w = np.random.default_rng(seed).normal(size=n)

    def log_weights_fn(beta: np.ndarray, index: np.ndarray) -> np.ndarray:
        a = beta[:, None] * log_w[None, :]
        return beta * log_w[index] - np.log(np.exp(a).sum(axis=1))

    return log_weights_fn


@pytest.mark.parametrize("trainable", [False, True])
def test_an_adopted_x_embedding_keeps_its_standardization_and_is_fixed_unless_trainable(
    trainable: bool,
) -> None:
    from gbi_npe.transforms import Standardize

    theta, x = _random_walks(300, 4)
    # the source: another network's trained embedding and standardization
    source = StencilEmbedding(GRID, OFFSETS, CYCLIC, 8, 2, 3)
    torch.nn.init.normal_(source.head.net[-1].weight)
    standardize = Standardize(20)
    standardize.set(np.full(20, 0.3), np.full(20, 2.5))
    npe = make_npe(2, 20, density=SMALL, embedding=STENCIL, low=[-1, -1], high=[1, 1], seed=0)
    npe.adopt_x_embedding(source, standardize, trainable=trainable)
    embedding = npe.context_encoder.embedding
    before = {k: v.clone() for k, v in embedding.state_dict().items()}
    core_before = [p.detach().clone() for p in npe.core.parameters()]
    fit(npe, theta, x, 1.0, config=_config())
    # the training's standardization of x is the adopted one, not refitted from x
    torch.testing.assert_close(npe.context_encoder.x_standardize.shift, standardize.shift)
    torch.testing.assert_close(npe.context_encoder.x_standardize.scale, standardize.scale)
    after = embedding.state_dict()
    unchanged = [torch.equal(before[k], after[k]) for k in before]
    assert all(unchanged) != trainable  # fixed: every weight; trainable: some moved
    assert all(p.requires_grad == trainable for p in embedding.parameters())
    core_after = list(npe.core.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(core_before, core_after, strict=True))
    if not trainable:  # the network reads x exactly as the source does
        u = torch.as_tensor(x[:7])
        expected = source(standardize(u).to(torch.float32))
        torch.testing.assert_close(npe.context_encoder.embed_x(u), expected)


def test_adopting_an_x_embedding_refuses_what_does_not_fit() -> None:
    from gbi_npe.transforms import Standardize

    npe = make_npe(2, 20, density=SMALL, embedding=STENCIL, low=[-1, -1], high=[1, 1], seed=0)
    wider = StencilEmbedding(GRID, OFFSETS, CYCLIC, 16, 2, 3)
    with pytest.raises(ValueError, match="does not match this estimator's"):
        npe.adopt_x_embedding(wider, Standardize(20), trainable=False)
    same = StencilEmbedding(GRID, OFFSETS, CYCLIC, 8, 2, 3)
    with pytest.raises(ValueError, match=r"shape \(20,\)"):
        npe.adopt_x_embedding(same, Standardize(19), trainable=False)
    plain = make_npe(2, 20, density=SMALL, low=[-1, -1], high=[1, 1], seed=0)
    with pytest.raises(ValueError, match="identity"):
        plain.adopt_x_embedding(same, Standardize(20), trainable=False)


def test_a_fixed_x_embedding_is_computed_once_per_training_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gbi_npe import LogUniformBeta, TrainConfig
    from gbi_npe.estimator import ConditionalDensityEstimator

    theta, x = _random_walks(400, 5)
    source, standardize = _fixed_source()
    config = TrainConfig(batch_size=32, max_epochs=3, patience=5, seed=0)
    log_weights_fn = _global_log_weights_fn(400, 0)

    def train(cache: bool) -> tuple[ConditionalDensityEstimator, list, int]:
        npe = _adopting_npe(source, standardize)
        calls = []
        npe.context_encoder.embedding.register_forward_hook(lambda *_: calls.append(1))
        if not cache:  # the embedding runs in every step, as a trained one would
            monkeypatch.setattr(ConditionalDensityEstimator, "x_embedding_fixed", False)
        beta = LogUniformBeta(0.1, 2.0)
        history = fit(npe, theta, x, beta, log_weights_fn=log_weights_fn, config=config)
        monkeypatch.undo()
        return npe, history.train_loss + history.validation_loss, len(calls)

    cached, cached_loss, cached_calls = train(cache=True)
    plain, plain_loss, plain_calls = train(cache=False)
    np.testing.assert_allclose(cached_loss, plain_loss, rtol=1e-4)  # training and validation
    context = torch.as_tensor(np.c_[x[:9], np.linspace(0.1, 2, 9)])
    torch.testing.assert_close(
        cached.log_prob(torch.as_tensor(theta[:9]), context),
        plain.log_prob(torch.as_tensor(theta[:9]), context),
        rtol=1e-4,
        atol=1e-4,
    )
    steps = 3 * int(np.ceil(0.9 * 400 / 32))  # the validation holds out a tenth or more
    assert cached_calls == 1 and steps <= plain_calls  # once for all rows, not per step or epoch
    embedded = cached.context_encoder.embed_x(torch.as_tensor(x[:9]))
    torch.testing.assert_close(
        cached.log_prob_at_betas(torch.as_tensor(theta[:9]), embedded, [0.2, 1.5], x_embedded=True),
        cached.log_prob_at_betas(torch.as_tensor(theta[:9]), torch.as_tensor(x[:9]), [0.2, 1.5]),
    )
    torch.testing.assert_close(
        cached.log_prob_embedded(
            torch.as_tensor(theta[:9]), torch.cat([embedded.double(), context[:, -1:]], dim=1)
        ),
        cached.log_prob(torch.as_tensor(theta[:9]), context),
    )


def test_a_training_with_a_fixed_embedding_resumes_to_the_uninterrupted_result(tmp_path) -> None:
    from gbi_npe import LogUniformBeta, TrainConfig

    theta, x = _random_walks(300, 6)
    source, standardize = _fixed_source()
    config = TrainConfig(batch_size=32, max_epochs=4, patience=5, seed=0)
    log_weights_fn = _global_log_weights_fn(300, 1)

    class Interrupted(Exception):
        pass

    calls = 0

    def interrupted_fn(beta: np.ndarray, index: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        if calls == 40:  # in the fourth epoch (9 batches an epoch, a few calls up front)
            raise Interrupted
        return log_weights_fn(beta, index)

    def train(weights_fn, **snapshot):
        npe = _adopting_npe(source, standardize)  # adopted again on resuming
        beta = LogUniformBeta(0.1, 2.0)
        history = fit(npe, theta, x, beta, log_weights_fn=weights_fn, config=config, **snapshot)
        return npe, history

    whole, h_whole = train(log_weights_fn)
    path = tmp_path / "npe.pt"
    with pytest.raises(Interrupted):
        train(interrupted_fn, snapshot=path, snapshot_seconds=0)
    assert torch.load(path, weights_only=True)["loop"]["epoch"] >= 1
    resumed, h_resumed = train(log_weights_fn, snapshot=path, snapshot_seconds=0)
    assert h_resumed.train_loss == h_whole.train_loss
    assert h_resumed.validation_loss == h_whole.validation_loss
    for name, tensor in whole.state_dict().items():
        torch.testing.assert_close(
            tensor, resumed.state_dict()[name], rtol=0, atol=0, equal_nan=True, msg=name
        )


def test_fixed_rows_with_a_fixed_x_embedding_embed_x_once_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gbi_npe import TrainConfig
    from gbi_npe.estimator import ConditionalDensityEstimator

    theta, x = _random_walks(300, 7)
    beta = np.random.default_rng(2).choice([0.2, 0.7, 1.4], size=300)  # Route A's rows
    source, standardize = _fixed_source()
    config = TrainConfig(batch_size=32, max_epochs=3, patience=5, seed=0)

    def train(cache: bool):
        npe = _adopting_npe(source, standardize)
        calls = []
        npe.context_encoder.embedding.register_forward_hook(lambda *_: calls.append(1))
        if not cache:
            monkeypatch.setattr(ConditionalDensityEstimator, "x_embedding_fixed", False)
        history = fit(npe, theta, x, beta, config=config)
        monkeypatch.undo()
        return history.train_loss + history.validation_loss, len(calls)

    cached_loss, cached_calls = train(cache=True)
    plain_loss, plain_calls = train(cache=False)
    np.testing.assert_allclose(cached_loss, plain_loss, rtol=1e-4)
    assert cached_calls == 1 and plain_calls > 3 * 8  # once, not in every step and epoch
