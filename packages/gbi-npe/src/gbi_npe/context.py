"""The conditioning path: raw context -> network features.

For the NPE case the raw context is ``[x, beta]`` and the network sees

    h = [ embedding(standardize(x)),  standardize(features(beta)) ]

For a generic estimator (such as an NLE, whose context is theta) the raw
context is ``x`` alone and ``h = embedding(standardize(x))``.
"""

from __future__ import annotations

import torch
from torch import nn

from .beta import beta_features
from .config import EmbeddingConfig, EstimatorSpec
from .transforms import Standardize


class MLP(nn.Module):
    """Fully connected network with GELU activations.

    Args:
        in_features: input width.
        out_features: output width.
        hidden_features: hidden width.
        num_layers: number of hidden layers.
    """

    def __init__(
        self, in_features: int, out_features: int, hidden_features: int, num_layers: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_features), nn.GELU()]
            width = hidden_features
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(b, in_features) -> (b, out_features)."""
        return self.net(inputs)


def custom_output_features(module: nn.Module, x_features: int) -> int:
    """Output width of a user embedding, found by a dry run on zeros.

    Raises:
        ValueError: the module fails on a (2, x_features) float32 batch or does
            not return a (2, e) tensor.
    """
    if not isinstance(module, nn.Module):
        raise ValueError(f"embedding_net must be a torch.nn.Module, got {type(module).__name__}")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            parameter = next(module.parameters(), None)
            device = parameter.device if parameter is not None else torch.device("cpu")
            out = module(torch.zeros(2, x_features, device=device))
    except Exception as error:
        raise ValueError(
            f"embedding_net must map a float32 tensor (b, {x_features}) to (b, e); "
            f"a dry run failed with {error!r}"
        ) from error
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(
            f"embedding_net must return a tensor of shape (b, e); for b=2 it returned {shape}"
        )
    return int(out.shape[1])


def make_embedding(
    config: EmbeddingConfig, x_features: int, module: nn.Module | None = None
) -> tuple[nn.Module, int]:
    """Build the x embedding; returns ``(module, output_features)``."""
    if config.kind == "identity":
        if module is not None:
            raise ValueError("embedding_net was given but the embedding kind is 'identity'")
        return nn.Identity(), x_features
    if config.kind == "mlp":
        if module is not None:
            raise ValueError("embedding_net was given but the embedding kind is 'mlp'")
        net = MLP(x_features, config.output_features, config.hidden_features, config.num_layers)
        return net, config.output_features
    if config.kind == "stencil":
        if module is not None:
            raise ValueError("embedding_net was given but the embedding kind is 'stencil'")
        from .stencil import StencilEmbedding

        config.check_x_features(x_features)
        net = StencilEmbedding(
            config.grid,
            config.offsets,
            config.cyclic,
            config.hidden_features,
            config.num_layers,
            config.output_features,
        )
        return net, config.output_features
    if module is None:
        name = config.module_name or "a torch.nn.Module"
        raise ValueError(
            f"this estimator uses a custom embedding network ({name}); its code is not "
            "stored with the model, so pass a freshly built module of the same "
            "architecture as embedding_net= (its weights are loaded from the file)"
        )
    features = custom_output_features(module, x_features)
    if features != config.output_features:
        raise ValueError(
            f"embedding_net outputs {features} features but the estimator was built with "
            f"{config.output_features}"
        )
    return module, features


class ContextEncoder(nn.Module):
    """Raw context (b, c) float64 -> network features h (b, e) float32.

    Args:
        spec: the estimator spec (``x_features``, ``embedding``,
            ``beta_features``).
        embedding_net: the user module when ``spec.embedding.kind == "custom"``.
    """

    def __init__(self, spec: EstimatorSpec, embedding_net: nn.Module | None = None) -> None:
        super().__init__()
        self.x_features = spec.x_features
        self.beta_feature_names = spec.beta_features
        self.x_standardize = Standardize(spec.x_features)
        self.embedding, embedded = make_embedding(spec.embedding, spec.x_features, embedding_net)
        self.beta_standardize = Standardize(len(spec.beta_features)) if spec.beta_features else None
        self.output_features = embedded + len(spec.beta_features)

    def split(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(b, c) -> x (b, x_features) and beta (b,) (``None`` if not beta-conditioned)."""
        if self.beta_standardize is None:
            return context, None
        return context[:, : self.x_features], context[:, self.x_features]

    def raw_beta_features(self, beta: torch.Tensor) -> torch.Tensor:
        """Unstandardized beta features, (b,) -> (b, k), float64."""
        return beta_features(beta.to(torch.float64), self.beta_feature_names)

    def embed_x(self, x: torch.Tensor) -> torch.Tensor:
        """The x part of the features: x (b, x_features) float64 -> (b, e) float32."""
        return self.embedding(self.x_standardize(x).to(torch.float32))

    def with_beta(self, h_x: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        """Append the beta features: ``embed_x`` output (b, e) and beta (b,) -> (b, e + k)."""
        assert self.beta_standardize is not None
        features = self.beta_standardize(self.raw_beta_features(beta)).to(torch.float32)
        return torch.cat([h_x, features], dim=-1)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """(b, c) -> (b, output_features), float32."""
        x, beta = self.split(context)
        h = self.embed_x(x)
        return h if beta is None else self.with_beta(h, beta)
