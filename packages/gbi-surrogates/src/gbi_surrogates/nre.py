r"""Neural ratio estimation: a classifier whose logit estimates log p(x | theta) / p(x).

A residual MLP ``d(theta, x)`` on the standardized pair ``[theta, x]`` outputs a
logit ``f``. NRE-A (Hermans et al. 2020; the paper's Route B, App. A.2) trains
it to tell joint pairs ``(theta_i, x_i) ~ p(theta, x)`` from pairs of the
product of marginals ``(theta_i, x_j) ~ p(theta) p(x)`` (x shuffled within the
minibatch, never paired with its own theta; ``num_negatives`` shuffles per
batch), with equal class priors (each class's loss is its own mean):

    L = mean_i [-log sigmoid(f(theta_i, x_i))] + mean_(i,j) [-log(1 - sigmoid(f(theta_i, x_j)))].

The optimal classifier is ``d = r / (1 + r)`` with ``r = p(x | theta) / p(x)``,
so ``log r = logit(d) = f``: ``log_ratio`` returns ``f``. The NRE-B variant
(Durkan et al. 2020) contrasts each x against ``num_atoms`` thetas (its own
and ``num_atoms - 1`` drawn from the training set) by a softmax cross-entropy;
its logit estimates ``log r(theta, x) + c(x)``, which the NRE form of the
SNIS weights absorbs into ``m(x)``.

Example:
    >>> import numpy as np
    >>> from gbi_npe import TrainConfig
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.uniform(-1, 1, (256, 1)); x = theta + 0.3 * rng.normal(size=(256, 1))
    >>> nre, history = fit_nre(theta, x, NREConfig(hidden_features=16, num_blocks=1),
    ...                        TrainConfig(max_epochs=2, progress=False))
    >>> nre.log_ratio(theta[:5], x[:5]).shape
    (5,)
"""

from __future__ import annotations

import functools
import os

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gbi_surrogates._from_npe import (
    History,
    TrainConfig,
    make_embedding,
    maybe_compiled,
    resolve_device,
    split_indices,
)
from gbi_surrogates._inputs import training_pairs
from gbi_surrogates._model import PairNetworkModel
from gbi_surrogates._nets import PairStandardize, ResidualMLP
from gbi_surrogates._runtime import (
    DEFAULT_CHUNK_SIZE,
    as_tensor,
    build_seeded,
    check_train_config,
    evaluate_pairs,
)
from gbi_surrogates._training import make_snapshot, train_in_stages
from gbi_surrogates.config import NREConfig

#: negatives per validation row (drawn once): the validation loss must resolve
#: small improvements for early stopping to stop at the right epoch.
VALIDATION_NEGATIVES = 16


class RatioNetwork(nn.Module):
    """Standardization + x embedding + residual MLP classifier: raw (theta, x) -> logit.

    Args:
        theta_features: d_theta.
        x_features: d_x.
        config: widths, depth and the x embedding.
    """

    def __init__(self, theta_features: int, x_features: int, config: NREConfig) -> None:
        super().__init__()
        self.standardize = PairStandardize(theta_features, x_features)
        self.embedding, width = make_embedding(config.embedding, x_features)
        self.classifier = ResidualMLP(
            theta_features + width, 1, config.hidden_features, config.num_blocks
        )

    def embed_x(self, u_x: torch.Tensor) -> torch.Tensor:
        """Standardized x (b, d_x) float32 -> its embedding (b, e)."""
        return self.embedding(u_x)

    def logit_embedded(self, u_theta: torch.Tensor, e_x: torch.Tensor) -> torch.Tensor:
        """Standardized theta (b, d_theta) and embedded x (b, e) -> logits (b,) float32."""
        return self.classifier(torch.cat([u_theta, e_x], dim=-1)).squeeze(-1)

    def logit_standardized(self, u_theta: torch.Tensor, u_x: torch.Tensor) -> torch.Tensor:
        """Standardized (b, d_theta), (b, d_x) float32 -> logits (b,) float32."""
        return self.logit_embedded(u_theta, self.embed_x(u_x))

    def forward(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Raw (b, d_theta), (b, d_x) -> logits (b,) float32."""
        return self.logit_standardized(*self.standardize(theta, x))


class NRE(PairNetworkModel):
    """A trained ratio estimator ``log r(theta, x) ≈ log p(x | theta) / p(x)``.

    Build it with ``fit_nre`` or ``NRE.load``.

    Attributes:
        network: the torch module (standardization + classifier).
        config: its ``NREConfig``.
    """

    kind = "nre"
    label = "NRE"
    config_class = NREConfig
    network_class = RatioNetwork

    def log_ratio(
        self, theta: np.ndarray, x: np.ndarray, *, chunk_size: int | None = None
    ) -> np.ndarray:
        """The classifier logit, an estimate of ``log p(x | theta) / p(x)``.

        Args:
            theta: shape (n, d_theta) or (d_theta,).
            x: shape (n, d_x) or (d_x,); one x against n thetas (or one theta
                against n x) is broadcast.
            chunk_size: rows per network call (default: ``rows_per_call``; results
                do not depend on it beyond float32 rounding).

        Returns:
            shape (n,), float64.

        Raises:
            ValueError: wrong dimensions, non-finite values, mismatched rows.
        """
        return evaluate_pairs(
            self.network, self.network, theta, x, (self.theta_features, self.x_features), chunk_size
        )


def _partners(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of range(n) without fixed points (n >= 2): one cycle."""
    order = rng.permutation(n)
    partner = np.empty(n, dtype=np.int64)
    partner[order] = np.roll(order, -1)
    return partner


def _others(rows: np.ndarray, n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """For each row, ``k`` indices drawn uniformly from range(n) minus that row: (b, k)."""
    draws = rng.integers(0, n - 1, size=(rows.size, k))
    return draws + (draws >= rows[:, None])


def _nre_a_in_batch_loss(
    network: RatioNetwork, theta: torch.Tensor, u_x: torch.Tensor, partners: torch.Tensor
) -> torch.Tensor:
    """NRE-A's loss when each row's negatives are other rows of the same batch.

    ``theta`` (b, d_theta) and ``u_x`` (b, d_x) are the batch's standardized
    pairs, ``partners`` (b, k) the batch positions of the x paired with each
    theta as negatives. Every x is embedded once. Shapes depend only on the
    batch size, so ``torch.compile`` traces it as one graph.
    """
    e_x = network.embed_x(u_x)
    positive = network.logit_embedded(theta, e_x)
    k = partners.shape[1]
    negative = network.logit_embedded(theta.repeat_interleave(k, dim=0), e_x[partners.reshape(-1)])
    return F.softplus(-positive).mean() + F.softplus(negative).mean()


class _RatioLoss:
    """NRE-A / NRE-B losses over fixed standardized pairs.

    With ``compile``, the training batches of NRE-A (whose negatives are
    other x of the same batch) run ``_nre_a_in_batch_loss`` through
    ``torch.compile``; everything else (NRE-B, validation) runs eagerly.
    """

    def __init__(
        self,
        network: RatioNetwork,
        u_theta: torch.Tensor,
        u_x: torch.Tensor,
        config: NREConfig,
        compile: bool = False,
    ) -> None:
        self.network = network
        self.u_theta, self.u_x = u_theta, u_x
        self.n = u_theta.shape[0]
        self.config = config
        self._in_batch = None
        if compile and config.variant == "nre_a":
            self._in_batch = maybe_compiled(
                functools.partial(_nre_a_in_batch_loss, network),
                True,
                "the NRE's loss",
                u_theta.device,
            )

    def loss(self, index: np.ndarray, negatives: np.ndarray) -> torch.Tensor:
        """Mean loss of rows ``index`` (b,) against ``negatives``.

        ``negatives`` is (b,) (NRE-A: the x paired with each theta) or (b, K-1)
        (NRE-B: the contrasting thetas of each x).
        """
        device = self.u_theta.device
        network = self.network
        rows = torch.as_tensor(index, device=device)
        theta = self.u_theta[rows]
        negatives_t = torch.as_tensor(negatives, device=device)
        b, k = negatives_t.shape
        if self.config.variant == "nre_a":
            # every x is embedded once, however many pairs it appears in
            wanted = torch.cat([rows, negatives_t.reshape(-1)])
            unique, inverse = torch.unique(wanted, return_inverse=True)
            e_x = network.embed_x(self.u_x[unique])[inverse]
            positive = network.logit_embedded(theta, e_x[:b])
            negative = network.logit_embedded(theta.repeat_interleave(k, dim=0), e_x[b:])
            return F.softplus(-positive).mean() + F.softplus(negative).mean()
        e_x = network.embed_x(self.u_x[rows])
        positive = network.logit_embedded(theta, e_x)
        contrast = network.logit_embedded(
            self.u_theta[negatives_t.reshape(-1)], e_x.repeat_interleave(k, dim=0)
        ).reshape(b, k)
        logits = torch.cat([positive[:, None], contrast], dim=1)
        return -torch.log_softmax(logits, dim=1)[:, 0].mean()

    def draw_negatives(
        self, index: np.ndarray, rng: np.random.Generator, k: int | None = None
    ) -> np.ndarray:
        """Fresh negatives for rows ``index``: ``k`` per row (default from the config)."""
        if self.config.variant == "nre_b":
            atoms = min(self.config.num_atoms if k is None else k + 1, self.n) - 1
            return _others(index, self.n, atoms, rng)
        k = self.config.num_negatives if k is None else k
        if index.size >= 2:  # shuffle x within the batch, k times
            return np.stack([index[_partners(index.size, rng)] for _ in range(k)], axis=1)
        return _others(index, self.n, k, rng)

    def batch_loss(self, index: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        negatives = self.draw_negatives(index, rng)
        if self._in_batch is None or index.size < 2:
            return self.loss(index, negatives)
        # the negatives are rows of this batch (draw_negatives): as batch positions
        order = np.argsort(index)
        partners = order[np.searchsorted(index[order], negatives)]
        rows = torch.as_tensor(index, device=self.u_theta.device)
        return self._in_batch(
            self.u_theta[rows],
            self.u_x[rows],
            torch.as_tensor(partners, device=self.u_theta.device),
        )

    @torch.no_grad()
    def full_loss(self, index: np.ndarray, negatives: np.ndarray, chunk_size: int) -> float:
        """``loss`` over many rows, evaluated in chunks of rows (exact: equal-size terms)."""
        total = 0.0
        for start in range(0, index.size, chunk_size):
            rows = slice(start, start + chunk_size)
            total += float(self.loss(index[rows], negatives[rows])) * index[rows].size
        return total / index.size


def fit_nre(
    theta: np.ndarray,
    x: np.ndarray,
    config: NREConfig | None = None,
    train_config: TrainConfig | None = None,
    *,
    snapshot: str | os.PathLike[str] | None = None,
    snapshot_seconds: float = 60.0,
) -> tuple[NRE, History]:
    """Train a ratio estimator on simulated pairs from the base joint.

    The standardization is set from the training rows. Training is gbi-npe's
    ``train_loop`` (Adam, gradient clipping, progress bar, validation split,
    early stopping with the best weights restored), run once per stage of
    ``config.learning_rate_decay``. The validation loss uses fixed negatives
    drawn once among the validation rows (``VALIDATION_NEGATIVES`` per row, so
    it resolves small improvements) and is comparable across epochs.
    Everything random (initialization, split, batch order, negatives) follows
    ``train_config.seed``.

    Args:
        theta: shape (n, d_theta), n >= 2, from the prior.
        x: shape (n, d_x), ``x_i ~ p(x | theta_i)``.
        config: the classifier (default ``NREConfig()``).
        train_config: gbi-npe ``TrainConfig`` (default ``TrainConfig()``).
            With ``compile``, NRE-A's training batches (their negatives are
            x of the same batch) run through ``torch.compile``; NRE-B and the
            validation run eagerly.
        snapshot: a file where training keeps its state (at the end of an
            epoch, at most every ``snapshot_seconds``, and of each stage); a
            call with the snapshot of an interrupted training on the same data
            and settings continues it to the same network. Removed at the end.
        snapshot_seconds: least wall time between two snapshot writes.

    Returns:
        The trained ``NRE`` (on the training device, eval mode) and its History.

    Raises:
        ValueError: malformed data or configuration.
    """
    config = NREConfig() if config is None else config
    if not isinstance(config, NREConfig):
        raise ValueError(f"config must be an NREConfig, got {type(config).__name__}")
    train_config = check_train_config(train_config)
    theta_a, x_a = training_pairs(theta, x)
    snap = make_snapshot(snapshot, snapshot_seconds, theta_a, x_a)
    n = theta_a.shape[0]
    split_seq, loop_seq, validation_seq = np.random.SeedSequence(train_config.seed).spawn(3)
    train, val = split_indices(
        n, train_config.validation_fraction, np.random.default_rng(split_seq)
    )
    if train.size < 2:
        raise ValueError(f"NRE training needs at least 2 training pairs, got {train.size}")
    device = resolve_device(train_config.device)
    network = build_seeded(
        lambda: RatioNetwork(theta_a.shape[1], x_a.shape[1], config), train_config.seed
    )
    network.standardize.set_from(
        theta_a[train],
        x_a[train],
        tails=True,
        shared_x=config.embedding.kind == "stencil",
        x_tail_threshold=config.embedding.tail_threshold,
    )
    network.to(device)

    def standardized(rows: np.ndarray, compile: bool = False) -> _RatioLoss:
        u_theta, u_x = network.standardize(
            as_tensor(theta_a[rows], device), as_tensor(x_a[rows], device)
        )
        return _RatioLoss(network, u_theta, u_x, config, compile)

    objective = standardized(train, train_config.compile)
    validation_fn = None
    if val.size >= 2:
        validation = standardized(val)
        everyone = np.arange(val.size)
        fixed = validation.draw_negatives(
            everyone,
            np.random.default_rng(validation_seq),
            max(VALIDATION_NEGATIVES, config.num_negatives, config.num_atoms - 1),
        )

        def validation_fn() -> float:
            return validation.full_loss(everyone, fixed, DEFAULT_CHUNK_SIZE // fixed.shape[1])

    history = train_in_stages(
        network,
        objective.batch_loss,
        train.size,
        train_config,
        validation_fn,
        decay=config.learning_rate_decay,
        rng=np.random.default_rng(loop_seq),
        n_validation=val.size,
        description=f"fit NRE ({config.variant})",
        snapshot=snap,
    )
    return NRE(network, config), history
