"""The weighted maximum-likelihood objective of Route B (paper §4.2, Prop. B.2).

For a fixed temperature, SNIS weights are normalized *globally* over the data
set, ``w~_i = w_i / sum_j w_j``, and the objective is ``L = sum_i w~_i l_i``
with ``l_i = -log q(theta_i | x_i, beta)``. A minibatch ``B`` of size ``b``
drawn uniformly estimates it without bias by

    L_B = (N / b) * sum_{i in B} w~_i l_i                        (Prop. B.2)

Renormalizing inside the batch (``w_i / sum_{j in B} w_j``) would be biased;
nothing here does that.

With several temperatures in one data set (a ``beta`` per row), the weights
are normalized within each distinct beta, and each beta group keeps the share
``n_beta / N`` of the total mass, so ``sum_i w~_i = 1`` and, without weights,
``L`` is the plain mean negative log-likelihood.

With a continuous beta the weights come from a callable ``log_weights_fn(beta,
index)`` that returns ``log w~_{beta, index}`` normalized over the whole base
set for each beta; see ``ContinuousBetaNLL``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .beta import BetaDistribution
from .config import PAIR_SAMPLING
from .estimator import ConditionalDensityEstimator

#: ``log_weights_fn(beta (b,), index (b,) int) -> log w~ (b,)``: log of the SNIS
#: weight of base pair ``index[j]`` at temperature ``beta[j]``, normalized over
#: the whole base set for that beta (``sum_i exp(log_w(beta, i)) = 1``).
LogWeightsFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

#: rows evaluated at once for full-data (validation) losses.
EVAL_CHUNK = 8192

# A normalized weight is at most 1; log weights up to this much above 0 are
# accepted as round-off (e.g. from an interpolated normalizer).
_NORMALIZED_SLACK = 1e-6


def _logsumexp(values: np.ndarray) -> float:
    top = np.max(values)
    if not np.isfinite(top):
        return float(top)
    return float(top + np.log(np.exp(values - top).sum()))


def normalize_log_weights(
    log_weights: np.ndarray | None,
    beta: np.ndarray | None,
    n: int,
    *,
    drop_empty: bool = False,
) -> np.ndarray:
    """Globally normalized log weights, per distinct beta.

    Args:
        log_weights: unnormalized log weights (n,) (``-inf`` = weight 0), or
            ``None`` for equal weights.
        beta: temperature per row (n,), or ``None`` (one group).
        n: number of rows.
        drop_empty: a beta group whose weights are all zero gets no mass (the
            other groups are scaled up); otherwise it is an error.

    Returns:
        ``log w~`` (n,), with ``sum exp(log w~) = 1`` and each group's mass
        proportional to its size.

    Raises:
        ValueError: a group has only zero weights (unless ``drop_empty``).

    Example:
        >>> lw = normalize_log_weights(np.log([1.0, 3.0, 2.0, 2.0]), np.array([1, 1, 2, 2.0]), 4)
        >>> np.round(np.exp(lw), 3).tolist()
        [0.125, 0.375, 0.25, 0.25]
    """
    if log_weights is None:
        return np.full(n, -np.log(n))
    log_weights = np.asarray(log_weights, dtype=np.float64)
    if beta is None:
        groups, inverse = np.zeros(1), np.zeros(n, dtype=np.int64)
    else:
        groups, inverse = np.unique(beta, return_inverse=True)
    out = np.full(n, -np.inf)
    empty = []
    for g in range(groups.size):
        members = np.flatnonzero(inverse == g)
        total = _logsumexp(log_weights[members])
        if not np.isfinite(total):
            empty.append(float(groups[g]))
            continue
        out[members] = log_weights[members] - total + np.log(members.size / n)
    if empty:
        kept = np.isfinite(out)
        if not drop_empty or not kept.any():
            where = "" if beta is None else f" at beta = {empty[:5]}"
            raise ValueError(f"all weights are zero{where}; cannot normalize them")
        out[kept] -= _logsumexp(out[kept])
    return out


def minibatch_loss(nll: torch.Tensor, weights: torch.Tensor, n_total: int) -> torch.Tensor:
    """Unbiased minibatch estimate of ``sum_i w~_i l_i`` (Prop. B.2).

    Args:
        nll: per-row losses ``l_j`` of the batch, shape (b,).
        weights: globally normalized weights ``w~_j`` of the same rows, (b,).
        n_total: ``N``, the number of rows the weights are normalized over.

    Returns:
        ``(N / b) * sum_j w~_j l_j`` (a scalar); no renormalization in the batch.
    """
    return (n_total / nll.shape[0]) * (weights * nll).sum()


def call_log_weights_fn(fn: LogWeightsFn, beta: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Call a ``log_weights_fn`` and check what it returns.

    Raises:
        ValueError: not an array of shape (b,), NaN / +inf in it, or a value
            above 0 (a globally normalized weight is at most 1).
    """
    result = np.asarray(fn(beta, index), dtype=np.float64)
    if result.shape != beta.shape:
        raise ValueError(
            f"log_weights_fn must return an array of shape {beta.shape} (one log weight per "
            f"(beta, index) pair), got {result.shape}"
        )
    if np.isnan(result).any() or (result == np.inf).any():
        raise ValueError("log_weights_fn returned NaN or +inf (use -inf for a zero weight)")
    if (result > _NORMALIZED_SLACK).any():
        raise ValueError(
            "log_weights_fn must return log weights normalized over the whole base set for "
            f"each beta, so every value is <= 0; got a maximum of {result.max():.4g}"
        )
    return result


def _nll_in_chunks(
    log_prob: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    context: torch.Tensor,
) -> torch.Tensor:
    return torch.cat(
        [
            -log_prob(inputs[i : i + EVAL_CHUNK], context[i : i + EVAL_CHUNK])
            for i in range(0, inputs.shape[0], EVAL_CHUNK)
        ]
    )


class WeightedNLL:
    """``sum_i w~_i l_i`` over a fixed data set (rows already carry their context).

    Args:
        estimator: the estimator being trained.
        inputs: shape (N, d), float64, on the estimator's device.
        context: shape (N, c) (``[x, beta]`` for NPE), float64, same device;
            with ``x_embedded``, ``[embed_x(x), beta]``.
        log_weights: globally normalized log weights (N,)
            (``normalize_log_weights``).
        log_prob: the ``(inputs, context) -> log q`` the training loss calls
            (``estimator.log_prob``, or ``estimator.log_prob_embedded`` with
            ``x_embedded``, or a compiled version of either).
        x_embedded: the context holds x already embedded (a fixed embedding).
    """

    def __init__(
        self,
        estimator: ConditionalDensityEstimator,
        inputs: torch.Tensor,
        context: torch.Tensor,
        log_weights: np.ndarray,
        log_prob: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        x_embedded: bool = False,
    ) -> None:
        self.estimator = estimator
        self._eval_log_prob = estimator.log_prob_embedded if x_embedded else estimator.log_prob
        self.log_prob = self._eval_log_prob if log_prob is None else log_prob
        self.inputs = inputs
        self.context = context
        self.weights = torch.as_tensor(np.exp(log_weights), device=inputs.device)
        self.n = inputs.shape[0]

    def batch_loss(self, index: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        """``(N / b) sum_{j in batch} w~_j l_j`` for rows ``index`` (b,)."""
        idx = torch.as_tensor(index, device=self.inputs.device)
        nll = -self.log_prob(self.inputs[idx], self.context[idx])
        return minibatch_loss(nll, self.weights[idx], self.n)

    @torch.no_grad()
    def full_loss(self) -> float:
        """``sum_i w~_i l_i`` over all rows."""
        nll = _nll_in_chunks(self._eval_log_prob, self.inputs, self.context)
        keep = self.weights > 0
        return float((self.weights[keep] * nll[keep]).sum())


# Share of the uniform component in the weighted pair proposal (defensive
# importance sampling, Hesterberg 1995): every training pair keeps probability
# at least DEFENSIVE / n_train, so no pair with a positive weight is unreachable.
DEFENSIVE = 0.05

# Temperatures of the weighted pair proposal's table (fewer when the table of
# cumulative weights, n_train per temperature, would pass MAX_TABLE entries).
PROPOSAL_BETAS = 128
MAX_TABLE = 2**24


class ContinuousBetaNLL:
    """Route B with beta drawn fresh for every minibatch item.

    For a batch of base pairs ``i_j`` and temperatures ``beta_j ~
    distribution``, the loss is an unbiased estimate of ``(N / N_train)
    E_beta[sum_{i in train} w~_{beta,i} l_i(beta)]``, where ``N`` is the size
    of the whole base set (the set ``log_weights_fn`` normalizes over); over
    the random train/validation split this is unbiased for ``E_beta[sum_i
    w~_{beta,i} l_i(beta)]``. Without a ``log_weights_fn`` every weight is
    ``1 / N``. Two ways to pick the pairs, the same objective:

    * ``"uniform"``: ``i_j`` is the training position given, and
      ``L_B = (N / b) sum_j w~_{beta_j, i_j} l_{i_j}(beta_j)``. Where the SNIS
      weights at ``beta_j`` are uneven (relative ESS well below 1), a few
      pairs carry the whole term and the gradient is as noisy as the weights.
    * ``"weights"``: ``i_j`` is drawn (the positions given only set the batch
      size) from ``q_j(i) = (1 - eps) w~_{beta_g, i} / W_g + eps / N_train``,
      the training pairs' SNIS weights (``W_g``: their sum over the
      training pairs) at the temperature ``beta_g`` of a
      fixed table (``PROPOSAL_BETAS`` points of ``distribution.
      validation_grid``) nearest to ``beta_j`` in ``log beta``, mixed with a
      uniform share ``eps = DEFENSIVE``, and ``L_B = (N / b) sum_j
      w~_{beta_j, i_j} l_{i_j}(beta_j) / (N_train q_j(i_j))``. Every item's
      weight is then near ``1 / N``, the weight of the unweighted case,
      so each item's gradient is that of one likelihood term: the weights'
      unevenness moves into which pairs are drawn, not into the size of
      their steps.

    Args:
        estimator: a beta-conditioned estimator.
        theta: base parameters (N, d), float64, on the estimator's device.
        x: base observations (N, d_x), float64, same device; or their
            embeddings (N, e) with a ``log_prob`` that reads embedded x
            (``estimator.log_prob_embedded``, for a fixed embedding).
        train_index: base indices used for training (n_train,), int.
        distribution: where beta is drawn from.
        log_weights_fn: see ``LogWeightsFn``, or ``None``.
        pair_sampling: ``"uniform"`` or ``"weights"`` (see above; without a
            ``log_weights_fn`` both are uniform).
        log_prob: the ``(inputs, context) -> log q`` the loss calls
            (``estimator.log_prob``, or a compiled version of it:
            ``gbi_npe.compiling``); ``context`` is ``[x, beta]``.
    """

    def __init__(
        self,
        estimator: ConditionalDensityEstimator,
        theta: torch.Tensor,
        x: torch.Tensor,
        train_index: np.ndarray,
        distribution: BetaDistribution,
        log_weights_fn: LogWeightsFn | None,
        pair_sampling: str = "uniform",
        log_prob: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if pair_sampling not in PAIR_SAMPLING:
            raise ValueError(f"pair_sampling must be one of {PAIR_SAMPLING}, got {pair_sampling!r}")
        self.estimator = estimator
        self.log_prob = estimator.log_prob if log_prob is None else log_prob
        self.theta = theta
        self.x = x
        self.train_index = np.asarray(train_index, dtype=np.int64)
        self.distribution = distribution
        self.log_weights_fn = log_weights_fn
        self.n_base = theta.shape[0]
        self.pair_sampling = pair_sampling if log_weights_fn is not None else "uniform"
        if self.pair_sampling == "weights":
            self._build_proposal()

    def _build_proposal(self) -> None:
        """The table of cumulative training weights per proposal temperature."""
        n_train = self.train_index.size
        size = int(max(2, min(PROPOSAL_BETAS, MAX_TABLE // max(n_train, 1))))
        self._grid_log = np.log(np.asarray(self.distribution.validation_grid(size), np.float64))
        cdf = np.empty((self._grid_log.size, n_train))
        for g, log_beta in enumerate(self._grid_log):
            lw = call_log_weights_fn(
                self.log_weights_fn, np.full(n_train, np.exp(log_beta)), self.train_index
            )
            top = lw.max()
            if not np.isfinite(top):
                # no training pair weighs anything here: the uniform share alone
                w = np.full(n_train, 1.0 / n_train)
            else:
                w = np.exp(lw - top)
                w /= w.sum()
            uniform = np.arange(1, n_train + 1) / n_train
            cdf[g] = (1.0 - DEFENSIVE) * np.cumsum(w) + DEFENSIVE * uniform
            cdf[g, -1] = 1.0
        # rows offset by their index: one sorted array serves every row's search
        self._cdf = cdf + np.arange(self._grid_log.size)[:, None]

    def _draw_pairs(
        self, beta: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Training positions drawn from the proposal, and ``log(N_train q_j(i_j))``."""
        n_train = self.train_index.size
        g = np.abs(np.log(beta)[:, None] - self._grid_log[None, :]).argmin(axis=1)
        flat = np.searchsorted(self._cdf.ravel(), g + rng.random(beta.size), side="right")
        pos = np.minimum(flat - g * n_train, n_train - 1)
        upper = self._cdf[g, pos] - g
        lower = np.where(pos > 0, self._cdf[g, np.maximum(pos - 1, 0)] - g, 0.0)
        return pos, np.log(np.maximum(upper - lower, 0.0) * n_train)

    def batch_loss(self, index: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """Loss for a batch of ``index.size`` items, drawing one beta per item from ``rng``.

        With ``pair_sampling="uniform"`` the items are the training positions
        ``index`` (b,); with ``"weights"`` the pairs are drawn from ``rng``.
        """
        beta = np.asarray(self.distribution.sample(index.size, rng), dtype=np.float64)
        log_q = 0.0
        if self.pair_sampling == "weights":
            index, log_q = self._draw_pairs(beta, rng)
        base = self.train_index[index]
        if self.log_weights_fn is None:
            log_w = np.full(base.size, -np.log(self.n_base))
        else:
            log_w = call_log_weights_fn(self.log_weights_fn, beta, base)
        device = self.theta.device
        idx = torch.as_tensor(base, device=device)
        beta_t = torch.as_tensor(beta, device=device)
        context = torch.cat([self.x[idx], beta_t[:, None]], dim=1)
        nll = -self.log_prob(self.theta[idx], context)
        weights = torch.as_tensor(np.exp(log_w - log_q), device=device)
        return minibatch_loss(nll, weights, self.n_base)


class GridValidationNLL:
    """Validation loss for a continuous beta: an ESS-weighted mean over a fixed beta grid.

    For each grid temperature ``beta_g`` the weights of the validation pairs
    are renormalized over the validation subset,
    ``w~^val_{g,i} = w_{g,i} / sum_{k in val} w_{g,k}``, with effective sample
    size ``ESS_g = 1 / sum_i (w~^val_{g,i})^2``, and

        L_g   = sum_{i in val} w~^val_{g,i} l_i(beta_g),
        L_val = sum_g ESS_g L_g / sum_g ESS_g.

    The variance of ``L_g`` grows like ``1 / ESS_g``: where the SNIS weights
    collapse (Route B far below beta = 1, ESS of a few pairs), ``L_g`` is the
    loss of a handful of pairs and jumps from epoch to epoch. An unweighted
    mean lets that noise decide early stopping (seen: an NPE stopped at epoch
    11 of 200 on two_moons, C2ST 0.8 where sbi's NPE reached 0.53); weighting
    by ESS (inverse variance) keeps every temperature but lets each count as
    much as it is measured. With equal weights every ``ESS_g = n_val`` and
    this is the plain mean.

    Args:
        estimator: a beta-conditioned estimator.
        theta: validation parameters (n_val, d), on the estimator's device.
        x: validation observations (n_val, d_x), same device; with
            ``x_embedded``, their embeddings (``estimator.log_prob_at_betas``).
        grid: temperatures (G,).
        log_weights: unnormalized log weights (G, n_val) (``None``: equal).
        x_embedded: x is already embedded (a fixed embedding).
    """

    def __init__(
        self,
        estimator: ConditionalDensityEstimator,
        theta: torch.Tensor,
        x: torch.Tensor,
        grid: np.ndarray,
        log_weights: np.ndarray | None,
        x_embedded: bool = False,
    ) -> None:
        self.estimator = estimator
        self.theta = theta
        self.x = x
        self.x_embedded = x_embedded
        self.grid = np.asarray(grid, dtype=np.float64)
        n_val = theta.shape[0]
        weights = []
        for g, beta in enumerate(self.grid):
            lw = None if log_weights is None else log_weights[g]
            try:
                weights.append(np.exp(normalize_log_weights(lw, None, n_val)))
            except ValueError as error:
                raise ValueError(
                    f"every validation weight is zero at beta = {beta:g}; use more "
                    "validation pairs or check log_weights_fn"
                ) from error
        stacked = np.stack(weights)
        #: effective validation pairs per grid temperature, (G,)
        self.ess = 1.0 / np.sum(stacked**2, axis=1)
        self.share = self.ess / self.ess.sum()
        self.weights = torch.as_tensor(stacked, device=theta.device)
        #: ``L_g`` of the latest call, (G,) (NaN before the first)
        self.last_losses = np.full(self.grid.shape, np.nan)

    @torch.no_grad()
    def __call__(self) -> float:
        # x is embedded once per chunk for the whole grid (a stencil embedding
        # costs more than the flow)
        n_val = self.theta.shape[0]
        nll = torch.cat(
            [
                -self.estimator.log_prob_at_betas(
                    self.theta[i : i + EVAL_CHUNK],
                    self.x[i : i + EVAL_CHUNK],
                    self.grid,
                    x_embedded=self.x_embedded,
                )
                for i in range(0, n_val, EVAL_CHUNK)
            ],
            dim=1,
        )
        for g in range(self.grid.size):
            keep = self.weights[g] > 0
            self.last_losses[g] = float((self.weights[g][keep] * nll[g][keep]).sum())
        return float(np.dot(self.share, self.last_losses))
