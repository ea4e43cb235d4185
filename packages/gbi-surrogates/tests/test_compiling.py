"""``TrainConfig.compile`` for the NRE: NRE-A's in-batch loss, the same numbers, one graph."""

from __future__ import annotations

import numpy as np
import torch

import gbi_npe.compiling as compiling
from gbi_surrogates import NREConfig, TrainConfig, fit_nre
from gbi_surrogates.nre import RatioNetwork, _nre_a_in_batch_loss, _RatioLoss


def pairs(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-1.0, 1.0, (n, 2))
    return theta, theta + 0.2 * rng.normal(size=(n, 2))


def standardized_loss(compile: bool) -> _RatioLoss:
    theta, x = pairs()
    config = NREConfig(hidden_features=16, num_negatives=3)
    torch.manual_seed(0)
    network = RatioNetwork(2, 2, config)
    network.standardize.set_from(theta, x, tails=True, shared_x=False)
    u_theta, u_x = network.standardize(torch.as_tensor(theta), torch.as_tensor(x))
    return _RatioLoss(network, u_theta, u_x, config, compile)


def test_the_in_batch_loss_is_the_loss_of_the_same_negatives(monkeypatch) -> None:
    # run the compile path's arithmetic eagerly: the batch positions of the
    # negatives must name the same x as draw_negatives' indices
    monkeypatch.setattr(compiling.torch, "compile", lambda fn, **options: fn)
    plain, fast = standardized_loss(False), standardized_loss(True)
    assert plain._in_batch is None and fast._in_batch is not None
    index = np.random.default_rng(1).permutation(120)[:40]
    for seed in range(3):
        expected = plain.loss(index, plain.draw_negatives(index, np.random.default_rng(seed)))
        got = fast.batch_loss(index, np.random.default_rng(seed))
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)


def test_the_in_batch_loss_traces_as_one_graph() -> None:
    loss = standardized_loss(False)
    rows = torch.arange(40)
    partners = torch.as_tensor(np.stack([np.roll(np.arange(40), s) for s in (1, 2, 3)], axis=1))
    explained = torch._dynamo.explain(_nre_a_in_batch_loss)(
        loss.network, loss.u_theta[rows], loss.u_x[rows], partners
    )
    assert explained.graph_break_count == 0, [str(r.reason) for r in explained.break_reasons]
    assert explained.graph_count == 1


def test_fit_nre_routes_nre_a_batches_through_torch_compile(monkeypatch) -> None:
    compiled = []

    def spy(fn, **options):
        compiled.append(fn.func.__name__)
        return fn

    monkeypatch.setattr(compiling.torch, "compile", spy)
    theta, x = pairs()
    train = TrainConfig(max_epochs=2, batch_size=32, progress=False, compile=True)
    fit_nre(theta, x, NREConfig(hidden_features=16), train)
    assert compiled == ["_nre_a_in_batch_loss"]
    compiled.clear()
    fit_nre(theta, x, NREConfig(hidden_features=16, variant="nre_b"), train)
    assert compiled == []  # NRE-B's contrast set spans the data set: eager


def test_the_nre_compresses_x_from_its_embeddings_tail_threshold() -> None:
    """x's heavy tail starts where the x embedding says (``EmbeddingConfig.tail_threshold``);
    theta's keeps the library's threshold."""
    from gbi_npe import EmbeddingConfig

    rng = np.random.default_rng(0)
    theta = rng.uniform(-1.0, 1.0, (200, 2))
    x = theta + 0.2 * rng.normal(size=(200, 2))
    x[:10, 1] = 10.0 ** rng.uniform(20, 150, 10)  # a few blown-up simulations
    tails = {}
    for threshold in (None, 50.0):
        config = NREConfig(hidden_features=8, embedding=EmbeddingConfig(tail_threshold=threshold))
        nre, _ = fit_nre(theta, x, config, TrainConfig(max_epochs=1, batch_size=64, seed=0))
        tails[threshold] = nre.network.standardize.x.tail.tolist()
        assert not np.isfinite(nre.network.standardize.theta.tail.numpy()).any()
    assert tails[None] == [np.inf, 3.0] and tails[50.0] == [np.inf, 50.0]
