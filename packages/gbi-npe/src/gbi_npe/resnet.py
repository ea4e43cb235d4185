"""The residual conditioner network of the coupling layers.

The same function as normflows' ``ResidualNet`` with a context (and the same
parameter names, initialization and order of random draws, so a flow built
from one seed starts from the same weights and saved files load unchanged),
computed without normflows' concatenations (one in the first layer, one in
each block):

- the first layer acts on ``[inputs, context]``; its weight is split into the
  columns that read the inputs and those that read the context, and the two
  products are added;
- each block gates its output by the context through a GLU,
  ``glu([a, c]) = a * sigmoid(c)``, which is written as that product.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn import init


class ResidualBlock(nn.Module):
    """Two linear layers with pre-activations, gated by the context, added to the input."""

    def __init__(self, features: int, context_features: int, dropout: float) -> None:
        super().__init__()
        self.context_layer = nn.Linear(context_features, features)
        self.linear_layers = nn.ModuleList([nn.Linear(features, features) for _ in range(2)])
        self.dropout = nn.Dropout(p=dropout)
        # starts close to the identity
        init.uniform_(self.linear_layers[-1].weight, -1e-3, 1e-3)
        init.uniform_(self.linear_layers[-1].bias, -1e-3, 1e-3)

    def forward(self, inputs: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """inputs (b, f), context (b, e) -> (b, f)."""
        temps = self.linear_layers[0](F.relu(inputs))
        temps = self.linear_layers[1](self.dropout(F.relu(temps)))
        return inputs + temps * torch.sigmoid(self.context_layer(context))


class ResidualNet(nn.Module):
    """Residual network ``(inputs (b, k), context (b, e)) -> (b, out_features)``.

    Args:
        in_features: k (may be 0: then only the context is read).
        out_features: output width.
        context_features: e.
        hidden_features: width of the hidden layers.
        num_blocks: residual blocks.
        dropout: dropout probability inside each block.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        context_features: int,
        hidden_features: int,
        num_blocks: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        # normflows' coupling (older files' layers) scales its logits by this
        self.hidden_features = hidden_features
        self.initial_layer = nn.Linear(in_features + context_features, hidden_features)
        self.blocks = nn.ModuleList(
            [ResidualBlock(hidden_features, context_features, dropout) for _ in range(num_blocks)]
        )
        self.final_layer = nn.Linear(hidden_features, out_features)

    def forward(self, inputs: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Map inputs (b, k) given context (b, e) to (b, out_features)."""
        weight, bias = self.initial_layer.weight, self.initial_layer.bias
        k = self.in_features
        temps = F.linear(context, weight[:, k:], bias)
        if k:
            temps = temps + F.linear(inputs, weight[:, :k])
        for block in self.blocks:
            temps = block(temps, context)
        return self.final_layer(temps)
