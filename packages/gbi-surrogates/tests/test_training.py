"""Training in learning-rate stages on gbi-npe's train_loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gbi_surrogates import History, TrainConfig
from gbi_surrogates._training import run_in_stages, train_in_stages


def _problem(seed: int = 0):
    """Linear regression y = X w + noise with a validation split."""
    rng = np.random.default_rng(seed)
    features = torch.as_tensor(rng.normal(size=(400, 3)), dtype=torch.float32)
    target = features @ torch.tensor([1.0, -2.0, 0.5]) + 0.3 * torch.as_tensor(
        rng.normal(size=400), dtype=torch.float32
    )
    module = torch.nn.Linear(3, 1)

    def batch_loss(index: np.ndarray, _rng: np.random.Generator) -> torch.Tensor:
        rows = torch.as_tensor(index)
        return ((module(features[rows]).squeeze(-1) - target[rows]) ** 2).mean()

    def validation_loss() -> float:
        with torch.no_grad():
            return float(((module(features[300:]).squeeze(-1) - target[300:]) ** 2).mean())

    return module, batch_loss, validation_loss


def _run(decay, max_epochs=30, patience=3, learning_rate=0.05, validate=True):
    module, batch_loss, validation_loss = _problem()
    config = TrainConfig(
        max_epochs=max_epochs,
        patience=patience,
        batch_size=32,
        learning_rate=learning_rate,
        progress=False,
    )
    history = train_in_stages(
        module,
        batch_loss,
        300,
        config,
        validation_loss if validate else None,
        decay=decay,
        rng=np.random.default_rng(0),
        n_validation=100 if validate else 0,
        description="test",
    )
    return module, history, validation_loss


def test_stages_share_the_epoch_budget_and_keep_the_best_weights() -> None:
    _, history, validation_loss = _run((1.0, 0.1, 0.01))
    assert history.epochs <= 30
    assert len(history.validation_loss) == history.epochs
    assert history.validation_loss[history.best_epoch] == min(history.validation_loss)
    assert validation_loss() == min(history.validation_loss)


def test_a_single_stage_is_one_train_loop_run() -> None:
    _, history, _ = _run((1.0,), max_epochs=5, patience=10)
    assert history.epochs == 5 and not history.stopped_early


def test_without_validation_the_epochs_are_split_evenly() -> None:
    _, history, _ = _run((1.0, 0.1, 0.01), max_epochs=10, validate=False)
    assert history.epochs == 10 and history.best_epoch is None


def _history(validation_loss: tuple[float, ...], best_epoch: int | None) -> History:
    n = len(validation_loss)
    return History(
        train_loss=(1.0,) * n,
        validation_loss=validation_loss,
        best_epoch=best_epoch,
        stopped_early=True,
        seconds=0.5,
        epoch_seconds=(0.1,) * n,
        device="cpu",
        n_train=10,
        n_validation=2,
    )


def test_stages_lower_the_rate_and_pass_unused_epochs_on() -> None:
    module = torch.nn.Linear(1, 1, bias=False)
    calls = []
    # stage 1 stops after 4 epochs (best 0.5), stage 2 is worse (0.7): rolled back,
    # stage 3 improves (0.4).
    outcomes = iter([((0.9, 0.5, 0.6, 0.6), 1), ((0.8, 0.7), 1), ((0.45, 0.4, 0.41), 1)])

    def run_stage(config: TrainConfig, label: str, _snapshot: dict) -> History:
        calls.append((config.learning_rate, config.max_epochs, label))
        losses, best = next(outcomes)
        with torch.no_grad():
            module.weight.fill_(losses[best])  # the weights a stage ends with
        return _history(losses, best)

    config = TrainConfig(max_epochs=30, learning_rate=1e-3, progress=False)
    history = run_in_stages(module, run_stage, config, decay=(1.0, 0.1, 0.01), description="t")
    assert [c[0] for c in calls] == pytest.approx([1e-3, 1e-4, 1e-5])
    assert [c[1] for c in calls] == [10, 13, 24]  # ceil(30/3), ceil(26/2), 26 - 2
    assert calls[0][2] == "t [1/3]"
    assert history.validation_loss == (0.9, 0.5, 0.6, 0.6, 0.8, 0.7, 0.45, 0.4, 0.41)
    assert history.best_epoch == 7 and history.epochs == 9
    assert history.seconds == pytest.approx(1.5) and len(history.epoch_seconds) == 9
    assert module.weight.item() == pytest.approx(0.4)


def test_a_worse_last_stage_is_rolled_back() -> None:
    module = torch.nn.Linear(1, 1, bias=False)
    outcomes = iter([((0.5, 0.3), 1), ((0.6, 0.35), 1)])

    def run_stage(config: TrainConfig, label: str, _snapshot: dict) -> History:
        losses, best = next(outcomes)
        with torch.no_grad():
            module.weight.fill_(losses[best])
        return _history(losses, best)

    config = TrainConfig(max_epochs=10, progress=False)
    history = run_in_stages(module, run_stage, config, decay=(1.0, 0.1), description="t")
    assert history.best_epoch == 1 and module.weight.item() == pytest.approx(0.3)


def test_merged_stages_concatenate_every_per_epoch_field_and_nothing_else() -> None:
    from gbi_npe.loop import History
    from gbi_surrogates._training import _merge

    def stage(epochs: int, seconds: float) -> History:
        return History(
            train_loss=(1.0,) * epochs,
            validation_loss=(2.0,) * epochs,
            best_epoch=0,
            stopped_early=True,
            seconds=seconds,
            epoch_seconds=(0.1,) * epochs,
            device="cpu",
            n_train=10,
            n_validation=2,
            learning_rates=(1e-3,) * epochs,
            validation_parts=((2.0, 2.0),) * epochs,
            validation_part_labels=("beta=0.5", "beta=1"),
        )

    merged = _merge([stage(3, 1.0), stage(2, 0.5)], best_epoch=4)
    for name in History.per_epoch_fields():
        assert len(getattr(merged, name)) == 5, name
    assert merged.validation_part_labels == ("beta=0.5", "beta=1")
    assert merged.best_epoch == 4 and merged.seconds == 1.5 and merged.n_train == 10


# -- resumable staged training ------------------------------------------------------


class Interrupted(Exception):
    """Stands in for a kill in the middle of an epoch."""


def _module_of(model) -> torch.nn.Module:
    return model.estimator if hasattr(model, "estimator") else model.network


def _fit(kind: str, theta, x, **kwargs):
    from gbi_npe import SplineFlowConfig
    from gbi_surrogates import NLEConfig, NREConfig, ScoreConfig, fit_nle, fit_nre, fit_score

    train = TrainConfig(max_epochs=12, patience=2, batch_size=64, progress=False)
    if kind == "nre":
        return fit_nre(theta, x, NREConfig(hidden_features=16), train, **kwargs)
    if kind == "nle":
        flow = SplineFlowConfig(num_layers=2, hidden_features=16, num_blocks=1, num_bins=4)
        return fit_nle(theta, x, NLEConfig(density=flow), train, **kwargs)
    config = ScoreConfig(hidden_features=16, embedding_features=16, num_sigmas=4)
    return fit_score(theta, x, config, train, **kwargs)


@pytest.mark.parametrize("kind", ["nre", "nle", "score"])
def test_an_interrupted_surrogate_training_resumes_to_the_same_model(
    kind: str, tmp_path, monkeypatch
) -> None:
    import gbi_npe.loop

    rng = np.random.default_rng(1)
    theta = rng.uniform(-1, 1, (300, 2))
    x = theta + 0.3 * rng.normal(size=(300, 2))
    whole, h_whole = _fit(kind, theta, x)
    first_stage = h_whole.learning_rates.count(h_whole.learning_rates[0])
    assert first_stage < h_whole.epochs  # the interruption below falls in a later stage
    steps_per_epoch = -(-h_whole.n_train // 64)
    stop_at = (first_stage + 1) * steps_per_epoch + 2  # in the later stage's second epoch
    original, steps = gbi_npe.loop._adam, []

    def interrupting_adam(parameters, learning_rate):
        optimizer = original(parameters, learning_rate)
        step = optimizer.step

        def counted(*args, **kwargs):
            steps.append(1)
            if len(steps) == stop_at:
                raise Interrupted
            return step(*args, **kwargs)

        optimizer.step = counted
        return optimizer

    snapshot = tmp_path / f"{kind}.pt"
    monkeypatch.setattr(gbi_npe.loop, "_adam", interrupting_adam)
    with pytest.raises(Interrupted):
        _fit(kind, theta, x, snapshot=snapshot, snapshot_seconds=0)
    monkeypatch.setattr(gbi_npe.loop, "_adam", original)
    assert snapshot.is_file()  # the finished first stage
    assert snapshot.with_name(f"{kind}.pt.stage1").is_file()  # and the second's first epoch
    resumed, h_resumed = _fit(kind, theta, x, snapshot=snapshot, snapshot_seconds=0)
    a, b = _module_of(whole).state_dict(), _module_of(resumed).state_dict()
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, rtol=0, atol=0, equal_nan=True, msg=name)
    for field in ("train_loss", "validation_loss", "learning_rates"):
        assert getattr(h_resumed, field) == getattr(h_whole, field), field
    assert h_resumed.best_epoch == h_whole.best_epoch
    assert list(tmp_path.iterdir()) == []  # every snapshot file removed at the end


def test_a_snapshot_at_a_stage_end_resumes_and_one_of_other_data_is_refused(
    tmp_path, monkeypatch
) -> None:
    from gbi_npe import SnapshotMismatch

    rng = np.random.default_rng(1)
    theta = rng.uniform(-1, 1, (300, 2))
    x = theta + 0.3 * rng.normal(size=(300, 2))
    snapshot = tmp_path / "nre.pt"
    whole, history = _fit("nre", theta, x)
    first_stage = history.learning_rates.count(history.learning_rates[0])
    # a snapshot at the end of the first stage, by a run stopped right after it
    import gbi_surrogates._training as training

    saved = training.save_snapshot

    def save_then_stop(path, payload):
        saved(path, payload)
        raise Interrupted

    monkeypatch.setattr(training, "save_snapshot", save_then_stop)
    with pytest.raises(Interrupted):
        _fit("nre", theta, x, snapshot=snapshot, snapshot_seconds=3600)
    monkeypatch.setattr(training, "save_snapshot", saved)
    stored = torch.load(snapshot, weights_only=True)
    assert sum(len(h["train_loss"]) for h in stored["histories"]) == first_stage
    with pytest.raises(SnapshotMismatch, match="data"):
        _fit("nre", theta, x + 1.0, snapshot=snapshot)
    with pytest.raises(ValueError, match="snapshot_seconds"):
        _fit("nre", theta, x, snapshot=snapshot, snapshot_seconds=-1)
    # the same data: the later stages run from the stored weights and random stream
    resumed, h_resumed = _fit("nre", theta, x, snapshot=snapshot)
    assert h_resumed.train_loss == history.train_loss
    a, b = whole.network.state_dict(), resumed.network.state_dict()
    for name, tensor in a.items():
        torch.testing.assert_close(b[name], tensor, rtol=0, atol=0, msg=name)
