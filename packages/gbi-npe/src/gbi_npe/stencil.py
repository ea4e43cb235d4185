"""Stencil embedding: one small network on every local patch of x, averaged.

For x laid out on a grid (a path of states, a field on a lattice) whose
likelihood is a sum of local terms, such as a Markov chain

    log p(x | theta) = sum_t log p(x_{t+1} | x_t, theta),

the statistics that matter are averages of functions of local patches. The
embedding computes exactly such averages, with the function learned:

    h(x) = rho( mean_p phi([x[anchor_p + offsets], position_p]) )

where ``position_p`` is the anchor's coordinate along every non-cyclic axis
(scaled to [-1, 1]), so that phi may differ along a path, and cyclic axes (a
ring of sites) wrap around. phi sees a handful of values instead of all of x,
so it needs far fewer simulations than an MLP on the whole of x.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .context import MLP


def stencil_patches(
    grid: tuple[int, ...], offsets: tuple[tuple[int, ...], ...], cyclic: tuple[bool, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of every patch of a stencil, and each anchor's position.

    An anchor is every grid cell from which all ``offsets`` land inside the
    grid along the non-cyclic axes (cyclic axes wrap).

    Args:
        grid: the grid's shape; x has ``prod(grid)`` features, row-major.
        offsets: ``o`` tuples of ``len(grid)`` ints.
        cyclic: per axis, whether it wraps (default: none does).

    Returns:
        ``(index, position)``: index (p, o) int64 into the flattened x;
        position (p, a) float64 in [-1, 1], the anchor's coordinate along each
        non-cyclic axis that has more than one anchor (a may be 0).

    Raises:
        ValueError: no cell can anchor the stencil.

    Example:
        >>> index, position = stencil_patches((3, 2), ((0, 0), (1, 0)), (False, True))
        >>> index.tolist(), position[:, 0].tolist()
        ([[0, 2], [1, 3], [2, 4], [3, 5]], [-1.0, -1.0, 1.0, 1.0])
    """
    dims = len(grid)
    cyclic = tuple(cyclic) or (False,) * dims
    off = np.asarray(offsets, dtype=np.int64).reshape(-1, dims)
    ranges = []
    for axis in range(dims):
        if cyclic[axis]:
            ranges.append(np.arange(grid[axis]))
        else:
            start = max(0, -int(off[:, axis].min()))
            stop = grid[axis] - max(0, int(off[:, axis].max()))
            ranges.append(np.arange(start, stop))
    if any(r.size == 0 for r in ranges):
        raise ValueError(
            f"no cell of the grid {tuple(grid)} can anchor the stencil offsets "
            f"{[tuple(o) for o in off.tolist()]}: the stencil is longer than the grid"
        )
    anchors = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, dims)
    cells = anchors[:, None, :] + off[None, :, :]  # (p, o, dims)
    for axis in range(dims):
        if cyclic[axis]:
            cells[..., axis] %= grid[axis]
    index = np.ravel_multi_index(tuple(cells[..., a] for a in range(dims)), grid)
    columns = []
    for axis in range(dims):
        r = ranges[axis]
        if not cyclic[axis] and r.size > 1:
            columns.append(2.0 * (anchors[:, axis] - r[0]) / (r[-1] - r[0]) - 1.0)
    position = np.stack(columns, axis=1) if columns else np.zeros((anchors.shape[0], 0))
    return index.astype(np.int64), position


class StencilEmbedding(nn.Module):
    """x (b, prod(grid)) -> (b, output_features): mean of a network over local patches.

    Args:
        grid: x's grid shape (row-major).
        offsets: the cells one patch reads, relative to its anchor.
        cyclic: per grid axis, whether it wraps.
        hidden_features: width of the patch network phi and the head rho.
        num_layers: hidden layers of phi (rho has one).
        output_features: the embedding's width.

    Example:
        >>> net = StencilEmbedding((21, 8), ((0, -1), (0, 0), (1, 0)), (False, True), 32, 2, 8)
        >>> net(torch.zeros(5, 168)).shape
        torch.Size([5, 8])
    """

    def __init__(
        self,
        grid: tuple[int, ...],
        offsets: tuple[tuple[int, ...], ...],
        cyclic: tuple[bool, ...],
        hidden_features: int,
        num_layers: int,
        output_features: int,
    ) -> None:
        super().__init__()
        index, position = stencil_patches(grid, offsets, cyclic)
        self.in_features = int(np.prod(grid))
        # derived from the configuration, so not stored in model files
        self.register_buffer("index", torch.as_tensor(index), persistent=False)
        self.register_buffer(
            "position", torch.as_tensor(position, dtype=torch.float32), persistent=False
        )
        local_in = index.shape[1] + position.shape[1]
        self.local = MLP(local_in, hidden_features, hidden_features, num_layers)
        self.head = MLP(hidden_features, output_features, hidden_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(b, prod(grid)) -> (b, output_features)."""
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"the stencil embedding takes x of shape (b, {self.in_features}), "
                f"got {tuple(x.shape)}"
            )
        patches = x[:, self.index]  # (b, p, o)
        position = self.position.to(x.dtype).expand(x.shape[0], -1, -1)
        features = self.local(torch.cat([patches, position], dim=-1))
        return self.head(features.mean(dim=1))
