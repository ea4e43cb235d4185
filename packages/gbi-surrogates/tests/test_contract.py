"""One contract, every surrogate (NLE, NRE, joint score): shapes, broadcasting,
chunking, determinism, save/load, History, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import gbi_npe
from gbi_surrogates import (
    NLE,
    NRE,
    History,
    JointScoreModel,
    ModelFileError,
    load_surrogate,
    surrogate_kind,
)

CLASSES = {"nle": NLE, "nre": NRE, "score": JointScoreModel}


def _points(n: int = 37, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 2)) * [2.0, 0.5], rng.normal(size=(n, 2)) * [2.0, 4.0]


def test_outputs_are_float64_numpy_of_the_documented_shape(tiny, evaluate_fn) -> None:
    theta, x = _points()
    out = evaluate_fn(tiny, theta, x)
    expected = (37, 4) if tiny.kind == "score" else (37,)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == expected
    assert np.isfinite(out).all()
    assert (tiny.theta_features, tiny.x_features) == (2, 2)


def test_one_x_against_many_thetas_and_the_reverse(tiny, evaluate_fn) -> None:
    theta, x = _points()
    one_x = evaluate_fn(tiny, theta, x[0])
    np.testing.assert_allclose(one_x, evaluate_fn(tiny, theta, np.repeat(x[:1], 37, 0)))
    one_theta = evaluate_fn(tiny, theta[:1], x)
    np.testing.assert_allclose(one_theta, evaluate_fn(tiny, np.repeat(theta[:1], 37, 0), x))


def test_chunk_size_does_not_change_the_result(tiny, evaluate_fn) -> None:
    theta, x = _points(n=100)
    whole = evaluate_fn(tiny, theta, x)
    chunked = evaluate_fn(tiny, theta, x, chunk_size=7)
    # The networks run in float32, and matrix kernels pick their blocking (and so
    # their summation order) by batch size: chunks agree to float32 rounding
    # (eps 1.2e-7) accumulated over a few layers, not bit for bit.
    np.testing.assert_allclose(chunked, whole, rtol=2e-5, atol=1e-6)


def test_save_load_round_trip_is_exact(tiny, evaluate_fn, tmp_path) -> None:
    path = tiny.save(tmp_path / "model.safetensors", metadata={"task": "gaussian"})
    assert surrogate_kind(path) == tiny.kind
    for loaded in (CLASSES[tiny.kind].load(path), load_surrogate(path)):
        assert type(loaded) is type(tiny) and loaded.config == tiny.config
        theta, x = _points()
        np.testing.assert_array_equal(evaluate_fn(loaded, theta, x), evaluate_fn(tiny, theta, x))


def test_an_nle_file_is_a_gbi_npe_estimator_file(tiny_models, tmp_path) -> None:
    path = tiny_models["nle"].save(tmp_path / "nle.safetensors", metadata={"task": "gaussian"})
    header = gbi_npe.read_header(path)
    assert header["metadata"]["gbi_surrogates"]["kind"] == "nle"
    assert header["metadata"]["user"] == {"task": "gaussian"}
    assert gbi_npe.load_estimator(path).inputs_features == 2


def test_loading_another_kind_is_refused(tiny_models, tmp_path) -> None:
    paths = {kind: model.save(tmp_path / f"{kind}.st") for kind, model in tiny_models.items()}
    for kind, cls in CLASSES.items():
        for other, path in paths.items():
            if other != kind:
                with pytest.raises(ModelFileError):
                    cls.load(path)


def test_a_plain_gbi_npe_estimator_is_not_a_surrogate(tmp_path) -> None:
    estimator = gbi_npe.make_conditional_estimator(
        2, 2, density=gbi_npe.MDNConfig(num_components=1, hidden_features=4)
    )
    path = gbi_npe.save_estimator(estimator, tmp_path / "plain.st")
    with pytest.raises(ModelFileError, match="not a surrogate"):
        load_surrogate(path)
    with pytest.raises(ModelFileError, match="not an NLE"):
        NLE.load(path)


@pytest.mark.parametrize("damage", ["truncate", "flip_tensor_byte", "flip_header_byte", "garbage"])
def test_corrupt_files_give_a_clear_error(tiny, tmp_path, damage: str) -> None:
    path = tiny.save(tmp_path / "model.safetensors")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip_tensor_byte":
        data[-5] ^= 0xFF
    elif damage == "flip_header_byte":
        start = data.index(b'"kind') if b'"kind' in data else data.index(b"kind")
        data[start + 3] ^= 0x01
    else:
        data = bytearray(b"not a model file at all" * 10)
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError):
        CLASSES[tiny.kind].load(path)
    with pytest.raises(ModelFileError):
        load_surrogate(path)


def test_a_missing_file_is_a_file_not_found_error(kind, tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        CLASSES[kind].load(tmp_path / "nothing.safetensors")
    with pytest.raises(FileNotFoundError):
        load_surrogate(tmp_path / "nothing.safetensors")


def test_training_is_reproducible_for_a_seed(kind, small_data, fit_tiny_fn, evaluate_fn) -> None:
    first, history_1 = fit_tiny_fn(kind, *small_data, seed=5)
    second, history_2 = fit_tiny_fn(kind, *small_data, seed=5)
    other, _ = fit_tiny_fn(kind, *small_data, seed=6)
    theta, x = _points()
    np.testing.assert_array_equal(evaluate_fn(first, theta, x), evaluate_fn(second, theta, x))
    assert history_1.train_loss == history_2.train_loss
    assert not np.array_equal(evaluate_fn(first, theta, x), evaluate_fn(other, theta, x))


def test_fit_returns_gbi_npe_history(kind, small_data, fit_tiny_fn) -> None:
    model, history = fit_tiny_fn(kind, *small_data, max_epochs=4, patience=4)
    assert isinstance(history, History)
    assert 1 <= history.epochs <= 4
    assert len(history.validation_loss) == history.epochs
    assert history.n_train + history.n_validation == 300 and history.n_validation == 30
    # best_epoch points at the lowest validation loss, whose weights were kept
    assert history.validation_loss[history.best_epoch] == min(history.validation_loss)
    assert model.kind == kind


def test_training_without_validation_keeps_the_last_weights(kind, small_data, fit_tiny_fn):
    _, history = fit_tiny_fn(kind, *small_data, max_epochs=3, validation_fraction=0.0)
    assert history.epochs == 3 and history.best_epoch is None and history.validation_loss == ()


def test_training_does_not_touch_global_random_state(kind, small_data, fit_tiny_fn) -> None:
    import torch

    before_np = np.random.get_state()[1].copy()  # noqa: NPY002  (global state on purpose)
    before_torch = torch.get_rng_state().clone()
    fit_tiny_fn(kind, *small_data)
    assert np.array_equal(np.random.get_state()[1], before_np)  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), before_torch)


def test_nle_drops_constant_x_columns_and_keeps_them_through_save(small_data, tmp_path):
    from gbi_surrogates import NLEConfig, TrainConfig, fit_nle

    theta, x = small_data
    x3 = np.c_[x[:, :1], np.ones(len(x)), x[:, 1:]]  # lorenz96-like constant feature
    config = NLEConfig(density=gbi_npe.MDNConfig(num_components=1, hidden_features=8))
    nle, _ = fit_nle(theta, x3, config, TrainConfig(max_epochs=2, progress=False))
    assert nle.x_features == 3 and nle.x_columns == (0, 2) and nle.x_constant == {1: 1.0}
    assert nle.estimator.inputs_features == 2
    out = nle.log_likelihood(theta[:5], x3[:5])
    assert np.isfinite(out).all()
    loaded = NLE.load(nle.save(tmp_path / "nle.st"))
    assert loaded.x_columns == (0, 2) and loaded.x_constant == {1: 1.0}
    np.testing.assert_array_equal(loaded.log_likelihood(theta[:5], x3[:5]), out)


@pytest.mark.parametrize("variant", ["nre_a", "nre_b"])
def test_nre_copes_with_a_last_batch_of_one_row(small_data, variant: str) -> None:
    from gbi_surrogates import NREConfig, TrainConfig, fit_nre

    # 300 pairs, 30 held out: 270 training rows in batches of 269 and 1.
    config = NREConfig(hidden_features=8, num_blocks=1, variant=variant, num_atoms=4)
    _, history = fit_nre(
        *small_data, config, TrainConfig(max_epochs=2, batch_size=269, progress=False)
    )
    assert np.isfinite(history.train_loss).all() and history.n_train == 270


def test_the_default_rows_per_call_shrink_with_the_x_features() -> None:
    """Wide x (lorenz96's 168 features) is evaluated in small calls that stay in
    the CPU caches; narrow x in calls of 4096 rows; never fewer than 128."""
    from gbi_surrogates._runtime import chunk_rows, rows_per_call

    assert [rows_per_call(d) for d in (1, 2, 8, 16, 168, 10**6)] == [4096] * 3 + [2048, 195, 128]
    assert chunk_rows(None, 168) == 195 and chunk_rows(7, 168) == 7
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        chunk_rows(0, 168)
