"""Training a density estimator: ``fit`` (NPE) and ``fit_conditional`` (generic).

Training is a function: ``fit(estimator, theta, x, beta, weights, config) ->
History``. It sets the estimator's standardization on the first fit, records
the trained beta range, and optimizes the weighted objective of
``gbi_npe.objective`` with ``gbi_npe.loop.train_loop`` (Adam, gradient
clipping, a validation split, early stopping with the best weights restored).
It never builds a posterior.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import Any

import numpy as np
import torch

from ._validation import as_beta, as_matrix, as_weights
from .beta import BetaDistribution, TiltedBeta
from .compiling import maybe_compiled
from .config import TrainConfig
from .estimator import ConditionalDensityEstimator
from .loop import History, _check_snapshot_args, resolve_device, train_loop
from .objective import (
    EVAL_CHUNK,
    ContinuousBetaNLL,
    GridValidationNLL,
    LogWeightsFn,
    WeightedNLL,
    call_log_weights_fn,
    normalize_log_weights,
)

#: ``(file, seconds between writes)`` of a training snapshot, or ``None``.
Snapshot = tuple["str | os.PathLike[str]", float] | None

#: temperatures drawn to set the beta-feature standardization of a distribution.
_BETA_STATS_DRAWS = 4096
#: ``TrainConfig.beta_sampling="ess"``: temperatures the ESS is tabulated on, and
#: the tilt's floor (relative to the best-supported temperature): no temperature
#: of the distribution is drawn at less than this share of its rate.
ESS_TILT_BETAS = 32
ESS_TILT_FLOOR = 0.1


def _split(
    n: int, fraction: float, rng: np.random.Generator, groups: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, validation) index arrays; validation has round(fraction * n) rows.

    With ``groups`` (n,), whole groups go to one side: round(fraction * G) of
    the G groups are held out.
    """
    if groups is not None:
        labels, inverse = np.unique(groups, return_inverse=True)
        _, val_groups = _split(labels.size, fraction, rng)
        held_out = np.zeros(labels.size, dtype=bool)
        held_out[val_groups] = True
        rows = held_out[inverse]
        return np.flatnonzero(~rows), np.flatnonzero(rows)
    n_val = round(fraction * n)
    if fraction > 0:
        n_val = max(1, n_val)
    if n - n_val < 1:
        raise ValueError(
            f"{n} rows are too few for validation_fraction={fraction}: no training rows left"
        )
    order = rng.permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _check_estimator(estimator: Any, beta_conditioned: bool) -> ConditionalDensityEstimator:
    if not isinstance(estimator, ConditionalDensityEstimator):
        raise ValueError(
            f"estimator must be a ConditionalDensityEstimator (make_npe / "
            f"make_conditional_estimator), got {type(estimator).__name__}"
        )
    if beta_conditioned and not estimator.beta_conditioned:
        raise ValueError("fit needs a beta-conditioned estimator (make_npe); use fit_conditional")
    if not beta_conditioned and estimator.beta_conditioned:
        raise ValueError("this estimator is beta-conditioned: train it with fit(..., beta, ...)")
    return estimator


def _check_inputs(
    estimator: ConditionalDensityEstimator, inputs: Any, context: Any, names: tuple[str, str]
) -> tuple[np.ndarray, np.ndarray]:
    spec = estimator.spec
    inputs_a = as_matrix(names[0], inputs, spec.inputs_features)
    context_a = as_matrix(names[1], context, spec.x_features)
    if inputs_a.shape[0] != context_a.shape[0]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of rows, got "
            f"{inputs_a.shape[0]} and {context_a.shape[0]}"
        )
    if inputs_a.shape[0] > 1:
        constant = np.flatnonzero(np.ptp(inputs_a, axis=0) == 0)
        if constant.size:
            raise ValueError(
                f"{names[0]} columns {constant.tolist()} are constant in the training data: a "
                "density over them is degenerate; drop them before building the estimator"
            )
    if spec.bounded:
        low, high = np.asarray(spec.low), np.asarray(spec.high)
        outside = ~((inputs_a >= low) & (inputs_a <= high)).all(axis=1)
        if outside.any():
            raise ValueError(
                f"{names[0]} must lie inside the box [low, high]; {int(outside.sum())} row(s) "
                f"do not (first: row {int(np.flatnonzero(outside)[0])})"
            )
    return inputs_a, context_a


def _digest(*parts: Any) -> str:
    """A hash of the training data (arrays by dtype, shape and bytes; other parts by repr)."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(f"{part.dtype}{part.shape}".encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
        h.update(b"|")
    return h.hexdigest()


def _tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(array, dtype=np.float64), device=device)


@torch.no_grad()
def _embedded_once(estimator: ConditionalDensityEstimator, x: torch.Tensor) -> torch.Tensor:
    """``context_encoder.embed_x`` of every row of x (n, d_x), in chunks: (n, e) float64."""
    encoder = estimator.context_encoder
    return torch.cat(
        [encoder.embed_x(x[i : i + EVAL_CHUNK]) for i in range(0, x.shape[0], EVAL_CHUNK)]
    ).to(torch.float64)


def _fit_rows(
    estimator: ConditionalDensityEstimator,
    inputs: np.ndarray,
    x: np.ndarray,
    beta: np.ndarray | None,
    log_weights: np.ndarray | None,
    config: TrainConfig,
    snapshot: Snapshot = None,
) -> History:
    """Fixed rows: per-row context (and beta), optional per-row weights."""
    n = inputs.shape[0]
    split_seq, loop_seq = np.random.SeedSequence(config.seed).spawn(2)
    train, val = _split(n, config.validation_fraction, np.random.default_rng(split_seq))
    if log_weights is not None and beta is not None and n > 1 and np.unique(beta).size == n:
        raise ValueError(
            "weights were given but every row has a different beta, so normalizing them per "
            "beta makes them all equal; for a continuous beta pass a BetaDistribution and "
            "log_weights_fn instead"
        )
    device = resolve_device(config.device)
    estimator.to(device)
    if not estimator.is_fitted:
        stats_weights = np.exp(normalize_log_weights(log_weights, beta, n))
        estimator.set_standardization(inputs, x, stats_weights, beta)
    if beta is not None:
        estimator.record_beta_range(float(beta.min()), float(beta.max()))
    # a fixed x embedding runs once for all rows (as in ``_fit_continuous``)
    x_embedded = beta is not None and estimator.x_embedding_fixed
    x_read = _embedded_once(estimator, _tensor(x, device)).cpu().numpy() if x_embedded else x
    log_fn = estimator.log_prob_embedded if x_embedded else estimator.log_prob
    log_prob = maybe_compiled(log_fn, config.compile, "the training loss", device)

    def rows(index: np.ndarray, drop_empty: bool) -> WeightedNLL:
        context = x_read[index] if beta is None else np.c_[x_read[index], beta[index]]
        lw = normalize_log_weights(
            None if log_weights is None else log_weights[index],
            None if beta is None else beta[index],
            index.size,
            drop_empty=drop_empty,
        )
        return WeightedNLL(
            estimator,
            _tensor(inputs[index], device),
            _tensor(context, device),
            lw,
            log_prob,
            x_embedded=x_embedded,
        )

    objective = rows(train, drop_empty=False)
    validation = rows(val, drop_empty=True) if val.size else None
    return train_loop(
        estimator,
        objective.batch_loss,
        objective.n,
        config,
        None if validation is None else validation.full_loss,
        rng=np.random.default_rng(loop_seq),
        n_validation=val.size,
        description="fit",
        **_snapshot_args(snapshot, inputs, x, beta, log_weights),
    )


def _check_snapshot(snapshot: Any, seconds: Any) -> Snapshot:
    _check_snapshot_args(snapshot, seconds)
    return None if snapshot is None else (snapshot, seconds)


def _snapshot_args(snapshot: Snapshot, *data: Any) -> dict[str, Any]:
    """``train_loop``'s snapshot arguments: the file, its interval and a hash of ``data``."""
    if snapshot is None:
        return {}
    path, seconds = snapshot
    return {"snapshot": path, "snapshot_seconds": seconds, "data_digest": _digest(*data)}


def _fit_continuous(
    estimator: ConditionalDensityEstimator,
    theta: np.ndarray,
    x: np.ndarray,
    distribution: BetaDistribution,
    log_weights_fn: LogWeightsFn | None,
    config: TrainConfig,
    groups: np.ndarray | None = None,
    snapshot: Snapshot = None,
) -> History:
    """Base pairs with beta drawn per minibatch item, weights from ``log_weights_fn``."""
    n = theta.shape[0]
    split_seq, loop_seq, beta_seq = np.random.SeedSequence(config.seed).spawn(3)
    train, val = _split(n, config.validation_fraction, np.random.default_rng(split_seq), groups)
    grid = np.asarray(distribution.validation_grid(config.validation_betas), dtype=np.float64)
    everyone = np.arange(n)
    grid_log_weights = None
    if log_weights_fn is not None:
        grid_log_weights = np.stack(
            [call_log_weights_fn(log_weights_fn, np.full(n, b), everyone) for b in grid]
        )
    device = resolve_device(config.device)
    estimator.to(device)
    if not estimator.is_fitted:
        # Standardize under the tempered targets, averaged over the beta grid.
        if grid_log_weights is None:
            stats_weights = None
        else:
            stats_weights = np.mean(
                [np.exp(normalize_log_weights(lw, None, n)) for lw in grid_log_weights], axis=0
            )
        beta_draws = distribution.sample(_BETA_STATS_DRAWS, np.random.default_rng(beta_seq))
        estimator.set_standardization(theta, x, stats_weights, np.asarray(beta_draws))
    estimator.record_beta_range(float(distribution.low), float(distribution.high))
    estimator.clear_temperature_pieces()  # training goes on from the main weights
    theta_t, x_t = _tensor(theta, device), _tensor(x, device)
    train_distribution = distribution
    if config.beta_sampling == "ess" and log_weights_fn is not None:
        cap = None if groups is None else np.unique(groups[train]).size
        train_distribution = ess_tilted(distribution, log_weights_fn, train, cap)
    # A fixed x embedding is computed once, not in every step and epoch (the costly
    # part of a stencil): the training and validation losses then read the embedded x.
    loss_x, loss_log_prob = x_t, estimator.log_prob
    x_embedded = estimator.x_embedding_fixed
    if x_embedded:
        loss_x, loss_log_prob = _embedded_once(estimator, x_t), estimator.log_prob_embedded
    objective = ContinuousBetaNLL(
        estimator,
        theta_t,
        loss_x,
        train,
        train_distribution,
        log_weights_fn,
        config.pair_sampling,
        maybe_compiled(loss_log_prob, config.compile, "the training loss", device),
    )
    validation = None
    if val.size:
        validation = GridValidationNLL(
            estimator,
            theta_t[torch.as_tensor(val, device=device)],
            loss_x[torch.as_tensor(val, device=device)],
            grid,
            None if grid_log_weights is None else grid_log_weights[:, val],
            x_embedded=x_embedded,
        )
    part_states: dict[int, dict[str, torch.Tensor]] = {}
    history = train_loop(
        estimator,
        objective.batch_loss,
        train.size,
        config,
        validation,
        rng=np.random.default_rng(loop_seq),
        n_validation=val.size,
        description="fit",
        validation_parts=None
        if validation is None
        else (lambda: validation.last_losses, tuple(f"beta={b:.4g}" for b in grid)),
        part_states=part_states,
        **_snapshot_args(
            snapshot,
            theta,
            x,
            np.array([distribution.low, distribution.high]),
            grid,
            grid_log_weights,
            groups,
        ),
    )
    if validation is None:
        return history
    ess = (
        np.full(grid.size, float(val.size))
        if grid_log_weights is None
        else np.array([_kish_ess(grid_log_weights[g, val]) for g in range(grid.size)])
    )
    history = dataclasses.replace(history, validation_part_ess=tuple(ess.tolist()))
    if part_states:
        best, own = history.best_epoch, history.validation_part_best_epochs
        sources = trusted_sources(ess, config.per_temperature_min_ess)
        epochs = [best if j is None else own[j] for j in sources]
        states = [None if j is None else part_states[j] for j in sources]
        history = dataclasses.replace(history, validation_part_best_epochs=tuple(epochs))
        estimator.set_temperature_pieces(
            grid, [None if epochs[g] == best else states[g] for g in range(grid.size)]
        )
    return history


def trusted_sources(ess: np.ndarray, min_ess: float) -> list[int | None]:
    """For each validation temperature, whose epoch it takes.

    A part with at least ``min_ess`` effective pairs takes its own; one with
    fewer takes that of the nearest part that has enough (on a tie, the larger
    beta: grids are ordered by beta); with no such part, None (the main weights).

    Example:
        >>> trusted_sources(np.array([5.0, 50, 150, 120, 30]), 100)
        [2, 2, 2, 3, 3]
        >>> trusted_sources(np.array([150.0, 5, 150]), 100), trusted_sources(np.ones(2), 100)
        ([0, 2, 2], [None, None])
    """
    ess = np.asarray(ess, dtype=np.float64)
    trusted = np.flatnonzero(ess >= min_ess)
    if trusted.size == 0:
        return [None] * ess.size
    out: list[int | None] = []
    for g in range(ess.size):
        distance = np.abs(trusted - g)
        nearest = trusted[distance == distance.min()]
        out.append(int(nearest.max()))
    return out


def ess_tilted(
    distribution: BetaDistribution,
    log_weights_fn: LogWeightsFn,
    index: np.ndarray,
    cap: float | None = None,
) -> TiltedBeta:
    """``distribution`` tilted by the pairs' effective number at each temperature.

    The density becomes ``∝ p(beta) (eps + (1 - eps) ESS(beta) / max ESS)``,
    ``ESS`` being Kish's effective sample size of the SNIS weights of the base
    pairs ``index`` at ``ESS_TILT_BETAS`` temperatures of the distribution's
    validation grid, at most ``cap``; ``eps = ESS_TILT_FLOOR``
    (``TrainConfig.beta_sampling``).

    Args:
        distribution: the temperatures' distribution.
        log_weights_fn: see ``objective.LogWeightsFn``.
        index: base indices of the training pairs (n,), int.
        cap: the most effective pairs a temperature counts; ``fit`` passes the
            number of groups (distinct x) among the training pairs, so that
            pairs sharing an x (gbi's contrastive pool: each x with M prior
            draws) do not count as M + 1 observations, and the temperatures
            they serve do not crowd the others out. ``None``: no cap.
    """
    grid = np.asarray(distribution.validation_grid(ESS_TILT_BETAS), dtype=np.float64)
    ess = np.array(
        [
            _kish_ess(call_log_weights_fn(log_weights_fn, np.full(index.size, b), index))
            for b in grid
        ]
    )
    if cap is not None:
        ess = np.minimum(ess, cap)
    if not ess.max() > 0:
        raise ValueError("every training weight is zero at every temperature: nothing to tilt by")
    tilt = ESS_TILT_FLOOR + (1.0 - ESS_TILT_FLOOR) * ess / ess.max()
    return TiltedBeta(distribution, tuple(grid.tolist()), tuple(tilt.tolist()))


def _kish_ess(log_weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` of unnormalized log weights."""
    finite = log_weights[np.isfinite(log_weights)]
    if finite.size == 0:
        return 0.0
    w = np.exp(finite - finite.max())
    return float(w.sum() ** 2 / np.sum(w * w))


def fit(
    estimator: ConditionalDensityEstimator,
    theta: np.ndarray,
    x: np.ndarray,
    beta: float | np.ndarray | BetaDistribution,
    weights: np.ndarray | None = None,
    config: TrainConfig | None = None,
    *,
    log_weights: np.ndarray | None = None,
    log_weights_fn: LogWeightsFn | None = None,
    groups: np.ndarray | None = None,
    snapshot: str | os.PathLike[str] | None = None,
    snapshot_seconds: float = 60.0,
) -> History:
    """Train a beta-conditioned estimator q(theta | x, beta) by weighted maximum likelihood.

    Two ways to give the temperatures:

    * **Fixed rows**: ``beta`` a float or an array (N,), one per pair, with
      optional ``weights`` (N,) (non-negative) or ``log_weights`` (N,). The
      weights are normalized globally within each distinct beta (SNIS), each
      beta group keeping the mass share ``n_beta / N``; the minibatch loss is
      ``(N / b) sum_j w~_j l_j`` (Prop. B.2), never renormalized in the batch.
      The validation rows' weights are normalized the same way over the
      validation rows. Without weights this is the plain mean NLL (Route A).
    * **Continuous beta** (Route B): ``beta`` a ``BetaDistribution`` (e.g.
      ``LogUniformBeta(0.1, 2.0)``) and ``log_weights_fn(beta (b,), index (b,))
      -> (b,)``, the log of the SNIS weight of base pair ``index[j]`` at
      temperature ``beta[j]``, normalized over the whole base set (all N pairs)
      for that beta. Plain numpy arrays in and out. Each minibatch item gets a
      fresh beta; the loss is ``(N / b) sum_j exp(log_w(beta_j, i_j))
      l_j(beta_j)``, unbiased for ``E_beta[sum_i w~_{beta,i} l_i(beta)]``. The
      validation loss averages, over ``config.validation_betas`` fixed
      temperatures spanning the range (``distribution.validation_grid``), the
      weighted NLL of the validation pairs, with the weights renormalized
      over the validation pairs for each of those temperatures and each
      temperature counted in proportion to its validation ESS (see
      ``GridValidationNLL``: a collapsed temperature must not drive early
      stopping with its noise).

    On the first fit the standardization of theta (after the box logit), x and
    the beta features is set from the training data, weighted by the
    normalized weights (averaged over the validation grid for a continuous
    beta); later fits keep it and continue training. The trained beta range is
    recorded (widened by later fits). The estimator stays on the training
    device.

    Args:
        estimator: from ``make_npe``.
        theta: parameters, shape (N, theta_dim), inside the prior box if any.
        x: observations, shape (N, x_dim), finite.
        beta: a float, an array (N,) of positive temperatures, or a
            ``BetaDistribution``.
        weights: non-negative weights (N,) (fixed rows only).
        config: a ``TrainConfig`` (default ``TrainConfig()``).
        log_weights: log weights (N,) instead of ``weights`` (``-inf`` = 0).
        log_weights_fn: the weight callable for a ``BetaDistribution`` (without
            it all pairs weigh the same).
        groups: for a ``BetaDistribution``, an integer label per pair (N,):
            pairs with one label (e.g. several thetas with the same x) are
            kept on one side of the validation split, so validation sees only
            unseen groups. ``None``: every pair on its own.
        snapshot: a file where training saves its state at the end of an
            epoch, at most every ``snapshot_seconds``; a call with a snapshot
            of the same training (same data, settings and network) continues
            from it and ends with the weights an uninterrupted call would
            give. Removed when training ends. ``None``: no snapshots.
        snapshot_seconds: least wall time between two snapshot writes.

    Returns:
        The training History.

    Raises:
        ValueError: malformed data, weights or configuration.
        SnapshotMismatch: ``snapshot`` holds another training's state.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    estimator = _check_estimator(estimator, beta_conditioned=True)
    snap = _check_snapshot(snapshot, snapshot_seconds)
    theta_a, x_a = _check_inputs(estimator, theta, x, ("theta", "x"))
    n = theta_a.shape[0]
    if isinstance(beta, BetaDistribution):
        if weights is not None or log_weights is not None:
            raise ValueError(
                "with a beta distribution the weights depend on beta: pass log_weights_fn, "
                "not weights / log_weights"
            )
        if log_weights_fn is not None and not callable(log_weights_fn):
            raise ValueError("log_weights_fn must be callable")
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (n,) or not np.issubdtype(groups.dtype, np.integer):
                raise ValueError(
                    f"groups must be an integer array of shape ({n},), got {groups.dtype} "
                    f"{groups.shape}"
                )
        return _fit_continuous(estimator, theta_a, x_a, beta, log_weights_fn, config, groups, snap)
    if groups is not None:
        raise ValueError("groups needs beta to be a BetaDistribution")
    if config.per_temperature:
        raise ValueError(
            "per_temperature needs beta to be a BetaDistribution: it stops training per "
            "temperature of the validation grid, which fixed betas per row do not have"
        )
    if log_weights_fn is not None:
        raise ValueError(
            "log_weights_fn needs beta to be a BetaDistribution (e.g. LogUniformBeta(0.1, 2.0)); "
            "for fixed betas pass weights or log_weights"
        )
    beta_a = as_beta(beta, n)
    lw = as_weights(weights, log_weights, n)
    return _fit_rows(estimator, theta_a, x_a, beta_a, lw, config, snap)


def fit_conditional(
    estimator: ConditionalDensityEstimator,
    inputs: np.ndarray,
    context: np.ndarray,
    weights: np.ndarray | None = None,
    config: TrainConfig | None = None,
    *,
    log_weights: np.ndarray | None = None,
    snapshot: str | os.PathLike[str] | None = None,
    snapshot_seconds: float = 60.0,
) -> History:
    """Train a generic estimator q(inputs | context) (e.g. an NLE q(x | theta)).

    The weights, if any, are normalized over the training rows; the minibatch
    loss is ``(N / b) sum_j w~_j l_j``. Otherwise as ``fit`` with fixed rows.

    Args:
        estimator: from ``make_conditional_estimator``.
        inputs: shape (N, inputs_dim).
        context: shape (N, context_dim).
        weights: non-negative (N,), or ``None``.
        config: a ``TrainConfig``.
        log_weights: log weights (N,) instead of ``weights``.
        snapshot: a file for resumable training (see ``fit``).
        snapshot_seconds: least wall time between two snapshot writes.

    Returns:
        The training History.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    estimator = _check_estimator(estimator, beta_conditioned=False)
    snap = _check_snapshot(snapshot, snapshot_seconds)
    inputs_a, context_a = _check_inputs(estimator, inputs, context, ("inputs", "context"))
    lw = as_weights(weights, log_weights, inputs_a.shape[0])
    return _fit_rows(estimator, inputs_a, context_a, None, lw, config, snap)
