r"""Neural likelihood estimation: a conditional density p̂(x | theta) (Papamakarios et al. 2019).

The estimator is gbi-npe's generic ``ConditionalDensityEstimator`` with
``inputs = x`` and ``context = theta`` (``make_conditional_estimator``): x is
standardized but not bounded (no box bijection), theta is standardized and
embedded; training is gbi-npe's ``fit_conditional`` (maximum likelihood,
validation split, early stopping), once per stage of ``learning_rate_decay``
(each later call continues from the previous stage's best weights, on the
same split). ``log_likelihood`` includes the Jacobian of the standardization,
so it is a density of x in its original units.

Constant columns of the training x (such as lorenz96's x_0) carry no
information and have no density; they are dropped before training, and
``log_likelihood`` is the density of the other columns (it ignores the
constant ones, which the model assumes sit at their training value).

Example:
    >>> import numpy as np
    >>> from gbi_npe import MDNConfig, TrainConfig
    >>> rng = np.random.default_rng(0)
    >>> theta = rng.uniform(-1, 1, (256, 1)); x = theta + 0.3 * rng.normal(size=(256, 1))
    >>> nle, history = fit_nle(theta, x, NLEConfig(density=MDNConfig(num_components=2)),
    ...                        TrainConfig(max_epochs=2, progress=False))
    >>> nle.log_likelihood(theta[:3], x[0]).shape    # one x against three thetas
    (3,)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from gbi_surrogates import _io
from gbi_surrogates._from_npe import (
    ConditionalDensityEstimator,
    History,
    ModelFileError,
    TrainConfig,
    fit_conditional,
    load_estimator,
    make_conditional_estimator,
    read_header,
    resolve_device,
    save_estimator,
)
from gbi_surrogates._inputs import evaluation_pairs, training_pairs
from gbi_surrogates._runtime import (
    check_train_config,
    evaluate_pairs,
)
from gbi_surrogates._training import make_snapshot, run_in_stages
from gbi_surrogates.config import NLEConfig


@dataclass(frozen=True)
class EvidenceProgress:
    """How far ``NLE.log_ratio`` got through its contrast parameters.

    Attributes:
        done: contrast parameters summed so far (the first ``done`` of them).
        log_sum: ``log sum_{j < done} p̂(x_i | theta'_j)`` per row, shape (n,)
            (``-inf`` everywhere when ``done`` is 0).
    """

    done: int
    log_sum: np.ndarray

    def check(self, rows: int, contrasts: int) -> None:
        """Raise ValueError unless this fits ``rows`` pairs and ``contrasts`` parameters."""
        log_sum = np.asarray(self.log_sum)
        if not 0 <= int(self.done) <= contrasts:
            raise ValueError(f"resume: done must lie in [0, {contrasts}], got {self.done}")
        if log_sum.shape != (rows,) or np.isnan(log_sum).any() or (log_sum == np.inf).any():
            raise ValueError(
                f"resume: log_sum must hold {rows} values, none NaN or +inf; got shape "
                f"{log_sum.shape}"
            )


class NLE:
    """A trained likelihood estimator ``log p̂(x | theta)``.

    Build it with ``fit_nle`` or ``NLE.load``.

    Args:
        estimator: gbi-npe estimator of the modelled x columns given theta.
        config: its ``NLEConfig``.
        x_features: d_x, the full width of x.
        x_columns: the modelled (non-constant) columns of x, increasing.
        x_constant: the values of the other columns, ``{column: value}``.

    Attributes:
        estimator: the gbi-npe ``ConditionalDensityEstimator``.
        config: the ``NLEConfig``.
    """

    kind = "nle"

    def __init__(
        self,
        estimator: ConditionalDensityEstimator,
        config: NLEConfig,
        x_features: int,
        x_columns: tuple[int, ...],
        x_constant: dict[int, float],
    ) -> None:
        self.estimator = estimator.eval()
        self.config = config
        self._x_features = x_features
        self.x_columns = tuple(int(c) for c in x_columns)
        self.x_constant = {int(c): float(v) for c, v in x_constant.items()}

    @property
    def theta_features(self) -> int:
        return self.estimator.context_features

    @property
    def x_features(self) -> int:
        return self._x_features

    @property
    def device(self) -> torch.device:
        return self.estimator.device

    def to(self, device: str | torch.device) -> NLE:
        """Move the estimator to ``device`` (``"auto"`` picks CUDA when present); returns self."""
        device = resolve_device(device) if isinstance(device, str) else device
        self.estimator.to(device)
        return self

    def log_likelihood(
        self, theta: np.ndarray, x: np.ndarray, *, chunk_size: int | None = None
    ) -> np.ndarray:
        """``log p̂(x | theta)``, a density of x in its original units.

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
        columns = list(self.x_columns)
        return evaluate_pairs(
            self.estimator,
            lambda t, u: self.estimator.log_prob(u[:, columns], t),
            theta,
            x,
            (self.theta_features, self.x_features),
            chunk_size,
        )

    def log_ratio(
        self,
        theta: np.ndarray,
        x: np.ndarray,
        contrast_theta: np.ndarray,
        *,
        chunk_size: int | None = None,
        progress: bool = False,
        resume: EvidenceProgress | None = None,
        checkpoint: Callable[[EvidenceProgress], None] | None = None,
    ) -> np.ndarray:
        r"""A likelihood-to-evidence ratio ``log p̂(x_i | theta_i) / p̂(x_i)`` from this NLE.

        The evidence is estimated contrastively: with ``M`` contrast
        parameters ``theta'_j`` drawn from the prior,

        ``p̂(x_i) = (p̂(x_i | theta_i) + sum_j p̂(x_i | theta'_j)) / (M + 1)``.

        The pair's own term keeps the estimate away from zero, so
        ``log r̂ <= log(M + 1)``; the estimate is consistent as M grows. These
        are the scores of the NRE form of the SNIS weights (``m(x) =
        p(x)^(1 - beta)``): they leave every power posterior unchanged but,
        unlike raw log-likelihoods, do not spread with how probable each x is,
        which is what makes NLE-form weights collapse (one x in a dense region
        outweighs all others).

        Costs ``n * (M + 1)`` likelihood evaluations, one contrast parameter
        at a time: a long call can hand its progress to ``checkpoint`` and a
        later call continue from it (``resume``), with the same result.

        Args:
            theta: shape (n, d_theta) or (d_theta,).
            x: shape (n, d_x) or (d_x,) (one of them may be broadcast).
            contrast_theta: prior draws, shape (M, d_theta), M >= 1.
            chunk_size: rows per network call (default: ``rows_per_call``; results
                do not depend on it beyond float32 rounding).
            progress: show a progress bar over the contrast parameters.
            resume: the progress of an earlier call on the same arguments.
            checkpoint: called with the progress after each contrast parameter.

        Returns:
            shape (n,), float64.

        Raises:
            ValueError: wrong dimensions, non-finite values, mismatched rows,
                or a ``resume`` that does not fit these arguments.
        """
        theta_a, x_a = evaluation_pairs(theta, x, self.theta_features, self.x_features)
        contrast = np.asarray(contrast_theta, dtype=np.float64)
        if contrast.ndim != 2 or contrast.shape[0] < 1 or contrast.shape[1] != self.theta_features:
            raise ValueError(
                f"contrast_theta must be prior draws of shape (M, {self.theta_features}) with "
                f"M >= 1, got shape {contrast.shape}"
            )
        n, m = theta_a.shape[0], contrast.shape[0]
        state = EvidenceProgress(0, np.full(n, -np.inf)) if resume is None else resume
        state.check(n, m)
        log_sum = state.log_sum.copy()
        bar = tqdm(
            total=m, initial=state.done, desc="evidence (NLE)", disable=not progress, leave=False
        )
        with bar:
            for done in range(state.done, m):
                term = self.log_likelihood(contrast[done], x_a, chunk_size=chunk_size)
                log_sum = np.logaddexp(log_sum, term)
                bar.update()
                if checkpoint is not None:
                    checkpoint(EvidenceProgress(done + 1, log_sum))
        own = self.log_likelihood(theta_a, x_a, chunk_size=chunk_size)
        return own - (np.logaddexp(own, log_sum) - np.log(m + 1.0))

    def _surrogate_header(self) -> dict[str, Any]:
        header = _io.base_header(self.kind, None)
        del header["metadata"]
        header["config"] = self.config.to_dict()
        header["dims"] = {"theta": self.theta_features, "x": self.x_features}
        header["x_columns"] = list(self.x_columns)
        header["x_constant"] = {str(c): v for c, v in self.x_constant.items()}
        return header

    def save(self, path: str | Path, *, metadata: dict[str, Any] | None = None) -> Path:
        """Write the model to ``path``: a gbi-npe estimator file (``gbi_npe.save_estimator``).

        The surrogate facts go under ``gbi_surrogates`` and the user's
        ``metadata`` under ``user`` in the gbi-npe header's metadata.
        """
        return save_estimator(
            self.estimator,
            path,
            metadata={"gbi_surrogates": self._surrogate_header(), "user": dict(metadata or {})},
        )

    @classmethod
    def load(cls, path: str | Path, *, device: str | torch.device = "cpu") -> NLE:
        """Rebuild a model written by ``save``; the round trip is exact.

        Raises:
            FileNotFoundError: no such file.
            ModelFileError: unreadable, truncated, tampered with, or not an NLE.
        """
        surrogate = read_header(path).get("metadata", {}).get("gbi_surrogates")
        if not isinstance(surrogate, dict) or surrogate.get("kind") != cls.kind:
            found = "another kind" if isinstance(surrogate, dict) else "a plain gbi-npe estimator"
            raise ModelFileError(f"{path} is {found}, not an NLE; use load_surrogate or gbi_npe")
        _io.check_version(path, surrogate.get("format_version"))
        try:
            config = NLEConfig.from_dict(surrogate["config"])
            x_features = int(surrogate["dims"]["x"])
            x_columns = tuple(int(c) for c in surrogate["x_columns"])
            x_constant = {int(c): float(v) for c, v in surrogate["x_constant"].items()}
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ModelFileError(f"{path}: invalid NLE header: {error}") from error
        estimator = load_estimator(path, device=device)
        if (
            len(x_columns) != estimator.inputs_features
            or sorted([*x_columns, *x_constant]) != list(range(x_features))
            or estimator.context_features != int(surrogate["dims"]["theta"])
        ):
            raise ModelFileError(f"{path}: the NLE dimensions disagree with the estimator")
        return cls(estimator, config, x_features, x_columns, x_constant)


def fit_nle(
    theta: np.ndarray,
    x: np.ndarray,
    config: NLEConfig | None = None,
    train_config: TrainConfig | None = None,
    *,
    snapshot: str | os.PathLike[str] | None = None,
    snapshot_seconds: float = 60.0,
) -> tuple[NLE, History]:
    """Train a likelihood estimator on simulated pairs.

    Args:
        theta: shape (n, d_theta), n >= 2.
        x: shape (n, d_x), ``x_i ~ p(x | theta_i)``.
        config: density family and theta embedding (default ``NLEConfig()``: a
            coupling spline flow, identity embedding).
        train_config: gbi-npe ``TrainConfig`` (default ``TrainConfig()``); its
            seed also initializes the weights.
        snapshot: a file for resumable training (see ``fit_nre``).
        snapshot_seconds: least wall time between two snapshot writes.

    Returns:
        The trained ``NLE`` (on the training device) and gbi-npe's History.

    Raises:
        ValueError: malformed data or configuration, or every x column constant.
    """
    config = NLEConfig() if config is None else config
    if not isinstance(config, NLEConfig):
        raise ValueError(f"config must be an NLEConfig, got {type(config).__name__}")
    train_config = check_train_config(train_config)
    theta_a, x_a = training_pairs(theta, x)
    varying = np.ptp(x_a, axis=0) > 0
    if not varying.any():
        raise ValueError("every column of x is constant: there is no likelihood to learn")
    columns = tuple(int(c) for c in np.flatnonzero(varying))
    constant = {int(c): float(x_a[0, c]) for c in np.flatnonzero(~varying)}
    estimator = make_conditional_estimator(
        len(columns),
        theta_a.shape[1],
        density=config.density,
        embedding=config.embedding,
        seed=train_config.seed,
    )
    inputs = x_a[:, list(columns)]
    snap = make_snapshot(snapshot, snapshot_seconds, inputs, theta_a)
    history = run_in_stages(
        estimator,
        lambda stage_config, _label, stage_snapshot: fit_conditional(
            estimator, inputs, theta_a, config=stage_config, **stage_snapshot
        ),
        train_config,
        decay=config.learning_rate_decay,
        description="fit NLE",
        snapshot=snap,
    )
    return NLE(estimator, config, x_a.shape[1], columns, constant), history
