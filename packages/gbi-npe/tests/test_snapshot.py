"""Resumable training: an interrupted fit continues from its snapshot to the same weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gbi_npe import (
    LogUniformBeta,
    Posterior,
    SnapshotMismatch,
    SplineFlowConfig,
    TrainConfig,
    fit,
    fit_conditional,
    make_conditional_estimator,
    make_npe,
)

SMALL_FLOW = SplineFlowConfig(num_layers=2, hidden_features=16, num_blocks=1, num_bins=4)
# dropout draws from torch's generator, the batches and betas from numpy's
DROPOUT_FLOW = SplineFlowConfig(
    num_layers=2, hidden_features=16, num_blocks=1, num_bins=4, dropout=0.1
)
# weight averaging, per-temperature stopping and plateau decay: every piece of
# state the loop carries from one epoch to the next
CONTINUOUS = TrainConfig(
    max_epochs=6,
    batch_size=64,
    ema_decay=0.99,
    per_temperature=True,
    per_temperature_min_ess=1.0,
    lr_patience=1,
    patience=50,
    validation_betas=3,
    progress=False,
)
COSINE = TrainConfig(max_epochs=5, batch_size=64, lr_schedule="cosine", progress=False)


def base_pairs(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-2.0, 2.0, (n, 2))
    return theta, theta + 0.3 * rng.normal(size=(n, 2))


SCORES = np.cos(np.arange(300.0))


def log_weights_fn(beta: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Deterministic SNIS-like weights ``r^(beta - 1)``, normalized over the 300 base pairs."""
    log_w = (beta[:, None] - 1.0) * SCORES[None, :]
    log_z = np.logaddexp.reduce(log_w, axis=1)
    return log_w[np.arange(index.size), index] - log_z


class Interrupted(Exception):
    """Stands in for a kill in the middle of an epoch."""


def interrupting(fn, calls: int):
    """``fn``, but raising ``Interrupted`` on its ``calls``-th call (from 1)."""
    count = 0

    def wrapped(*args):
        nonlocal count
        count += 1
        if count == calls:
            raise Interrupted
        return fn(*args)

    return wrapped


def npe():
    return make_npe(2, 2, density=DROPOUT_FLOW, low=[-2.0, -2.0], high=[2.0, 2.0], seed=3)


def fit_npe(estimator, weights_fn, config=CONTINUOUS, data=None, **kwargs):
    theta, x = base_pairs() if data is None else data
    return fit(
        estimator,
        theta,
        x,
        LogUniformBeta(0.1, 2.0),
        log_weights_fn=weights_fn,
        config=config,
        **kwargs,
    )


def assert_same_training(a, ha, b, hb) -> None:
    for name, tensor in a.state_dict().items():
        other = b.state_dict()[name]  # bit for bit (NaN marks an unset bound)
        torch.testing.assert_close(tensor, other, rtol=0, atol=0, equal_nan=True, msg=name)
    for field in ("train_loss", "validation_loss", "learning_rates", "validation_parts"):
        assert getattr(ha, field) == getattr(hb, field), field
    assert ha.best_epoch == hb.best_epoch
    assert ha.validation_part_best_epochs == hb.validation_part_best_epochs
    assert len(hb.epoch_seconds) == hb.epochs


# 5 batches per epoch (270 training pairs, 64 a batch), one call each, after one
# call per grid temperature up front: the 3 + 5 * 3 + 2 = 20th call falls in the
# fourth epoch
INTERRUPT_AT = 20


def fit_until_interrupted(snapshot, seconds: float) -> None:
    """A fit with snapshots every ``seconds``, killed in its fourth epoch."""
    with pytest.raises(Interrupted):
        fit_npe(
            npe(),
            interrupting(log_weights_fn, INTERRUPT_AT),
            snapshot=snapshot,
            snapshot_seconds=seconds,
        )


def test_an_interrupted_fit_resumes_to_the_uninterrupted_result(tmp_path):
    whole = npe()
    h_whole = fit_npe(whole, log_weights_fn)
    snapshot = tmp_path / "npe.pt"
    fit_until_interrupted(snapshot, seconds=0)
    assert snapshot.is_file()
    stored = torch.load(snapshot, weights_only=True)
    assert stored["loop"]["epoch"] == 3  # three finished epochs were kept
    # a fresh process: a new (untrained) network, the same call
    resumed = npe()
    h_resumed = fit_npe(resumed, log_weights_fn, snapshot=snapshot, snapshot_seconds=0)
    assert_same_training(whole, h_whole, resumed, h_resumed)
    # the wall time counts the epochs of the interrupted call too
    assert h_resumed.seconds >= sum(h_resumed.epoch_seconds)
    assert not snapshot.exists()  # removed once training ended
    x = np.zeros(2)
    for beta in (0.1, 1.0, 2.0):  # the temperature pieces agree too
        a = Posterior(whole).sample_and_log_prob(50, x, beta, seed=0)
        b = Posterior(resumed).sample_and_log_prob(50, x, beta, seed=0)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_fixed_rows_with_a_cosine_budget_resume_exactly(tmp_path):
    theta, x = base_pairs(300, seed=1)
    config = COSINE

    def estimator():
        return make_conditional_estimator(2, 2, density=SMALL_FLOW, seed=5)

    whole = estimator()
    h_whole = fit_conditional(whole, x, theta, config=config)
    snapshot = tmp_path / "nle.pt"
    killed = estimator()
    original = killed.log_prob
    killed.log_prob = interrupting(original, 10)  # in the third epoch (4 batches + validation)
    with pytest.raises(Interrupted):
        fit_conditional(killed, x, theta, config=config, snapshot=snapshot, snapshot_seconds=0)
    resumed = estimator()
    h_resumed = fit_conditional(resumed, x, theta, config=config, snapshot=str(snapshot))
    assert_same_training(whole, h_whole, resumed, h_resumed)
    assert h_resumed.learning_rates == h_whole.learning_rates


def test_snapshots_are_written_no_more_often_than_asked(tmp_path):
    snapshot = tmp_path / "npe.pt"
    fit_until_interrupted(snapshot, seconds=3600)
    assert not snapshot.exists()


def test_another_trainings_snapshot_is_refused(tmp_path):
    snapshot = tmp_path / "npe.pt"
    fit_until_interrupted(snapshot, seconds=0)
    other_data = base_pairs(300, seed=9)
    with pytest.raises(SnapshotMismatch, match="the training data"):
        fit_npe(npe(), log_weights_fn, data=other_data, snapshot=snapshot)
    other_settings = TrainConfig(**(CONTINUOUS.to_dict() | {"learning_rate": 5e-4}))
    with pytest.raises(SnapshotMismatch, match="the training settings"):
        fit_npe(npe(), log_weights_fn, config=other_settings, snapshot=snapshot)
    wider = make_npe(
        2,
        2,
        density=SplineFlowConfig(num_layers=2, hidden_features=32, num_blocks=1, num_bins=4),
        low=[-2.0, -2.0],
        high=[2.0, 2.0],
        seed=3,
    )
    with pytest.raises(SnapshotMismatch, match="the network"):
        fit_npe(wider, log_weights_fn, snapshot=snapshot)
    assert snapshot.is_file()  # a refused snapshot is left for the user to judge
    snapshot.write_bytes(b"not a snapshot")
    with pytest.raises(SnapshotMismatch, match="not a training snapshot"):
        fit_npe(npe(), log_weights_fn, snapshot=snapshot)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"snapshot": 3}, "snapshot must be a file path"),
        ({"snapshot": "s.pt", "snapshot_seconds": -1.0}, "snapshot_seconds"),
        ({"snapshot": "s.pt", "snapshot_seconds": True}, "snapshot_seconds"),
        ({"snapshot": "s.pt", "snapshot_seconds": "60"}, "snapshot_seconds"),
    ],
)
def test_bad_snapshot_arguments_are_refused(tmp_path, monkeypatch, kwargs, match):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=match):
        fit_npe(npe(), log_weights_fn, **kwargs)


def test_a_snapshot_from_a_gpu_run_resumes_on_a_cpu(tmp_path):
    """A GPU run stores its CUDA generator's state too; on a CPU there is none to restore."""
    whole = npe()
    h_whole = fit_npe(whole, log_weights_fn)
    snapshot = tmp_path / "npe.pt"
    fit_until_interrupted(snapshot, seconds=0)
    stored = torch.load(snapshot, weights_only=True)
    stored["cuda_rng"] = [torch.get_rng_state()]  # as a one-GPU run would have written it
    torch.save(stored, snapshot)
    resumed = npe()
    h_resumed = fit_npe(resumed, log_weights_fn, snapshot=snapshot)
    assert_same_training(whole, h_whole, resumed, h_resumed)
