"""Model files: header contents, and clear errors for damaged or foreign files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from gbi_npe import (
    ModelFileError,
    SplineFlowConfig,
    load_estimator,
    make_npe,
    read_header,
    read_model_file,
    save_estimator,
    write_model_file,
)
from gbi_npe.io import _digest

SMALL = SplineFlowConfig(num_layers=2, hidden_features=16, num_blocks=1, num_bins=4)


@pytest.fixture
def model_file(make_ready, tmp_path) -> Path:
    return save_estimator(
        make_ready(SMALL, 2), tmp_path / "model.safetensors", metadata={"task": "two_moons"}
    )


def test_header_describes_the_model(model_file):
    header = read_header(model_file)
    assert header["format"] == "gbi-npe" and header["format_version"] == 1
    assert header["dims"] == {"inputs": 2, "context": 4, "x": 3, "beta_conditioned": True}
    assert header["beta_range"] == [0.1, 2.0]
    assert header["prior_box"] == {"low": [-1.0, 0.5], "high": [2.0, 3.0]}
    assert header["spec"]["density"]["type"] == "spline_flow"
    assert set(header["standardization"]) == {"inputs", "x", "beta_features"}
    assert len(header["standardization"]["x"]["scale"]) == 3
    assert header["metadata"] == {"task": "two_moons"}
    assert header["fitted"] is True


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        load_estimator(tmp_path / "absent.safetensors")


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_truncated_file(model_file, keep):
    data = model_file.read_bytes()
    model_file.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        load_estimator(model_file)


def test_flipped_byte_in_the_weights(model_file):
    data = bytearray(model_file.read_bytes())
    data[-10] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_estimator(model_file)


def test_edited_header(model_file):
    data = model_file.read_bytes()
    assert data.count(b"two_moons") == 1
    model_file.write_bytes(data.replace(b"two_moons", b"two_mooms"))
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        read_header(model_file)


def test_not_a_model_file(tmp_path):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ModelFileError, match="not a readable safetensors model file"):
        load_estimator(garbage)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(foreign))
    with pytest.raises(ModelFileError, match="not a gbi-npe model"):
        load_estimator(foreign)


def _rewrite(path: Path, edit) -> None:
    """Rewrite a model file with an edited header and a valid checksum."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    header = json.loads(meta["gbi_npe.header"])
    edit(header, tensors)
    header_json = json.dumps(header, sort_keys=True)
    save_file(
        tensors,
        str(path),
        metadata={"gbi_npe.header": header_json, "gbi_npe.sha256": _digest(header_json, tensors)},
    )


def test_newer_format_version(model_file):
    _rewrite(model_file, lambda header, tensors: header.update(format_version=2))
    with pytest.raises(ModelFileError, match=r"format version 2.*newer"):
        load_estimator(model_file)


def test_weights_that_do_not_fit_the_architecture(model_file):
    def drop_one(header, tensors):
        tensors.pop(sorted(tensors)[0])

    _rewrite(model_file, drop_one)
    with pytest.raises(ModelFileError, match="do not fit the architecture"):
        load_estimator(model_file)


def test_inconsistent_standardization(model_file):
    def edit(header, tensors):
        header["standardization"]["x"]["scale"][0] *= 2

    _rewrite(model_file, edit)
    with pytest.raises(ModelFileError, match="standardization disagrees"):
        load_estimator(model_file)


class TinyEmbedding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.linear(x))


def test_custom_embedding_round_trip(tmp_path):
    torch.manual_seed(0)
    estimator = make_npe(2, 3, density=SMALL, embedding=TinyEmbedding())
    assert estimator.spec.embedding.kind == "custom"
    assert estimator.spec.embedding.output_features == 5
    assert estimator.spec.embedding.module_name.endswith("TinyEmbedding")
    rng = np.random.default_rng(0)
    estimator.set_standardization(
        rng.normal(size=(50, 2)), rng.normal(size=(50, 3)), None, np.ones(50)
    )
    path = save_estimator(estimator, tmp_path / "custom.safetensors")
    with pytest.raises(ValueError, match=r"TinyEmbedding.*embedding_net="):
        load_estimator(path)
    loaded = load_estimator(path, embedding_net=TinyEmbedding())
    for name, tensor in estimator.state_dict().items():  # beta_bounds is NaN (not fitted)
        torch.testing.assert_close(
            tensor, loaded.state_dict()[name], rtol=0, atol=0, equal_nan=True
        )

    class Wider(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(3, 6)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x)

    with pytest.raises(ValueError, match="outputs 6 features but the estimator was built with 5"):
        load_estimator(path, embedding_net=Wider())


def test_metadata_must_be_json(make_ready, tmp_path):
    with pytest.raises(ValueError, match="JSON-serializable"):
        save_estimator(make_ready(SMALL, 2), tmp_path / "m.safetensors", metadata={"a": object()})


def test_the_same_file_format_for_other_models(tmp_path):
    # What the surrogates do for networks that are not density estimators.
    module = nn.Linear(3, 2)
    header = {"format": "gbi-nre", "format_version": 1, "dims": [3]}
    path = write_model_file(tmp_path / "ratio.safetensors", module.state_dict(), header)
    read_back, tensors = read_model_file(path, format="gbi-nre", version=1)
    assert read_back == header
    copy = nn.Linear(3, 2)
    copy.load_state_dict(tensors)
    assert torch.equal(copy.weight, module.weight)
    with pytest.raises(ModelFileError, match=r"not a gbi-npe model file \(format 'gbi-nre'\)"):
        load_estimator(path)
    with pytest.raises(ModelFileError, match="format version 1; this code reads version 2"):
        read_model_file(path, format="gbi-nre", version=2)


def test_a_file_from_before_the_unconditional_transform_setting(make_ready, tmp_path):
    """Flows were built with normflows' unconditional transform until the setting
    existed: a header without the field loads as such a flow, with its weights."""
    legacy = dataclasses.replace(SMALL, unconditional_transform=True)
    estimator = make_ready(legacy, 3)
    path = save_estimator(estimator, tmp_path / "legacy.safetensors")
    assert any("unconditional_transform" in name for name in read_model_file(path)[1])

    def drop_field(header, tensors):
        del header["spec"]["density"]["unconditional_transform"]

    _rewrite(path, drop_field)
    loaded = load_estimator(path)
    assert loaded.spec.density.unconditional_transform is True
    theta = torch.tensor([[0.0, 1.0, -2.5], [1.5, 2.0, -2.2]])
    context = torch.tensor([[0.1, -0.3, 0.7, 1.0], [1.2, 0.4, -0.5, 0.3]])  # x, then beta
    with torch.no_grad():
        assert torch.equal(loaded.log_prob(theta, context), estimator.log_prob(theta, context))


def test_the_default_flow_has_no_unconditional_transform(make_ready, tmp_path):
    path = save_estimator(make_ready(SMALL, 3), tmp_path / "model.safetensors")
    assert read_header(path)["spec"]["density"]["unconditional_transform"] is False
    assert not any("unconditional_transform" in name for name in read_model_file(path)[1])
    assert load_estimator(path).spec.density.unconditional_transform is False
