"""``TrainConfig.compile``: the loss through torch.compile, and the eager fallback."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import gbi_npe.compiling as compiling
from gbi_npe import (
    EmbeddingConfig,
    LogUniformBeta,
    MDNConfig,
    SplineFlowConfig,
    TrainConfig,
    fit,
    fit_conditional,
    make_conditional_estimator,
    make_npe,
)
from gbi_npe.loop import _fingerprint

TINY_FLOW = SplineFlowConfig(num_layers=1, hidden_features=8, num_blocks=1, num_bins=4)
# 180 training rows in batches of 60: one compiled training graph (no smaller last batch)
CONFIG = TrainConfig(max_epochs=2, batch_size=60, progress=False, validation_betas=2)


def data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-2.0, 2.0, (n, 2))
    return theta, theta + 0.3 * rng.normal(size=(n, 2))


def log_weights_fn(beta: np.ndarray, index: np.ndarray) -> np.ndarray:
    scores = np.cos(np.arange(200.0))
    log_w = (beta[:, None] - 1.0) * scores[None, :]
    log_z = np.logaddexp.reduce(log_w, axis=1)
    return log_w[np.arange(index.size), index] - log_z


def fitted_npe(config: TrainConfig, density=TINY_FLOW):
    theta, x = data()
    npe = make_npe(2, 2, density=density, low=[-2.0, -2.0], high=[2.0, 2.0])
    history = fit(
        npe, theta, x, LogUniformBeta(0.5, 2.0), log_weights_fn=log_weights_fn, config=config
    )
    return npe, history


def _one_graph(fn, *args) -> None:
    """``fn`` traces as one graph: no host synchronization or Python branch on values."""
    explained = torch._dynamo.explain(fn)(*args)
    reasons = [str(r.reason) for r in explained.break_reasons]
    assert explained.graph_break_count == 0, reasons
    assert explained.graph_count == 1


@pytest.mark.parametrize(
    ("density", "embedding"),
    [
        (TINY_FLOW, None),
        (SplineFlowConfig(kind="autoregressive", num_layers=1, hidden_features=8), None),
        (MDNConfig(num_components=2, hidden_features=8), EmbeddingConfig(kind="mlp")),
    ],
)
def test_the_training_loss_traces_as_one_graph(density, embedding) -> None:
    # the box's inside test and the standardization's tail shortcut read
    # tensor values in eager mode; a compiled loss must not (a graph break per
    # step costs most of what compiling gains)
    theta, x = data(64)
    npe = make_npe(2, 2, density=density, embedding=embedding, low=[-2.0] * 2, high=[2.0] * 2)
    npe.set_standardization(theta, x, None, np.linspace(0.5, 2.0, 64))
    npe.train()
    context = torch.as_tensor(np.c_[x, np.linspace(0.5, 2.0, 64)], dtype=torch.float32)
    _one_graph(lambda t, c: npe.log_prob(t, c).mean(), torch.as_tensor(theta), context)


def test_compressed_tails_trace_as_one_graph() -> None:
    # an NLE on heavy-tailed x: the standardization compresses tails
    rng = np.random.default_rng(1)
    x = rng.standard_cauchy((64, 2))
    theta = rng.uniform(-1.0, 1.0, (64, 2))
    nle = make_conditional_estimator(2, 2, density=TINY_FLOW)
    nle.set_standardization(x, theta, None, None)
    assert nle.input_transform.standardize.has_tails
    args = (torch.as_tensor(x), torch.as_tensor(theta, dtype=torch.float32))
    _one_graph(lambda a, b: nle.log_prob(a, b), *args)


def test_a_compiled_fit_matches_the_eager_fit_to_round_off() -> None:
    eager, eager_history = fitted_npe(CONFIG)
    with warnings.catch_warnings():
        warnings.simplefilter("error", compiling.CompileFallbackWarning)
        compiled, compiled_history = fitted_npe(
            TrainConfig(**{**CONFIG.to_dict(), "compile": True})
        )
    # 6 steps of float32 arithmetic in another order: agreement to ~1e-6
    # relative per step, far below the ~1e-2 a step of training moves the loss
    np.testing.assert_allclose(compiled_history.train_loss, eager_history.train_loss, rtol=1e-4)
    np.testing.assert_allclose(
        compiled_history.validation_loss, eager_history.validation_loss, rtol=1e-4
    )
    for a, b in zip(compiled.parameters(), eager.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def _failing_compile(fn, **kwargs):
    def compiled(*args, **kw):
        raise RuntimeError("BackendCompilerFailed: no working C++ compiler\nmore detail")

    return compiled


def test_a_failing_compile_warns_and_trains_eagerly_to_the_same_result(monkeypatch) -> None:
    eager, eager_history = fitted_npe(CONFIG)
    monkeypatch.setattr(compiling.torch, "compile", _failing_compile)
    with pytest.warns(compiling.CompileFallbackWarning, match="no working C\\+\\+ compiler"):
        fallback, history = fitted_npe(TrainConfig(**{**CONFIG.to_dict(), "compile": True}))
    assert history.train_loss == eager_history.train_loss
    for a, b in zip(fallback.parameters(), eager.parameters(), strict=True):
        assert torch.equal(a, b)


def test_fit_conditional_compiles_its_loss_too(monkeypatch) -> None:
    # the NLE's training (fixed rows, WeightedNLL): the loss goes through torch.compile
    compiled = []

    def spy(fn, **options):
        compiled.append(fn.__name__)
        return fn

    monkeypatch.setattr(compiling.torch, "compile", spy)
    theta, x = data()
    nle = make_conditional_estimator(2, 2, density=TINY_FLOW)
    config = TrainConfig(**{**CONFIG.to_dict(), "compile": True})
    fit_conditional(nle, x, theta, config=config)
    assert compiled == ["log_prob"]


def test_an_error_of_the_function_itself_is_raised_not_hidden(monkeypatch) -> None:
    monkeypatch.setattr(compiling.torch, "compile", _failing_compile)

    def bad(a: torch.Tensor) -> torch.Tensor:
        raise ValueError("inputs must have shape (b, 2)")

    wrapped = compiling.maybe_compiled(bad, True, "a loss", torch.device("cpu"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"shape \(b, 2\)"):
            wrapped(torch.zeros(3))


def test_compile_off_is_the_function_itself() -> None:
    def fn(a):
        return a

    assert compiling.maybe_compiled(fn, False, "x", torch.device("cpu")) is fn


def test_only_the_first_batch_size_runs_compiled(monkeypatch) -> None:
    calls = []

    def fake_compile(fn, **options):
        calls.append(options)
        return lambda a: ("compiled", a.shape[0])

    monkeypatch.setattr(compiling.torch, "compile", fake_compile)
    wrapped = compiling.Compiled(lambda a: ("eager", a.shape[0]), "a loss", torch.device("cpu"))
    assert calls == [{"dynamic": False, "options": {"cpp_wrapper": True}}]
    # full batches compiled; an epoch's smaller last batch eager (no second compilation)
    outputs = [wrapped(torch.zeros(n, 2)) for n in (64, 64, 52, 64)]
    assert outputs == [("compiled", 64), ("compiled", 64), ("eager", 52), ("compiled", 64)]
    assert wrapped.active


def test_compile_is_validated_and_not_part_of_a_snapshot_identity() -> None:
    with pytest.raises(ValueError, match="compile must be a bool"):
        TrainConfig(compile="yes")
    npe = make_npe(2, 2, density=TINY_FLOW)
    plain = _fingerprint(npe, CONFIG, "data")
    assert plain == _fingerprint(npe, TrainConfig(**{**CONFIG.to_dict(), "compile": True}), "data")
