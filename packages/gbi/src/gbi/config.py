"""The configuration of a training run (what ``config.json`` stores)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

ROUTES = ("a", "b-nle", "b-nre", "auto")
STABILIZATIONS = ("none", "truncate", "psis", "defensive")
EMBEDDINGS = ("auto", "identity", "mlp", "stencil")
PAIR_SAMPLINGS = ("uniform", "weights")
BETA_SAMPLINGS = ("distribution", "ess")
POSTERIOR_EMBEDDINGS = ("own", "surrogate", "surrogate-init")
#: what route auto trains on where the matched pairs' weights fail and no pool
#: holds: those weights all the same (route b-nre's training), or Route A pairs
AUTO_FALLBACKS = ("weights", "a")
#: ``posterior_embedding`` of the routes that train an NRE, where x is embedded, unless set
DEFAULT_POSTERIOR_EMBEDDING = "surrogate"
#: the routes that train an NRE (whose x embedding the posterior network can adopt)
_NRE_ROUTES = ("b-nre", "auto")

#: settings read by the posterior network's training alone: two runs that differ
#: only in these share their simulations, surrogates, scores and synthesized
#: pairs (``gbi.train(..., reuse=...)``, ``RunDirectory.adopt``).
POSTERIOR_SETTINGS = frozenset(
    {
        "flow",
        "flow_layers",
        "ema_decay",
        "per_temperature",
        "pair_sampling",
        "beta_sampling",
        "posterior_epochs",
        "posterior_embedding",
    }
)

#: the files and folders of a run directory that come before the posterior
#: network (``*``: every name with that prefix).
UPSTREAM_STAGES = ["simulations", "surrogate_*", "scores_*", "synthesized*"]

#: settings read only once the surrogates are trained, each with the stage files
#: (names as in ``UPSTREAM_STAGES``) computed from it. Two runs that differ only
#: in these share their simulations and surrogates, and every stage that none of
#: the differing settings shapes (``gbi.train(..., reuse=...)``): a new pool,
#: evidence estimate or Route A synthesis costs no new surrogate.
DOWNSTREAM_SETTINGS: dict[str, tuple[str, ...]] = {
    **{name: () for name in sorted(POSTERIOR_SETTINGS)},
    "stabilization": ("synthesized_auto*",),
    "mixing_weight": ("synthesized_auto*",),
    "nle_contrast": ("scores_nle*", "scores_pool*"),
    "pool_contrast": ("scores_pool*",),
    "pool_relative_ess": (),
    "pool_max_excess": (),
    "langevin_steps": ("synthesized*",),
    "langevin_step_scale": ("synthesized*",),
    "synthetic_pairs": ("synthesized*",),
    "auto_grid": ("synthesized_auto*",),
    "auto_min_relative_ess": ("synthesized_auto*",),
    "auto_max_k_hat": ("synthesized_auto*",),
    "auto_pool": ("scores_pool*",),
    "auto_fallback": (),
}

#: what may differ between a run and one whose stages it reuses: the downstream
#: settings, and the route. Every route that trains a surrogate of a kind trains
#: it the same way (the same simulations, a seed per kind, the same settings), so
#: route auto's NRE is route b-nre's and its score model route a's; each stage
#: file is named by what it holds (``surrogate_nre``, ``scores_nre``, ...), and a
#: file that the route reusing it never reads is left unused.
REUSABLE_ACROSS: dict[str, tuple[str, ...]] = {**DOWNSTREAM_SETTINGS, "route": ()}

ROUTE_A_SETTINGS = frozenset(
    {
        "langevin_steps",
        "langevin_step_scale",
        "sigma_min",
        "sigma_max",
        "num_sigmas",
        "synthetic_pairs",
    }
)
_AUTO_ONLY = frozenset(
    {"auto_grid", "auto_min_relative_ess", "auto_max_k_hat", "auto_pool", "auto_fallback"}
)
#: the routes whose posterior network trains on weighted pairs, temperatures
#: drawn from a distribution (route auto: unless it takes Route A pairs)
_WEIGHTED_ROUTES = ("b-nre", "b-nle", "auto")
#: read only where a contrastive pool is trained (``RunConfig.uses_pool``)
POOL_SETTINGS = frozenset({"pool_relative_ess", "pool_max_excess"})

#: the settings each route never reads: two run directories of that route that
#: differ only in these are the same run (one made before such a setting
#: existed resumes, and its stages can be reused).
UNREAD_SETTINGS = {
    "a": frozenset({"nle_contrast", "pool_contrast"}) | _AUTO_ONLY,
    "b-nle": ROUTE_A_SETTINGS | _AUTO_ONLY,
    "b-nre": frozenset({"nle_contrast"}) | ROUTE_A_SETTINGS | _AUTO_ONLY,
    "auto": frozenset({"nle_contrast", "pool_contrast"}),
}

#: settings added after run directories may have been written, with the value
#: such a run used without naming it (``RunDirectory``'s ``legacy``): b-nle's
#: weights were the raw likelihoods before ``nle_contrast`` existed.
LEGACY_SETTINGS = {
    "nle_contrast": 0,
    "pair_sampling": "uniform",
    "beta_sampling": "distribution",
    "pool_contrast": 0,
    "pool_relative_ess": 0.0,
    "pool_max_excess": 2.0,
    "auto_pool": 0,
    "auto_fallback": "a",
    "ema_decay": None,
    "per_temperature": False,
    "posterior_epochs": None,
    "posterior_embedding": "own",
}


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a training run's result.

    Attributes:
        problem: task name (or the user problem's name).
        route: ``"a"``, ``"b-nle"``, ``"b-nre"`` or ``"auto"``.
        simulations: size of the base simulation set.
        beta_range: ``(beta_min, beta_max)`` the posterior is trained on.
        seed: the run's seed (every random stream derives from it).
        chunk_size: simulations per saved chunk.
        stabilization: SNIS stabilization for Route B (``none``, ``truncate``,
            ``psis``, ``defensive``).
        mixing_weight: the defensive mixture's weight on the base set.
        flow: posterior density family: ``"nsf"`` (coupling spline flow),
            ``"nsf-ar"`` (autoregressive) or ``"mdn"``.
        flow_layers, hidden_features: posterior network size.
        embedding: how the posterior network and the NRE read x: ``"identity"`` (x itself),
            ``"mlp"``, ``"stencil"`` (a network on every local patch of x,
            averaged; needs a problem that declares its ``x_stencil``, as
            lorenz96 does) or ``"auto"`` (default: ``"stencil"`` when the
            problem declares one, else ``"identity"``).
        embedding_features: output width of an ``"mlp"`` or ``"stencil"`` embedding.
        x_tail_threshold: where the posterior network and the NRE start to
            compress x's heavy-tailed features (a simulator that sometimes
            blows up, as lorenz96 does), in robust units (median, IQR / 1.349)
            of x: beyond it values are compressed logarithmically
            (``gbi_npe.transforms``). None (default): 3. A larger value keeps
            large but physical values (a trajectory of large amplitude) on their
            linear scale.
        surrogate_hidden: width of the NLE/NRE/score networks.
        batch_size, learning_rate, max_epochs, patience: training of every network.
            Training stops after ``patience`` epochs without validation progress;
            ``max_epochs`` is only a bound (a run that reaches it is reported as
            possibly underfit).
        surrogate_max_epochs: epochs bound for the surrogates (default ``max_epochs``).
        langevin_steps: Langevin steps per noise level (Route A).
        langevin_step_scale: ``eta = step_scale * sigma^2`` (Route A).
        sigma_min, sigma_max, num_sigmas: the score model's noise ladder, in
            standardized units (Route A).
        synthetic_pairs: tempered pairs synthesized for Route A (default: ``simulations``).
        nle_contrast: Route B-NLE turns the NLE's likelihoods into likelihood-to-evidence
            ratios, estimating each x's evidence on this many prior draws (the
            base set's parameters; all of them when the base set is smaller)
            (``gbi_surrogates.NLE.log_ratio``; costs ``simulations * (nle_contrast + 1)``
            NLE evaluations). Their weights leave every power posterior
            unchanged and stay healthy where raw likelihood weights collapse.
            0: the paper's raw likelihood weights.
        pool_contrast: Route B's contrastive pool: each x is paired with its
            own theta and with this many other base parameters (prior draws),
            and the pool is weighted by multiple importance sampling,
            ``w = r^beta / (r + M)`` with ``r`` the surrogate's
            likelihood-to-evidence ratio (the NRE's, or route b-nle's NLE
            likelihood over its estimated evidence, which needs
            ``nle_contrast > 0``; see ``routes.contrastive_pool``). The prior
            draws carry the broad power posteriors of small beta, where the
            matched pairs' weights collapse. The NPE trains on
            ``simulations * (M + 1)`` rows. 0: the matched pairs alone (the
            paper's Route B). At small beta the weights ``r^beta`` of prior
            draws far from the data need the log-ratio to be right there,
            and a cross-entropy classifier's can saturate (two_moons: about
            -11 where the truth is about -2400), which makes small-beta
            posteriors far too broad; ``pool_max_excess`` checks it.
        pool_relative_ess: with a pool, the pool's weights serve only the
            temperatures below the first at which the matched pairs' own
            weights (``r^(beta - 1)``, the own-theta rows) reach this relative
            ESS; from there on the matched pairs serve alone, needing nothing
            of the surrogate far from the data (``gbi_tempering.SwitchedWeights``).
            Default 0.5; 0: the pool at every temperature. Not read without a pool.
        pool_max_excess: the most the pool's prior draws may carry over their
            due share of its weight at the lowest beta, as a log factor
            (``gbi_tempering.pool_excess``: 0 for exact ratios). Beyond it the
            surrogate's ratios far from the data are too large (a saturated
            classifier) and the pool's small-beta posteriors too broad: route
            auto then takes its ``auto_fallback`` instead, routes b-nre and b-nle warn.
        pair_sampling: how Route B's NPE picks each minibatch's base pairs:
            ``"uniform"`` (each pair once per epoch, its SNIS weight scaling
            its loss) or ``"weights"`` (pairs drawn in proportion to their
            weights at a nearby temperature; the same objective with a less
            noisy gradient where the weights are uneven, but no better on the
            benchmark tasks, see ``gbi_npe.TrainConfig``).
        beta_sampling: where Route B's NPE draws its minibatch temperatures:
            ``"distribution"`` (log-uniform on ``beta_range``, the paper's) or
            ``"ess"`` (that distribution tilted towards the temperatures the
            weighted pairs support, in proportion to their effective number,
            with a floor of 0.1 of the best-supported one's rate; the
            validation loss's weighting, see ``gbi_npe.TrainConfig.beta_sampling``).
            Without the tilt, the few effective pairs of small beta are
            drawn as often as the many of beta near 1, and the network
            memorizes them (docs/results.md, findings of session 22).
            None (default): ``"ess"`` for routes ``b-nre``, ``b-nle`` and
            ``auto``, ``"distribution"`` for ``a`` (which trains on pairs
            with a fixed beta each and cannot use it; nor can route auto
            where it takes Route A pairs, and it trains that network with
            log-uniform temperatures there); the stored configuration holds
            the resolved value.
        per_temperature: early stopping per temperature for Route B's
            posterior network: each temperature of its validation grid keeps the weights
            of its own best epoch, and training runs until none improves
            (``gbi_npe.TrainConfig.per_temperature``). Small beta, with few
            effective pairs, overfits early; large beta improves for longer.
            None (default): on for routes ``b-nre``, ``b-nle`` and ``auto``,
            off for ``a`` (which trains on pairs with a fixed beta each and
            cannot use it; nor can route auto where it takes Route A pairs,
            which it then trains without); the stored configuration holds the
            resolved value.
        ema_decay: the posterior network keeps an exponential moving average
            of its weights with this decay per step, and is validated, stopped
            and returned with it (``gbi_npe.TrainConfig.ema_decay``; default
            0.998, about the last 500 steps). None: the raw weights. Together
            with ``per_temperature`` it is the best or within noise of the best
            setting on every benchmark task and beta (docs/results.md).
        posterior_epochs: the posterior network's training budget. None:
            it trains until its validation loss stops improving (``patience``,
            the step size halved on plateaus), at most ``max_epochs`` epochs.
            An int E: E epochs with the step size falling along half a cosine
            from ``learning_rate`` to a sixteenth of it
            (``gbi_npe.TrainConfig.lr_schedule``); the validation still picks
            the returned weights (per temperature with ``per_temperature``),
            and ``patience`` epochs without progress still end it sooner.
        posterior_embedding: how the posterior network of the routes that train
            an NRE (``b-nre`` and ``auto``) reads x where
            x is embedded (``embedding`` ``"mlp"`` or ``"stencil"``): ``"own"``
            (it learns its own embedding), ``"surrogate"`` (the NRE's
            trained embedding and x standardization, kept fixed: the posterior
            network trains its flow alone, with no backward pass through the
            embedding) or ``"surrogate-init"`` (starts from the NRE's and
            trains on). The NRE's embedding is trained to tell (theta, x)
            pairs from shuffled ones, so it keeps what in x bears on theta.
            None (default): ``"surrogate"`` for routes ``b-nre`` and ``auto``
            where x is embedded, ``"own"`` otherwise (``embedding="auto"`` is resolved
            with the problem, by ``gbi.train``: ``resolve_config``); the
            stored configuration holds the resolved value.
        auto_grid: temperatures on which ``auto`` checks the weights.
        auto_min_relative_ess: ``auto`` treats the SNIS weights as failing where
            their relative ESS falls below this ...
        auto_max_k_hat: ... and the PSIS k-hat exceeds this (both must fail).
            There ``auto`` trains on the NRE's contrastive pool if it passes the
            check (``pool_max_excess``), else on ``auto_fallback``.
        auto_pool: M of route auto's contrastive pool (``pool_contrast``);
            0: no pool tried, ``auto_fallback`` wherever the weights fail.
        auto_fallback: what ``auto`` trains on where the weights fail and no pool
            holds: ``"weights"`` (default: the matched pairs' weights all the same,
            as route ``b-nre`` trains) or ``"a"`` (Route A pairs, the paper's
            choice; on two_moons at beta 0.1 they gave C2ST 0.93 where the
            failing weights gave 0.54).
        task_options: options of the built-in task (e.g. ``{"recording": 518290966}``).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"`` (not part of the run's identity).
        compile: train the posterior network and the NLE or NRE through
            ``torch.compile`` (``gbi_npe.TrainConfig.compile``; not the
            score model of routes ``a`` and ``auto``): epochs up to 1.8x faster
            on a CPU, after a one-time compilation of about a minute on 2
            cores (cached on disk: seconds for later runs of the same
            network). Pays off for long trainings. Not part of the run's
            identity: an interrupted run may resume either way.
    """

    problem: str
    route: str = "b-nre"
    simulations: int = 10_000
    beta_range: tuple[float, float] = (0.1, 2.0)
    seed: int = 0
    chunk_size: int = 5_000
    stabilization: str = "none"
    mixing_weight: float = 0.1
    flow: str = "nsf"
    flow_layers: int = 5
    hidden_features: int = 64
    embedding: str = "auto"
    embedding_features: int = 32
    x_tail_threshold: float | None = None
    surrogate_hidden: int = 64
    batch_size: int = 256
    learning_rate: float = 1e-3
    max_epochs: int = 500
    patience: int = 20
    surrogate_max_epochs: int | None = None
    langevin_steps: int = 20
    langevin_step_scale: float = 0.1
    sigma_min: float = 0.01
    sigma_max: float = 1.0
    num_sigmas: int = 15
    synthetic_pairs: int | None = None
    nle_contrast: int = 1000
    pair_sampling: str = "uniform"
    beta_sampling: str | None = None
    pool_contrast: int = 0
    pool_relative_ess: float = 0.5
    pool_max_excess: float = 2.0
    ema_decay: float | None = 0.998
    per_temperature: bool | None = None
    posterior_epochs: int | None = None
    posterior_embedding: str | None = None
    auto_grid: int = 16
    auto_min_relative_ess: float = 0.05
    auto_max_k_hat: float = 0.7
    auto_pool: int = 2
    auto_fallback: str = "weights"
    task_options: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    compile: bool = False

    def __post_init__(self) -> None:
        if self.route not in ROUTES:
            raise ValueError(f"route must be one of {', '.join(ROUTES)}; got {self.route!r}")
        if self.stabilization not in STABILIZATIONS:
            raise ValueError(
                f"stabilization must be one of {', '.join(STABILIZATIONS)}; "
                f"got {self.stabilization!r}"
            )
        if self.embedding not in EMBEDDINGS:
            raise ValueError(
                f"embedding must be one of {', '.join(EMBEDDINGS)}; got {self.embedding!r}"
            )
        if self.flow not in ("nsf", "nsf-ar", "mdn"):
            raise ValueError(f"flow must be 'nsf', 'nsf-ar' or 'mdn'; got {self.flow!r}")
        for name in (
            "simulations",
            "chunk_size",
            "flow_layers",
            "hidden_features",
            "embedding_features",
            "surrogate_hidden",
            "batch_size",
            "max_epochs",
            "patience",
            "langevin_steps",
            "num_sigmas",
            "auto_grid",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(self.nle_contrast, bool) or not isinstance(self.nle_contrast, int):
            raise ValueError(f"nle_contrast must be an int, got {self.nle_contrast!r}")
        if self.nle_contrast < 0:
            raise ValueError(f"nle_contrast must be >= 0, got {self.nle_contrast}")
        if isinstance(self.pool_contrast, bool) or not isinstance(self.pool_contrast, int):
            raise ValueError(f"pool_contrast must be an int, got {self.pool_contrast!r}")
        if self.pool_contrast < 0:
            raise ValueError(f"pool_contrast must be >= 0, got {self.pool_contrast}")
        if self.pool_contrast and self.route not in ("b-nre", "b-nle"):
            raise ValueError(
                "pool_contrast needs route 'b-nre' or 'b-nle' (a surrogate that gives the "
                f"ratio of any pair), got route {self.route!r}"
            )
        if self.pool_contrast and self.route == "b-nle" and not self.nle_contrast:
            raise ValueError(
                "pool_contrast on route 'b-nle' needs nle_contrast > 0 (the pool's weights "
                "are likelihood-to-evidence ratios, and nle_contrast estimates the evidence)"
            )
        if isinstance(self.auto_pool, bool) or not isinstance(self.auto_pool, int):
            raise ValueError(f"auto_pool must be an int, got {self.auto_pool!r}")
        if self.auto_pool < 0:
            raise ValueError(f"auto_pool must be >= 0, got {self.auto_pool}")
        if self.auto_fallback not in AUTO_FALLBACKS:
            raise ValueError(
                f"auto_fallback must be one of {', '.join(AUTO_FALLBACKS)}; "
                f"got {self.auto_fallback!r}"
            )
        if isinstance(self.pool_max_excess, bool) or not (
            isinstance(self.pool_max_excess, (int, float))
            and math.isfinite(self.pool_max_excess)
            and self.pool_max_excess > 0
        ):
            raise ValueError(
                f"pool_max_excess must be a finite number > 0, got {self.pool_max_excess!r}"
            )
        if isinstance(self.pool_relative_ess, bool) or not (
            isinstance(self.pool_relative_ess, (int, float)) and 0 <= self.pool_relative_ess <= 1
        ):
            raise ValueError(
                f"pool_relative_ess must be a number in [0, 1], got {self.pool_relative_ess!r}"
            )
        if self.pair_sampling not in PAIR_SAMPLINGS:
            raise ValueError(
                f"pair_sampling must be one of {', '.join(PAIR_SAMPLINGS)}; "
                f"got {self.pair_sampling!r}"
            )
        if self.beta_sampling is None:
            resolved = "ess" if self.route in _WEIGHTED_ROUTES else "distribution"
            object.__setattr__(self, "beta_sampling", resolved)
        if self.beta_sampling not in BETA_SAMPLINGS:
            raise ValueError(
                f"beta_sampling must be one of {', '.join(BETA_SAMPLINGS)}; "
                f"got {self.beta_sampling!r}"
            )
        if self.beta_sampling == "ess" and self.route not in _WEIGHTED_ROUTES:
            raise ValueError(
                "beta_sampling='ess' needs route 'b-nre', 'b-nle' or 'auto' (route 'a' trains "
                f"on pairs with a fixed beta each), got route {self.route!r}"
            )
        if self.posterior_embedding is None:
            # left None for route b-nre with embedding 'auto': ``resolve_config``
            if self.route not in _NRE_ROUTES or self.embedding == "identity":
                object.__setattr__(self, "posterior_embedding", "own")
            elif self.embedding != "auto":
                object.__setattr__(self, "posterior_embedding", DEFAULT_POSTERIOR_EMBEDDING)
        if (
            self.posterior_embedding is not None
            and self.posterior_embedding not in POSTERIOR_EMBEDDINGS
        ):
            raise ValueError(
                f"posterior_embedding must be one of {', '.join(POSTERIOR_EMBEDDINGS)}; "
                f"got {self.posterior_embedding!r}"
            )
        if self.posterior_embedding not in (None, "own") and self.route not in _NRE_ROUTES:
            raise ValueError(
                f"posterior_embedding={self.posterior_embedding!r} needs route 'b-nre' or "
                f"'auto' (it reuses the NRE's x embedding), got route {self.route!r}"
            )
        if self.posterior_embedding not in (None, "own") and self.embedding == "identity":
            raise ValueError(
                f"posterior_embedding={self.posterior_embedding!r} needs an x embedding to "
                "share, but embedding='identity' reads x as it is: use 'mlp', 'stencil' or "
                "'auto' (a stencil where the task has one)"
            )
        if self.simulations < 20:
            raise ValueError(f"simulations must be at least 20, got {self.simulations}")
        for name in ("surrogate_max_epochs", "synthetic_pairs", "posterior_epochs"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name} must be a positive int or None, got {value!r}")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be a bool, got {self.compile!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        low, high = (float(b) for b in self.beta_range)
        if not (0 < low < high) or low > 1.0 or high < 1.0:
            raise ValueError(
                "beta_range must be (beta_min, beta_max) with 0 < beta_min <= 1 <= beta_max, "
                f"got {self.beta_range}"
            )
        object.__setattr__(self, "beta_range", (low, high))
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate must lie in (0, 1), got {self.learning_rate}")
        if self.x_tail_threshold is not None and not (
            isinstance(self.x_tail_threshold, (int, float))
            and not isinstance(self.x_tail_threshold, bool)
            and math.isfinite(self.x_tail_threshold)
            and self.x_tail_threshold > 0
        ):
            raise ValueError(
                "x_tail_threshold must be a finite number > 0 or None, "
                f"got {self.x_tail_threshold!r}"
            )
        if not 0 < self.mixing_weight < 1:
            raise ValueError(f"mixing_weight must lie in (0, 1), got {self.mixing_weight}")
        if not 0 < self.langevin_step_scale < 1:
            raise ValueError(
                f"langevin_step_scale must lie in (0, 1), got {self.langevin_step_scale}"
            )
        if not 0 < self.sigma_min <= self.sigma_max:
            raise ValueError("need 0 < sigma_min <= sigma_max")
        if self.ema_decay is not None and (
            isinstance(self.ema_decay, bool)
            or not isinstance(self.ema_decay, int | float)
            or not 0 < self.ema_decay < 1
        ):
            raise ValueError(f"ema_decay must lie in (0, 1) or be None, got {self.ema_decay!r}")
        if self.per_temperature is None:
            object.__setattr__(self, "per_temperature", self.route in _WEIGHTED_ROUTES)
        if not isinstance(self.per_temperature, bool):
            raise ValueError(f"per_temperature must be a bool, got {self.per_temperature!r}")
        if self.per_temperature and self.route not in _WEIGHTED_ROUTES:
            raise ValueError(
                "per_temperature needs route 'b-nre', 'b-nle' or 'auto' (route 'a' trains "
                f"on pairs with a fixed beta each), got route {self.route!r}"
            )
        if not 0 < self.auto_min_relative_ess < 1:
            raise ValueError("auto_min_relative_ess must lie in (0, 1)")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["beta_range"] = list(self.beta_range)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown run settings: {', '.join(sorted(unknown))}")
        data = dict(data)
        if "beta_range" in data:
            data["beta_range"] = tuple(data["beta_range"])
        return cls(**data)

    @property
    def unread_settings(self) -> frozenset[str]:
        """The settings this run never reads: its route's (``UNREAD_SETTINGS``), the
        pool's without a pool, and Route A's on route auto that never takes its pairs."""
        unread = UNREAD_SETTINGS[self.route]
        if self.route == "auto" and self.auto_fallback != "a":
            unread |= ROUTE_A_SETTINGS
        return unread if self.uses_pool else unread | POOL_SETTINGS

    @property
    def uses_pool(self) -> bool:
        """Whether a contrastive pool may be trained: routes b-nre and b-nle with
        ``pool_contrast``, route auto with ``auto_pool``."""
        return bool(self.auto_pool if self.route == "auto" else self.pool_contrast)

    @property
    def surrogate_epochs(self) -> int:
        return self.surrogate_max_epochs or self.max_epochs

    @property
    def n_synthetic(self) -> int:
        return self.synthetic_pairs or self.simulations
