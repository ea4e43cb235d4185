r"""Noise-conditional joint score model s(theta, x, sigma) (Route A, Phase I; paper App. A.1).

**Coordinates.** The network works on standardized pairs
``u = ((theta - m_theta) / c_theta, (x - m_x) / c_x)`` (per-coordinate shift
``m`` and scale ``c`` from the training pairs; ``D = diag(c_theta, c_x)``).
``sigma`` is a noise level **in standardized units**: the noised base joint is

    p_sigma(u) = ∫ p(u') N(u; u', sigma^2 I) du',

i.e. in the original coordinates ``v = (theta, x)`` each coordinate is noised
by ``sigma`` times its training standard deviation (noise covariance
``sigma^2 D^2``). A level of 0.1 is a tenth of each coordinate's spread,
whatever its units.

**Training** (denoising score matching, NCSN; Song & Ermon 2019, Vincent
2011). For a pair ``u``, a level ``sigma`` drawn uniformly from the geometric
ladder and ``eps ~ N(0, I)``, with ``u~ = u + sigma eps``, the loss is

    lambda(sigma) || s_u(u~, sigma) + eps / sigma ||^2 = || sigma s_u(u~, sigma) + eps ||^2,
    lambda(sigma) = sigma^2,

summed over coordinates and averaged over the minibatch; its minimizer is
``s_u = ∇_u log p_sigma(u)``. Each row is noised antithetically (by ``+eps``
and by ``-eps``): unbiased, and the leading noise term of the gradient, which
grows like 1 / sigma, cancels between the two. The network output is scaled
by ``1 / sqrt(1 + sigma^2)``, the typical score size of unit-variance data
noised by sigma, rather than NCSNv2's ``1 / sigma``: on standardized data with
sigma <= 1 the score stays O(1) as sigma -> 0, and dividing by sigma would
amplify the network's error tenfold at sigma = 0.1.

**Output: the score in the original coordinates.** With ``v = m + D u``,
``log p_V(v) = log p_U(u) - sum log c``, so by the chain rule

    ∇_v log p_sigma,V(v) = D^{-1} ∇_u log p_sigma,U(u),

and ``score(theta, x, sigma)`` returns ``s_u / c`` column by column, shape
(n, d_theta + d_x) (theta block first): the gradient with respect to the
ORIGINAL (theta, x), as ``gbi_tempering.synthesize`` expects of its
``score_fn``. As sigma -> 0 it tends to ``∇_(theta, x) log p(theta, x)``.

**Langevin units.** ``gbi_tempering.synthesize`` moves pairs in the original
coordinates with steps ``eta = step_scale * sigma^2`` and Gaussian kicks of
size ``sqrt(2 eta)`` in every coordinate. That matches the model's levels
when the training scales ``c`` are near 1. For data of very different scales,
run the synthesis in standardized coordinates instead: pass
``u_theta = (theta - theta_shift) / theta_scale`` (the same for x and for the
prior box), use ``lambda u_t, u_x, s: model.score(u_t, u_x, s, standardized=True)``
as ``score_fn`` (it returns ``s_u``), and map the pairs back.

Example:
    >>> import numpy as np
    >>> from gbi_npe import TrainConfig
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.normal(size=(256, 1)); x = theta + 0.5 * rng.normal(size=(256, 1))
    >>> config = ScoreConfig(hidden_features=16, num_blocks=1, embedding_features=8,
    ...                      head_blocks=1)
    >>> model, history = fit_score(theta, x, config, TrainConfig(max_epochs=2, progress=False))
    >>> model.score(theta[:5], x[:5], sigma=model.sigmas[-1]).shape
    (5, 2)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from gbi_surrogates._from_npe import (
    History,
    TrainConfig,
    resolve_device,
    split_indices,
)
from gbi_surrogates._inputs import as_chunk_size, as_sigma, evaluation_pairs, training_pairs
from gbi_surrogates._model import PairNetworkModel
from gbi_surrogates._nets import NoiseEmbedding, PairStandardize, ResidualMLP
from gbi_surrogates._runtime import (
    DEFAULT_CHUNK_SIZE,
    as_tensor,
    build_seeded,
    check_train_config,
    evaluate_chunked,
)
from gbi_surrogates._training import make_snapshot, train_in_stages
from gbi_surrogates.config import ScoreConfig


def output_scale(sigma: torch.Tensor) -> torch.Tensor:
    """``1 / sqrt(1 + sigma^2)``: the typical score size of unit-variance data noised by sigma."""
    return torch.rsqrt(1.0 + sigma * sigma)


class ScoreNetwork(nn.Module):
    """Embeddings of theta, x and log sigma, concatenated, through a residual MLP head.

    Args:
        theta_features: d_theta.
        x_features: d_x.
        config: widths, depths and the noise ladder.
    """

    def __init__(self, theta_features: int, x_features: int, config: ScoreConfig) -> None:
        super().__init__()
        width, out = config.hidden_features, config.embedding_features
        self.standardize = PairStandardize(theta_features, x_features)
        self.theta_embedding = ResidualMLP(theta_features, out, width, config.num_blocks)
        self.x_embedding = ResidualMLP(x_features, out, width, config.num_blocks)
        self.sigma_embedding = NoiseEmbedding(width, out)
        self.head = ResidualMLP(3 * out, theta_features + x_features, width, config.head_blocks)

    def standardized_score(
        self, u_theta: torch.Tensor, u_x: torch.Tensor, sigma: torch.Tensor
    ) -> torch.Tensor:
        """``s_u``: standardized (b, d_theta), (b, d_x), sigma (b, 1), float32 -> (b, d)."""
        h = torch.cat(
            [
                self.theta_embedding(u_theta),
                self.x_embedding(u_x),
                self.sigma_embedding(torch.log(sigma)),
            ],
            dim=-1,
        )
        return self.head(h) * output_scale(sigma)

    def forward(self, theta: torch.Tensor, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Score in original coordinates: (b, d_theta), (b, d_x), sigma (b,) -> (b, d) float64."""
        u_theta, u_x = self.standardize(theta, x)
        s_u = self.standardized_score(u_theta, u_x, sigma.to(torch.float32)[:, None])
        scale = torch.cat([self.standardize.theta.scale, self.standardize.x.scale])
        return s_u.to(torch.float64) / scale


class JointScoreModel(PairNetworkModel):
    """A trained noise-conditional joint score ``s(theta, x, sigma)``.

    Build it with ``fit_score`` or ``JointScoreModel.load``. ``score`` is a
    ``score_fn`` for ``gbi_tempering.synthesize``; ``sigmas`` is its ladder.

    Attributes:
        network: the torch module (standardization + score network).
        config: its ``ScoreConfig``.
    """

    kind = "score"
    label = "score model"
    config_class = ScoreConfig
    network_class = ScoreNetwork

    @property
    def sigmas(self) -> np.ndarray:
        """The trained noise ladder (standardized units), decreasing, shape (L,)."""
        return self.config.sigmas()

    @property
    def sigma_range(self) -> tuple[float, float]:
        return float(self.config.sigma_min), float(self.config.sigma_max)

    @property
    def theta_shift(self) -> np.ndarray:
        """Training mean of theta, shape (d_theta,)."""
        return self.network.standardize.theta.shift.cpu().numpy().copy()

    @property
    def theta_scale(self) -> np.ndarray:
        """Training standard deviation of theta (1 for constant columns), shape (d_theta,)."""
        return self.network.standardize.theta.scale.cpu().numpy().copy()

    @property
    def x_shift(self) -> np.ndarray:
        """Training mean of x, shape (d_x,)."""
        return self.network.standardize.x.shift.cpu().numpy().copy()

    @property
    def x_scale(self) -> np.ndarray:
        """Training standard deviation of x (1 for constant columns), shape (d_x,)."""
        return self.network.standardize.x.scale.cpu().numpy().copy()

    def score(
        self,
        theta: np.ndarray,
        x: np.ndarray,
        sigma: float | np.ndarray,
        *,
        extrapolate: bool = False,
        standardized: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> np.ndarray:
        """``∇_(theta, x) log p_sigma(theta, x)`` in the original coordinates.

        Args:
            theta: shape (n, d_theta) or (d_theta,).
            x: shape (n, d_x) or (d_x,) (a single row is broadcast).
            sigma: noise level in standardized units (see the module docs), a
                scalar or shape (n,), inside ``sigma_range``.
            extrapolate: allow a sigma outside the trained range (with a warning).
            standardized: ``theta`` and ``x`` are given in standardized
                coordinates ``(v - shift) / scale`` and the score is returned
                with respect to them (``s_u = score * scale``).
            chunk_size: rows per network call (results do not depend on it).

        Returns:
            shape (n, d_theta + d_x), float64: the theta block, then the x block.

        Raises:
            ValueError: wrong dimensions, non-finite values, mismatched rows,
                sigma <= 0 or outside the trained range.
        """
        theta_a, x_a = evaluation_pairs(theta, x, self.theta_features, self.x_features)
        n = theta_a.shape[0]
        sigma_a = as_sigma(sigma, n, self.sigma_range, extrapolate=extrapolate)
        chunk_size = as_chunk_size(chunk_size)
        if standardized:
            theta_a = theta_a * self.theta_scale + self.theta_shift
            x_a = x_a * self.x_scale + self.x_shift
        device = self.device
        self.network.eval()
        score = evaluate_chunked(
            lambda rows: self.network(
                as_tensor(theta_a[rows], device),
                as_tensor(x_a[rows], device),
                as_tensor(sigma_a[rows], device),
            ),
            n,
            chunk_size,
            (self.theta_features + self.x_features,),
        )
        if standardized:
            score *= np.r_[self.theta_scale, self.x_scale]
        return score

    def _extra_header(self) -> dict[str, Any]:
        return {"sigmas": self.sigmas.tolist()}


class _DenoisingLoss:
    """sigma^2-weighted denoising score matching over fixed standardized pairs."""

    def __init__(self, network: ScoreNetwork, u: torch.Tensor, sigmas: np.ndarray) -> None:
        self.network = network
        self.u = u
        self.d_theta = network.standardize.theta.shift.shape[0]
        self.sigmas = sigmas

    def loss(self, index: np.ndarray, level: np.ndarray, eps: np.ndarray) -> torch.Tensor:
        """Mean over rows of ``||sigma s_u(u + sigma eps, sigma) + eps||^2``.

        Args:
            index: rows (b,).
            level: ladder index per row (b,).
            eps: standard normal noise (b, d).
        """
        device = self.u.device
        sigma = torch.as_tensor(self.sigmas[level], dtype=torch.float32, device=device)[:, None]
        eps_t = torch.as_tensor(eps, dtype=torch.float32, device=device)
        noisy = self.u[torch.as_tensor(index, device=device)] + sigma * eps_t
        s_u = self.network.standardized_score(
            noisy[:, : self.d_theta], noisy[:, self.d_theta :], sigma
        )
        return ((sigma * s_u + eps_t) ** 2).sum(dim=-1).mean()

    def batch_loss(self, index: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """Antithetic: each row is noised by ``+eps`` and by ``-eps`` at the same level."""
        level = rng.integers(0, self.sigmas.size, index.size)
        eps = rng.standard_normal((index.size, self.u.shape[1]))
        return self.loss(np.r_[index, index], np.r_[level, level], np.r_[eps, -eps])


def fit_score(
    theta: np.ndarray,
    x: np.ndarray,
    config: ScoreConfig | None = None,
    train_config: TrainConfig | None = None,
    *,
    snapshot: str | os.PathLike[str] | None = None,
    snapshot_seconds: float = 60.0,
) -> tuple[JointScoreModel, History]:
    """Train a joint score model on base-joint pairs by denoising score matching.

    The standardization is set from the training rows. Each minibatch row gets
    a level drawn uniformly from the ladder and fresh Gaussian noise, used
    antithetically (numpy, from the seeded stream, so runs are reproducible on
    any device). The validation loss is the same loss with every validation
    row at every level and one fixed antithetic noise pair, so it is
    comparable across epochs. Training is gbi-npe's ``train_loop`` (Adam,
    clipping, progress bar, early stopping with the best weights restored),
    once per stage of ``config.learning_rate_decay``.

    Args:
        theta: shape (n, d_theta), n >= 2, from the prior.
        x: shape (n, d_x), ``x_i ~ p(x | theta_i)``.
        config: the network and ladder (default ``ScoreConfig()``).
        train_config: gbi-npe ``TrainConfig`` (default ``TrainConfig()``).
        snapshot: a file for resumable training (see ``fit_nre``).
        snapshot_seconds: least wall time between two snapshot writes.

    Returns:
        The trained ``JointScoreModel`` (on the training device) and its History.

    Raises:
        ValueError: malformed data or configuration.
    """
    config = ScoreConfig() if config is None else config
    if not isinstance(config, ScoreConfig):
        raise ValueError(f"config must be a ScoreConfig, got {type(config).__name__}")
    train_config = check_train_config(train_config)
    theta_a, x_a = training_pairs(theta, x)
    snap = make_snapshot(snapshot, snapshot_seconds, theta_a, x_a)
    n = theta_a.shape[0]
    split_seq, loop_seq, validation_seq = np.random.SeedSequence(train_config.seed).spawn(3)
    train, val = split_indices(
        n, train_config.validation_fraction, np.random.default_rng(split_seq)
    )
    device = resolve_device(train_config.device)
    network = build_seeded(
        lambda: ScoreNetwork(theta_a.shape[1], x_a.shape[1], config), train_config.seed
    )
    network.standardize.set_from(theta_a[train], x_a[train])
    network.to(device)
    sigmas = config.sigmas()

    def standardized(rows: np.ndarray) -> torch.Tensor:
        u_theta, u_x = network.standardize(
            as_tensor(theta_a[rows], device), as_tensor(x_a[rows], device)
        )
        return torch.cat([u_theta, u_x], dim=1)

    objective = _DenoisingLoss(network, standardized(train), sigmas)
    validation_fn = None
    if val.size:
        validation = _DenoisingLoss(network, standardized(val), sigmas)
        index = np.tile(np.arange(val.size), 2 * sigmas.size)
        level = np.tile(np.repeat(np.arange(sigmas.size), val.size), 2)
        eps = np.random.default_rng(validation_seq).standard_normal(
            (val.size * sigmas.size, validation.u.shape[1])
        )
        eps = np.r_[eps, -eps]

        def validation_fn() -> float:
            total = 0.0
            with torch.no_grad():
                for start in range(0, index.size, DEFAULT_CHUNK_SIZE):
                    rows = slice(start, start + DEFAULT_CHUNK_SIZE)
                    chunk = validation.loss(index[rows], level[rows], eps[rows])
                    total += float(chunk) * index[rows].size
            return total / index.size

    history = train_in_stages(
        network,
        objective.batch_loss,
        train.size,
        train_config,
        validation_fn,
        decay=config.learning_rate_decay,
        rng=np.random.default_rng(loop_seq),
        n_validation=val.size,
        description="fit joint score",
        snapshot=snap,
    )
    return JointScoreModel(network, config), history
