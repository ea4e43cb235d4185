"""Frozen, self-validating configurations.

Every configuration is a frozen dataclass that checks its fields on
construction and serializes to a plain JSON-able ``dict`` (``to_dict``) so that
a saved model can be rebuilt from its header alone (``from_dict``).

Density configurations double as constructors: the estimator assembles its
core by looking the configuration's type up in a table of builders
(``gbi_npe.estimator``), so a new density family is one config class plus one
module with ``log_prob`` and ``sample_from_noise``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

SPLINE_KINDS = ("coupling", "autoregressive")
EMBEDDING_KINDS = ("identity", "mlp", "stencil", "custom")
BETA_FEATURES = ("log_beta", "beta", "inv_beta")
#: how Route B's objective picks the base pairs of a minibatch (TrainConfig.pair_sampling).
PAIR_SAMPLING = ("uniform", "weights")
#: where Route B's objective draws the temperatures of a minibatch (TrainConfig.beta_sampling).
BETA_SAMPLING = ("distribution", "ess")
#: how the step size moves during training (TrainConfig.lr_schedule).
LR_SCHEDULES = ("plateau", "cosine")


def check_tail_threshold(value: object) -> float | None:
    """``value`` as a float if it is a finite number > 0, None for None.

    The one check of ``tail_threshold`` (``EmbeddingConfig`` and
    ``transforms.feature_stats``).

    Raises:
        ValueError: a bool, a non-number, or a number that is not finite and > 0.
    """
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value > 0)
    ):
        raise ValueError(f"tail_threshold must be a finite number > 0 or None, got {value!r}")
    return float(value)


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_float(
    name: str, value: object, *, low: float, high: float = math.inf, open_low: bool = False
) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    ok = (value > low if open_low else value >= low) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise ValueError(f"{name} must lie in {bracket}{low}, {high}], got {value!r}")


@dataclass(frozen=True)
class SplineFlowConfig:
    """Neural spline flow (rational-quadratic splines from normflows).

    Attributes:
        kind: ``"coupling"`` (fast in both directions) or ``"autoregressive"``
            (one pass for ``log_prob``, ``d`` passes per layer for sampling).
        num_layers: number of spline layers.
        hidden_features: width of each layer's residual conditioner network.
        num_blocks: residual blocks per conditioner network.
        num_bins: spline bins.
        tail_bound: the splines act on ``[-tail_bound, tail_bound]`` (inputs
            are standardized); outside they are the identity (linear tails).
        dropout: dropout probability inside the conditioner networks.
        unconditional_transform: coupling layers also pass the half they
            condition on through a spline of its own, one per feature, that
            ignores the context (normflows' default; Durkan et al. 2019, eqs.
            4-6). Off by default: it doubles the spline work of every step
            (a training step of the default two-parameter flow costs 1.4x as
            long with it) and the alternating masks transform every feature
            conditionally anyway, as sbi's NSF does. Files written before this
            field existed were built with it and load with it. Coupling
            layers only (an autoregressive layer has no untouched half).
    """

    kind: Literal["coupling", "autoregressive"] = "coupling"
    num_layers: int = 5
    hidden_features: int = 64
    num_blocks: int = 2
    num_bins: int = 8
    tail_bound: float = 4.0
    dropout: float = 0.0
    unconditional_transform: bool = False

    def __post_init__(self) -> None:
        if self.kind not in SPLINE_KINDS:
            raise ValueError(f"kind must be one of {SPLINE_KINDS}, got {self.kind!r}")
        _check_int("num_layers", self.num_layers, 1)
        _check_int("hidden_features", self.hidden_features, 1)
        _check_int("num_blocks", self.num_blocks, 1)
        _check_int("num_bins", self.num_bins, 2)
        _check_float("tail_bound", self.tail_bound, low=0.0, open_low=True)
        _check_float("dropout", self.dropout, low=0.0, high=0.99)
        if not isinstance(self.unconditional_transform, bool):
            raise ValueError(
                f"unconditional_transform must be a bool, got {self.unconditional_transform!r}"
            )
        if self.unconditional_transform and self.kind != "coupling":
            raise ValueError(
                f"unconditional_transform applies to coupling layers only, not kind={self.kind!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"type": "spline_flow", **asdict(self)}


@dataclass(frozen=True)
class MDNConfig:
    """Mixture density network: a mixture of full-covariance Gaussians.

    Attributes:
        num_components: mixture components.
        hidden_features: width of the hidden layers.
        num_hidden_layers: number of hidden layers of the parameter network.
        min_scale: lower bound on the diagonal of each component's Cholesky
            factor, in standardized units (keeps the likelihood bounded).
    """

    num_components: int = 10
    hidden_features: int = 64
    num_hidden_layers: int = 2
    min_scale: float = 1e-3

    def __post_init__(self) -> None:
        _check_int("num_components", self.num_components, 1)
        _check_int("hidden_features", self.hidden_features, 1)
        _check_int("num_hidden_layers", self.num_hidden_layers, 1)
        _check_float("min_scale", self.min_scale, low=0.0, high=1.0, open_low=True)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "mdn", **asdict(self)}


DensityConfig = SplineFlowConfig | MDNConfig


def stencil_layout(
    grid: Any, offsets: Any, cyclic: Any = ()
) -> tuple[tuple[int, ...], tuple[tuple[int, ...], ...], tuple[bool, ...]]:
    """Check a stencil's layout of x and return it as tuples.

    Args:
        grid: the shape x has when reshaped (row-major), positive sizes.
        offsets: the cells one local patch reads, one sequence of ``len(grid)``
            ints each.
        cyclic: which grid axes wrap around (empty: none).

    Returns:
        ``(grid, offsets, cyclic)`` as tuples of ints / bools.

    Raises:
        ValueError: a malformed layout.
    """
    try:
        grid = tuple(int(g) for g in grid)
        offsets = tuple(tuple(int(v) for v in o) for o in offsets)
        cyclic = tuple(bool(c) for c in cyclic)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"grid, offsets and cyclic must be sequences of ints / bools: {error}"
        ) from None
    if not grid or any(g < 1 for g in grid):
        raise ValueError(f"a stencil needs a grid of positive sizes, got {grid}")
    if not offsets or any(len(o) != len(grid) for o in offsets):
        raise ValueError(
            f"a stencil needs offsets, each with {len(grid)} entries (one per grid axis), "
            f"got {offsets}"
        )
    if cyclic and len(cyclic) != len(grid):
        raise ValueError(f"cyclic needs {len(grid)} entries (one per grid axis), got {cyclic}")
    return grid, offsets, cyclic


@dataclass(frozen=True)
class EmbeddingConfig:
    """How the (standardized) conditioning variable ``x`` is embedded.

    Attributes:
        kind: ``"identity"``, ``"mlp"``, ``"stencil"`` or ``"custom"`` (a user
            ``torch.nn.Module``; ``make_npe`` sets this when given a module, and
            the module must be passed back when loading: its class is not
            stored, only its weights).
        hidden_features: MLP width (of the stencil's local and head networks too).
        num_layers: MLP hidden layers (of the stencil's local network too).
        output_features: MLP output width; for ``"custom"`` the module's output
            width (found by a dry run when the estimator is built).
        module_name: for ``"custom"``, the module's qualified class name (used
            in error messages only).
        grid: for ``"stencil"``, the shape x has when reshaped (row-major),
            e.g. ``(T + 1, K)`` for a path of T + 1 states of K sites.
        offsets: for ``"stencil"``, the cells one local patch reads, as
            offsets from its anchor cell, one tuple of ``len(grid)`` ints each
            (e.g. a state's neighbours and the next state of one site).
        cyclic: for ``"stencil"``, which grid axes wrap around (default: none).
        tail_threshold: robust units past which x's heavy-tailed features
            (a simulator that sometimes blows up) are compressed
            logarithmically before any embedding reads them
            (``gbi_npe.transforms``); ``None``: 3. Only the standardization's
            fit reads it: a saved model keeps the thresholds it was fitted with.

    A stencil embedding (``gbi_npe.StencilEmbedding``) applies one small network to
    every patch of x (the anchor's position along the non-cyclic axes is an
    input too) and averages the results: the right shape when the likelihood is
    a sum of local terms, as for a Markov chain or a lattice model, and far
    fewer parameters to fit than an MLP on the whole of x.
    """

    kind: Literal["identity", "mlp", "stencil", "custom"] = "identity"
    hidden_features: int = 64
    num_layers: int = 2
    output_features: int = 16
    module_name: str = ""
    grid: tuple[int, ...] = ()
    offsets: tuple[tuple[int, ...], ...] = ()
    cyclic: tuple[bool, ...] = ()
    tail_threshold: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in EMBEDDING_KINDS:
            raise ValueError(f"kind must be one of {EMBEDDING_KINDS}, got {self.kind!r}")
        check_tail_threshold(self.tail_threshold)
        _check_int("hidden_features", self.hidden_features, 1)
        _check_int("num_layers", self.num_layers, 1)
        _check_int("output_features", self.output_features, 1)
        if self.kind != "stencil":
            if len(self.grid) or len(self.offsets) or len(self.cyclic):
                raise ValueError("grid, offsets and cyclic apply only to kind='stencil'")
            for name in ("grid", "offsets", "cyclic"):  # () also where JSON gave []
                object.__setattr__(self, name, ())
            return
        # JSON turns tuples into lists: store tuples again
        grid, offsets, cyclic = stencil_layout(self.grid, self.offsets, self.cyclic)
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "cyclic", cyclic)

    def check_x_features(self, x_features: int, source: str = "x") -> None:
        """Check that a stencil's grid has one cell per value of x (other kinds: no-op).

        Args:
            x_features: d_x.
            source: what x is, for the message.

        Raises:
            ValueError: the grid has another number of cells.
        """
        if self.kind != "stencil":
            return
        cells = math.prod(self.grid)
        if cells != x_features:
            raise ValueError(
                f"the stencil grid {self.grid} has {cells} cells but {source} has "
                f"{x_features} values"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class EstimatorSpec:
    """Everything needed to rebuild an estimator (saved in the file header).

    The estimator is a density of ``inputs`` (``inputs_features`` columns)
    given a raw ``context`` (``context_features`` columns). When
    ``beta_features`` is non-empty the estimator is beta-conditioned (the NPE
    case): the last context column is ``beta`` and the others are ``x``.

    Attributes:
        inputs_features: dimension of the modelled variable (theta for NPE).
        context_features: number of raw context columns (``x_dim + 1`` for NPE).
        density: the density family and its hyperparameters.
        embedding: the embedding of the ``x`` part of the context.
        beta_features: features of beta fed to the network, from
            ``("log_beta", "beta", "inv_beta")``; empty for a generic estimator.
        low: lower corners of the input box (``None``: unbounded inputs).
        high: upper corners of the input box.
    """

    inputs_features: int
    context_features: int
    density: DensityConfig = SplineFlowConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    beta_features: tuple[str, ...] = ()
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        _check_int("inputs_features", self.inputs_features, 1)
        min_context = 2 if self.beta_features else 1
        _check_int("context_features", self.context_features, min_context)
        if not isinstance(self.density, SplineFlowConfig | MDNConfig):
            raise ValueError(
                f"density must be a SplineFlowConfig or MDNConfig, got {type(self.density)}"
            )
        if not isinstance(self.embedding, EmbeddingConfig):
            raise ValueError(f"embedding must be an EmbeddingConfig, got {type(self.embedding)}")
        object.__setattr__(self, "beta_features", tuple(self.beta_features))
        unknown = [f for f in self.beta_features if f not in BETA_FEATURES]
        if unknown or len(set(self.beta_features)) != len(self.beta_features):
            raise ValueError(
                f"beta_features must be distinct names from {BETA_FEATURES}, "
                f"got {self.beta_features!r}"
            )
        if (self.low is None) != (self.high is None):
            raise ValueError("low and high must be given together (a box) or both be None")
        if self.low is not None and self.high is not None:
            low = tuple(float(v) for v in self.low)
            high = tuple(float(v) for v in self.high)
            d = self.inputs_features
            if len(low) != d or len(high) != d:
                raise ValueError(
                    f"low and high must have {d} entries (inputs_features), "
                    f"got {len(low)} and {len(high)}"
                )
            bad = [
                i
                for i in range(d)
                if not (math.isfinite(low[i]) and math.isfinite(high[i]) and low[i] < high[i])
            ]
            if bad:
                raise ValueError(
                    f"the box needs finite low < high in every coordinate; coordinates {bad} "
                    f"violate it (low={low}, high={high})"
                )
            object.__setattr__(self, "low", low)
            object.__setattr__(self, "high", high)

    @property
    def beta_conditioned(self) -> bool:
        return bool(self.beta_features)

    @property
    def x_features(self) -> int:
        """Columns of the context that are ``x`` (all but beta)."""
        return self.context_features - (1 if self.beta_conditioned else 0)

    @property
    def bounded(self) -> bool:
        return self.low is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs_features": self.inputs_features,
            "context_features": self.context_features,
            "density": self.density.to_dict(),
            "embedding": self.embedding.to_dict(),
            "beta_features": list(self.beta_features),
            "low": None if self.low is None else list(self.low),
            "high": None if self.high is None else list(self.high),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EstimatorSpec:
        """Inverse of ``to_dict``; raises ValueError on unknown or missing fields."""
        try:
            return cls(
                inputs_features=data["inputs_features"],
                context_features=data["context_features"],
                density=density_config_from_dict(data["density"]),
                embedding=_from_fields(EmbeddingConfig, data["embedding"]),
                beta_features=tuple(data["beta_features"]),
                low=None if data["low"] is None else tuple(data["low"]),
                high=None if data["high"] is None else tuple(data["high"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"malformed estimator spec {data!r}: {error!r}") from error


def _from_fields(cls: type, data: dict[str, Any]) -> Any:
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}")
    return cls(**data)


def density_config_from_dict(data: dict[str, Any]) -> DensityConfig:
    """Rebuild a density config from ``config.to_dict()``."""
    data = dict(data)
    kind = data.pop("type", None)
    if kind == "spline_flow":
        # written before the field existed: coupling flows were built with the transform
        data.setdefault("unconditional_transform", data.get("kind", "coupling") == "coupling")
        return _from_fields(SplineFlowConfig, data)
    if kind == "mdn":
        return _from_fields(MDNConfig, data)
    raise ValueError(f"unknown density type {kind!r}; expected 'spline_flow' or 'mdn'")


@dataclass(frozen=True)
class TrainConfig:
    """Settings of ``fit`` / ``fit_conditional`` / ``train_loop``.

    Attributes:
        batch_size: minibatch size ``b``.
        learning_rate: Adam step size.
        max_epochs: upper bound on the number of epochs.
        patience: stop after this many epochs without a new best validation
            loss (then the best weights are restored).
        lr_patience: every this many epochs without a new best validation
            loss, the learning rate is multiplied by ``lr_decay`` (down to
            ``learning_rate * min_lr_factor``); ``None``: a constant rate. A
            plateau of a noisy validation curve (Route B's SNIS weights make
            every gradient noisy) is often noise in the weights that a smaller
            step removes, not the end of learning.
        lr_schedule: ``"plateau"`` (the rate moves only by ``lr_patience``;
            constant without it) or ``"cosine"``: the rate falls along half a
            cosine from ``learning_rate`` at the first step to
            ``learning_rate * min_lr_factor`` at the last step of
            ``max_epochs`` epochs (Loshchilov & Hutter 2017, without restarts),
            so ``max_epochs`` is the training's budget; ``patience`` may still
            stop it sooner. Not combined with ``lr_patience``.
        lr_decay: factor of each decay, in (0, 1).
        smoothing: span, in epochs, of an exponential moving average of the
            validation loss (weight ``2 / (smoothing + 1)`` on the newest
            epoch). ``patience`` and ``lr_patience`` count epochs without a
            new best of this average, so one lucky epoch of a noisy curve
            does not end training while the trend still falls. The weights
            kept are still those of the best single epoch. 1: no smoothing.
        min_lr_factor: the rate never falls below ``learning_rate`` times this.
        validation_fraction: share of the training rows (or base pairs) held
            out for validation; 0 disables validation and early stopping.
        clip_grad_norm: gradients are clipped to this global norm
            (``None``: no clipping).
        validation_betas: size of the fixed beta grid on which the validation
            loss is evaluated when beta is drawn from a distribution.
        pair_sampling: with beta drawn from a distribution and SNIS weights
            (Route B), how a minibatch's base pairs are picked: ``"uniform"``
            (each pair once per epoch, its weight scaling its loss) or
            ``"weights"`` (pairs drawn in proportion to their weights at a
            nearby temperature, each loss scaled only by the small remaining
            ratio; same objective, a less noisy gradient where the weights
            are uneven). See ``objective.ContinuousBetaNLL``. Measured on
            the benchmark tasks (10k simulations, the same weights): no gain
            on two_moons and gaussian_mixture, worse on slcp and lorenz96,
            whose low temperatures, with few effective pairs, see those
            pairs more often per epoch and overfit sooner.
        beta_sampling: with beta drawn from a distribution and SNIS weights
            (Route B), where the minibatch temperatures come from:
            ``"distribution"`` (the distribution given to ``fit``) or
            ``"ess"``: that distribution tilted towards the temperatures
            the training pairs support, density ``∝ p(beta) (eps + (1 -
            eps) ESS(beta) / max ESS)`` with ``ESS`` Kish's effective number
            of training pairs at ``beta`` (tabulated on
            ``train.ESS_TILT_BETAS`` temperatures) and ``eps =
            train.ESS_TILT_FLOOR``. The same weighting
            across temperatures as the validation loss's (inverse variance,
            ``objective.GridValidationNLL``), so training minimizes the
            objective that early stopping judges. A network flexible enough
            to fit every temperature has the same optimum either way; a
            finite one spends fewer steps memorizing the few pairs that
            carry a small beta (slcp at 100k simulations: 72 effective pairs
            of 100,000 at beta 0.1, a validation loss rising from epoch 20)
            and more where the data are informative. The validation grid,
            the temperatures judged and the model's range are unchanged.
        per_temperature: early stopping per temperature, for a beta-conditioned
            NPE trained on a beta distribution (``fit`` with a
            ``BetaDistribution``). Each temperature of the validation grid
            keeps the weights of its own best epoch, the epoch where its
            validation loss's ``smoothing`` average is lowest (the raw curve
            of a small beta rests on few effective pairs, and its single
            lowest epoch is often luck: two_moons at beta 0.1 picked epoch 5
            of 500 by the raw curve, C2ST 0.71, and 119 by the smoothed one).
            Training stops when no temperature's smoothed loss has improved
            for ``patience`` epochs; the learning rate decays on the same count.
            A temperature whose validation loss rests on fewer than
            ``per_temperature_min_ess`` effective pairs takes the epoch of the
            nearest temperature that has enough (the main weights if none has).
            The returned estimator serves every temperature with the weights
            of the nearest grid point (``set_temperature_pieces``). Where the
            weights leave few effective pairs (small beta) the network
            overfits within a few dozen epochs while large beta keeps
            improving for hundreds; one stopping epoch for all trades one
            against the other. Costs longer training and up to
            ``validation_betas`` weight sets in the model file.
        per_temperature_min_ess: the fewest effective validation pairs (Kish's
            ESS of the part's SNIS weights) on which a temperature may choose
            its own epoch. With fewer, the minimum of its validation curve is
            too noisy to pick an epoch by: on two_moons with NLE weights (about
            10 effective pairs at beta 0.1) it picked epoch 6 of 500, a network
            still in its first broad descent (C2ST 0.67, against 0.56 for the
            same data trained with one stopping epoch). 100 is the usual floor for a usable
            importance-sampling estimate; it is not fitted to results.
        ema_decay: keep an exponential moving average of the weights, updated
            after the ``t``-th optimizer step as ``avg += (1 - d_t) (w - avg)``
            with ``d_t = min(ema_decay, (1 + t) / (10 + t))`` (Polyak
            averaging with a warm-up, so the average never leans on the
            initial weights; 0.998 spans about the last 500 steps once more
            than 4500 are taken, the last tenth of the steps before).
            Validation, the best-epoch snapshot and the returned network use
            the average. ``None``: the raw weights.
        compile: run the training loss through ``torch.compile`` (see
            ``gbi_npe.compiling``): fewer, fused kernels, so a step's
            forward and backward pass run about twice as fast on a CPU
            (two-moons NPE, batch 256, one core: 4.4-6.6 ms against 11-12 ms;
            150 epochs, validation included, 57 s against 103 s), after a
            one-time compilation of about 50 s on a 2-core CPU (cached on
            disk: about a second for later runs of the same shapes).
            Networks of a few large matrix products (lorenz96's stencil
            embedding) gain nothing. Results agree with
            eager training to round-off, not bit for bit; where torch
            cannot compile, training warns and runs eagerly. Not part of a
            snapshot's identity: a training may resume with the other
            setting.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``,
            ``"cuda"`` or ``"cuda:N"``.
        seed: seeds the split, the batch order, beta draws and dropout
            (without touching global random state).
        progress: show a tqdm progress bar over epochs.
    """

    batch_size: int = 256
    learning_rate: float = 1e-3
    max_epochs: int = 200
    patience: int = 20
    lr_patience: int | None = None
    lr_schedule: str = "plateau"
    lr_decay: float = 0.5
    smoothing: int = 1
    min_lr_factor: float = 1.0 / 16.0
    validation_fraction: float = 0.1
    clip_grad_norm: float | None = 5.0
    validation_betas: int = 8
    pair_sampling: str = "uniform"
    beta_sampling: str = "distribution"
    per_temperature: bool = False
    per_temperature_min_ess: float = 100.0
    ema_decay: float | None = None
    compile: bool = False
    device: str = "auto"
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        _check_int("batch_size", self.batch_size, 1)
        _check_float("learning_rate", self.learning_rate, low=0.0, open_low=True)
        _check_int("max_epochs", self.max_epochs, 1)
        _check_int("patience", self.patience, 1)
        if self.lr_patience is not None:
            _check_int("lr_patience", self.lr_patience, 1)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")
        if self.lr_schedule == "cosine" and self.lr_patience is not None:
            raise ValueError(
                "lr_patience decays the rate on plateaus; with lr_schedule='cosine' the "
                "schedule sets it: leave lr_patience None"
            )
        _check_float("lr_decay", self.lr_decay, low=0.0, high=1.0, open_low=True)
        _check_int("smoothing", self.smoothing, 1)
        _check_float("min_lr_factor", self.min_lr_factor, low=0.0, high=1.0, open_low=True)
        _check_float("validation_fraction", self.validation_fraction, low=0.0, high=0.9)
        if self.clip_grad_norm is not None:
            _check_float("clip_grad_norm", self.clip_grad_norm, low=0.0, open_low=True)
        _check_int("validation_betas", self.validation_betas, 1)
        _check_float(
            "per_temperature_min_ess", self.per_temperature_min_ess, low=0.0, open_low=True
        )
        if self.pair_sampling not in PAIR_SAMPLING:
            raise ValueError(
                f"pair_sampling must be one of {PAIR_SAMPLING}, got {self.pair_sampling!r}"
            )
        if self.beta_sampling not in BETA_SAMPLING:
            raise ValueError(
                f"beta_sampling must be one of {BETA_SAMPLING}, got {self.beta_sampling!r}"
            )
        if not isinstance(self.per_temperature, bool):
            raise ValueError(f"per_temperature must be a bool, got {self.per_temperature!r}")
        if self.ema_decay is not None:
            _check_float("ema_decay", self.ema_decay, low=0.0, high=1.0, open_low=True)
            if self.ema_decay == 1.0:
                raise ValueError("ema_decay must lie in (0, 1): 1 would never move the average")
        _check_int("seed", self.seed, 0)
        if not isinstance(self.progress, bool):
            raise ValueError(f"progress must be a bool, got {self.progress!r}")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be a bool, got {self.compile!r}")
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu", "cuda")
            or (self.device.startswith("cuda:") and self.device[5:].isdigit())
        ):
            raise ValueError(
                f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
