"""What the ratio and score models share: a standardized pair network and its file.

``NRE`` and ``JointScoreModel`` each wrap one torch module whose
``standardize`` (a ``PairStandardize``) fixes the dimensions of theta and x,
and each is saved as that module's weights with a header holding the config,
the dimensions and the standardization (``gbi_surrogates._io``). A subclass
names its ``kind``, its config and network classes and the word its errors
use; ``_extra_header`` adds fields of its own to the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from gbi_surrogates import _io
from gbi_surrogates._from_npe import ModelFileError, resolve_device
from gbi_surrogates._runtime import module_device

ModelT = TypeVar("ModelT", bound="PairNetworkModel")


class PairNetworkModel:
    """A trained network on standardized (theta, x) pairs, with its config.

    Attributes:
        network: the torch module (``standardize`` + the network proper).
        config: the model's config (a frozen dataclass with ``to_dict``/``from_dict``).
    """

    kind: ClassVar[str]
    label: ClassVar[str]  # how error messages name the model ("NRE", "score model")
    config_class: ClassVar[type]
    network_class: ClassVar[type[nn.Module]]

    def __init__(self, network: nn.Module, config: Any) -> None:
        self.network = network.eval()
        self.config = config

    @property
    def theta_features(self) -> int:
        return self.network.standardize.theta.shift.shape[0]

    @property
    def x_features(self) -> int:
        return self.network.standardize.x.shift.shape[0]

    @property
    def device(self) -> torch.device:
        return module_device(self.network)

    def to(self: ModelT, device: str | torch.device) -> ModelT:
        """Move the network to ``device`` (``"auto"`` picks CUDA when present); returns self."""
        device = resolve_device(device) if isinstance(device, str) else device
        self.network.to(device)
        return self

    def _extra_header(self) -> dict[str, Any]:
        """Fields of the file's header beyond the shared ones (none by default)."""
        return {}

    def save(self, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Write the model to ``path`` (safetensors + JSON header; see ``gbi_surrogates._io``)."""
        header = _io.base_header(self.kind, metadata)
        header["config"] = self.config.to_dict()
        header["dims"] = {"theta": self.theta_features, "x": self.x_features}
        header["standardization"] = self.network.standardize.to_dict()
        header.update(self._extra_header())
        return _io.write_module(path, header, self.network)

    @classmethod
    def load(cls: type[ModelT], path: str | Path, *, device: str | torch.device = "cpu") -> ModelT:
        """Rebuild a model written by ``save``; the round trip is exact.

        Raises:
            FileNotFoundError: no such file.
            ModelFileError: unreadable, truncated, tampered with, or another
                format or kind.
        """
        header, tensors = _io.read_module_file(path, cls.kind)
        try:
            config = cls.config_class.from_dict(header["config"])
            dims = header["dims"]
            network = cls.network_class(int(dims["theta"]), int(dims["x"]), config)
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{path}: invalid {cls.label} header: {error}") from error
        _io.load_into(path, network, tensors)
        if header.get("standardization") != network.standardize.to_dict():
            raise ModelFileError(f"{path}: the header's standardization disagrees with the tensors")
        return cls(network, config).to(device)
