"""The training routes: B-NLE, B-NRE (SNIS-weighted NPE), A (Langevin synthesis) and auto.

Each stage writes its result to the run directory as soon as it is done, and
is skipped when that result is already there (see ``gbi.rundir``).

Route B (paper §4.2, Algorithm 3): simulate the base set, train the NLE or
NRE, compute per-pair scores ``s_i`` (log-likelihood or log-ratio), turn them
into globally normalized SNIS weights ``(beta - 1) s_i`` for any beta, and
train the beta-conditioned NPE with beta drawn log-uniformly over the range.

Route A (paper §4.1, Algorithm 2): train the joint score model on the base
set, move base pairs to the tempered joint of freshly drawn betas by annealed
Langevin dynamics, and train the NPE on the synthesized (theta, x, beta).

auto (the paper's "future work", §7): start from Route B-NRE, check the
weights on a grid of temperature cells (relative ESS and PSIS k-hat); keep the
SNIS-weighted base set where they are healthy and replace it by Route A pairs
in the cells where they fail, then train one NPE on the union.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch

import gbi_npe
import gbi_surrogates
import gbi_tempering
from gbi.config import RunConfig
from gbi.problem import Problem
from gbi.rundir import RunDirectory
from gbi.simulation import BaseSet, derive_seed
from gbi_npe.transforms import Standardize, feature_stats

#: temperatures at which the report gives weight diagnostics (the paper's grid + range ends).
REPORT_BETAS = (0.1, 0.3, 0.5, 0.7, 0.9, 1.0, 1.1, 1.3, 1.5, 2.0)

Log = Callable[[str], None]


def train_config(
    config: RunConfig, stream: str, max_epochs: int, progress: bool
) -> gbi_npe.TrainConfig:
    # The NPE's validation curve is noisy (SNIS-weighted, many temperatures):
    # judge progress on its moving average over patience / 4 epochs, so one lucky
    # epoch does not stop a curve whose trend still falls, and halve the step
    # size every patience / 4 epochs without progress rather than stopping at
    # the first plateau. The surrogates decay in stages of their own.
    npe = stream == "npe"
    cosine = npe and config.posterior_epochs is not None
    smoothing = max(1, config.patience // 4) if npe else 1
    return gbi_npe.TrainConfig(
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        max_epochs=max_epochs,
        patience=config.patience,
        lr_patience=smoothing if npe and not cosine else None,
        lr_schedule="cosine" if cosine else "plateau",
        smoothing=smoothing,
        pair_sampling=config.pair_sampling if npe else "uniform",
        beta_sampling=config.beta_sampling if npe else "distribution",
        ema_decay=config.ema_decay if npe else None,
        per_temperature=config.per_temperature and npe,
        # the posterior network, the NLE (gbi-npe's fit) and NRE-A's loss; not
        # the score model
        compile=config.compile and stream in ("npe", "nle", "nre"),
        device=config.device,
        seed=derive_seed(config.seed, stream) % (2**31),
        progress=progress,
    )


def _density(config: RunConfig) -> gbi_npe.SplineFlowConfig | gbi_npe.MDNConfig:
    if config.flow == "mdn":
        return gbi_npe.MDNConfig(hidden_features=config.hidden_features)
    return gbi_npe.SplineFlowConfig(
        kind="autoregressive" if config.flow == "nsf-ar" else "coupling",
        num_layers=config.flow_layers,
        hidden_features=config.hidden_features,
    )


def embedding_config(
    config: RunConfig, problem: Problem, x_dim: int | None = None
) -> gbi_npe.EmbeddingConfig:
    """How the posterior network and the NRE read x (``config.embedding``, ``"auto"`` resolved).

    Args:
        config: the run's settings.
        problem: the problem (its ``x_stencil``).
        x_dim: d_x where known (a built-in task's), to check a stencil's grid
            against; None: not checked here.

    Raises:
        ValueError: ``"stencil"`` for a problem without ``x_stencil``, or a stencil
            whose grid does not have ``x_dim`` cells.
    """
    embedding = _embedding_kind(config, problem, x_dim)
    if config.x_tail_threshold is None:
        return embedding
    return dataclasses.replace(embedding, tail_threshold=float(config.x_tail_threshold))


def _embedding_kind(
    config: RunConfig, problem: Problem, x_dim: int | None
) -> gbi_npe.EmbeddingConfig:
    kind = config.embedding
    if kind == "auto":
        kind = "stencil" if problem.x_stencil is not None else "identity"
    if kind == "identity":
        if config.posterior_embedding not in (None, "own"):
            raise ValueError(
                f"posterior_embedding={config.posterior_embedding!r} needs an x embedding to "
                f"share, but {problem.name} has no stencil and embedding='auto' reads its x as "
                "it is: use embedding='mlp' (gbi train --embedding mlp) or "
                "posterior_embedding='own'"
            )
        return gbi_npe.EmbeddingConfig()
    if kind == "mlp":
        return gbi_npe.EmbeddingConfig(
            kind="mlp",
            hidden_features=config.hidden_features,
            output_features=config.embedding_features,
        )
    embedding = problem.stencil_embedding(config.hidden_features, config.embedding_features)
    if x_dim is not None:
        check_x_width(embedding, problem, x_dim)
    return embedding


def check_x_width(embedding: gbi_npe.EmbeddingConfig, problem: Problem, x_dim: int) -> None:
    """Refuse a stencil embedding whose grid does not fit the simulator's x (``x_dim`` wide).

    Raises:
        ValueError: naming the problem, the grid and ``x_dim``.
    """
    embedding.check_x_features(x_dim, f"the x that {problem.name}'s simulator returns")


def report_betas(config: RunConfig) -> np.ndarray:
    low, high = config.beta_range
    return np.array([b for b in REPORT_BETAS if low <= b <= high])


# -- surrogates -----------------------------------------------------------------------

#: the NLE's evidence saves its progress at most this often (seconds)
EVIDENCE_CHECKPOINT_SECONDS = 60.0
_EVIDENCE_PARTIAL = "scores_nle_partial.npz"
#: network trainings save their state at most this often (seconds)
TRAINING_SNAPSHOT_SECONDS = 60.0
POSTERIOR_SNAPSHOT = "posterior_snapshot.pt"


def _snapshotted(run: RunDirectory | None, name: str, what: str, log: Log, train):
    """``train(**snapshot)`` with the run directory's training snapshot ``name``.

    Without a run directory, ``train()``. A snapshot of another training (its
    data changed, e.g. a retrained surrogate upstream) is discarded, with the
    files of its stages, and the network trained from the start.
    """
    if run is None:
        return train()
    snapshot = {"snapshot": run.file(name), "snapshot_seconds": TRAINING_SNAPSHOT_SECONDS}
    found = sorted(run.path.glob(f"{name}*"))  # a staged training may have stage files only
    if found:
        log(f"continuing the {what}'s training from {', '.join(str(f) for f in found)}")
    try:
        return train(**snapshot)
    except gbi_npe.SnapshotMismatch as err:
        log(f"training the {what} from the start: {err}")
        for stale in run.path.glob(f"{name}*"):
            stale.unlink(missing_ok=True)
        return train(**snapshot)


def _seconds(start: float, history: Any) -> float:
    """A training's wall time: since ``start``, or the loop's own clock where larger.

    A training continued from a snapshot counts the epochs of the interrupted
    runs too (``History.seconds`` carries them); this process saw only the rest.
    """
    return max(time.perf_counter() - start, float(history.seconds))


def fit_surrogate(
    kind: str,
    base: BaseSet,
    config: RunConfig,
    run: RunDirectory | None,
    progress: bool,
    log: Log,
    x_embedding: gbi_npe.EmbeddingConfig | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train (or load a finished) NLE, NRE or score model; returns it and its report.

    ``x_embedding`` is how the NRE reads x (default: x itself).
    """
    name = f"surrogate_{kind}.safetensors"
    if run is not None and run.has(name) and run.has(f"surrogate_{kind}.json"):
        log(f"reusing the trained {kind.upper()} in {run.file(name)}")
        model = gbi_surrogates.load_surrogate(run.file(name), device="cpu")
        return model, run.load_json(f"surrogate_{kind}.json")
    log(f"training the {kind.upper()} on {base.theta.shape[0]} simulations")
    if run is not None:  # scores of an earlier model of this kind would be stale
        run.remove(f"scores_{kind}.npz")
        run.remove(_EVIDENCE_PARTIAL)
    tc = train_config(config, kind, config.surrogate_epochs, progress)
    start = time.perf_counter()
    if kind == "nre":
        fit = functools.partial(
            gbi_surrogates.fit_nre,
            config=gbi_surrogates.NREConfig(
                hidden_features=config.surrogate_hidden,
                embedding=x_embedding or gbi_npe.EmbeddingConfig(),
            ),
        )
    elif kind == "nle":
        fit = functools.partial(
            gbi_surrogates.fit_nle,
            config=gbi_surrogates.NLEConfig(
                density=gbi_npe.SplineFlowConfig(hidden_features=config.surrogate_hidden)
            ),
        )
    elif kind == "score":
        fit = functools.partial(
            gbi_surrogates.fit_score,
            config=gbi_surrogates.ScoreConfig(
                hidden_features=config.surrogate_hidden,
                embedding_features=config.surrogate_hidden,
                sigma_min=config.sigma_min,
                sigma_max=config.sigma_max,
                num_sigmas=config.num_sigmas,
            ),
        )
    else:  # pragma: no cover - internal
        raise ValueError(kind)
    model, history = _snapshotted(
        run,
        f"surrogate_{kind}_snapshot.pt",
        kind.upper(),
        log,
        lambda **snapshot: fit(base.theta, base.x, train_config=tc, **snapshot),
    )
    model = model.to("cpu")
    info = {"kind": kind, "history": history.to_dict(), "seconds": _seconds(start, history)}
    info["reached_max_epochs"] = _check_converged(history, f"the {kind.upper()}", tc, log)
    if run is not None:
        model.save(run.file(name))
        run.save_json(f"surrogate_{kind}.json", info)
    return model, info


def scores_of(
    model: Any,
    base: BaseSet,
    config: RunConfig,
    progress: bool = False,
    run: RunDirectory | None = None,
    log: Log | None = None,
) -> tuple[np.ndarray, str]:
    """Per-pair SNIS scores, shape (N,), and their form (``"nle"`` or ``"nre"``).

    The NRE gives log-ratios. The NLE gives log-ratios too, its evidence
    estimated on the first ``config.nle_contrast`` base parameters (prior
    draws; all of them when there are fewer; see
    ``gbi_surrogates.NLE.log_ratio``), or with ``nle_contrast=0`` the paper's
    raw log-likelihoods (``m(x) = 1``), whose weights collapse wherever
    log p(x | theta) spreads with x more than with theta. With a run
    directory the evidence saves its progress there (``scores_nle_partial.npz``,
    every ``EVIDENCE_CHECKPOINT_SECONDS``): an interrupted run continues it.
    """
    if isinstance(model, gbi_surrogates.NRE):
        return model.log_ratio(base.theta, base.x), "nre"
    if config.nle_contrast == 0:
        return model.log_likelihood(base.theta, base.x), "nle"
    contrast = base.theta[: config.nle_contrast]
    resume, checkpoint = None, None
    if run is not None:
        resume = _evidence_progress(run, base.theta.shape[0], contrast.shape[0])
        if resume is not None and log is not None:
            log(f"continuing the evidence after {resume.done} of {contrast.shape[0]} prior draws")
        last_save = time.perf_counter()

        def checkpoint(state: gbi_surrogates.EvidenceProgress) -> None:
            nonlocal last_save
            if time.perf_counter() - last_save >= EVIDENCE_CHECKPOINT_SECONDS:
                run.save_npz(
                    _EVIDENCE_PARTIAL,
                    done=np.array(state.done),
                    log_sum=state.log_sum,
                    contrasts=np.array(contrast.shape[0]),
                )
                last_save = time.perf_counter()

    scores = model.log_ratio(
        base.theta, base.x, contrast, progress=progress, resume=resume, checkpoint=checkpoint
    )
    return scores, "nre"


def _evidence_progress(
    run: RunDirectory, rows: int, contrasts: int
) -> gbi_surrogates.EvidenceProgress | None:
    """The saved progress of this run's NLE evidence, if it fits ``rows`` and ``contrasts``."""
    if not run.has(_EVIDENCE_PARTIAL):
        return None
    stored = run.load_npz(_EVIDENCE_PARTIAL)
    progress = gbi_surrogates.EvidenceProgress(int(stored["done"]), stored["log_sum"])
    if int(stored["contrasts"]) != contrasts:
        return None
    try:
        progress.check(rows, contrasts)
    except ValueError:
        return None
    return progress


# -- Route A synthesis ------------------------------------------------------------------


class ScoreCoordinates:
    """The x coordinates Route A's score model and Langevin synthesis work in.

    A joint score model standardizes x affinely, which fails where
    simulations diverge: a quarter of lorenz96's prior-predictive x exceed
    100 and a few reach 1e100 (their variance overflows). For such x, Route A
    works in ``u = g(x)``, gbi-npe's elementwise tail compression
    (``gbi_npe.transforms.feature_stats``: robust shift and scale of a
    heavy-tailed feature, logarithmic beyond the threshold), and maps the
    synthesized pairs back with ``g^-1``. Because ``g`` is a fixed bijection
    that does not depend on theta, ``p(u | theta) = p(x | theta) |dx/du|``
    and the tempered conditional ``p_beta(theta | x) ∝ prior(theta)
    p(x | theta)^beta`` is the same in either coordinates; only the
    x-marginal of the synthesized pairs differs, which the NPE (a density of
    theta given x) does not learn. Where no feature is heavy-tailed ``g`` is
    the identity (``compressed`` False).

    Args:
        x: the base set's x, shape (n, d_x), finite.
    """

    def __init__(self, x: np.ndarray) -> None:
        shift, scale, tail = feature_stats(x)
        self._map = Standardize(x.shape[1])
        if np.isfinite(tail).any():
            self._map.set(shift, scale, tail)

    @property
    def compressed(self) -> bool:
        """Whether some x feature is heavy-tailed (else ``g`` is the identity)."""
        return self._map.has_tails

    def to_u(self, x: np.ndarray) -> np.ndarray:
        """x (n, d_x) -> u (n, d_x)."""
        if not self.compressed:
            return x
        with torch.no_grad():
            return self._map(torch.as_tensor(x, dtype=torch.float64)).numpy()

    def to_x(self, u: np.ndarray) -> np.ndarray:
        """u (n, d_x) -> x (n, d_x); non-finite where u is."""
        if not self.compressed:
            return u
        with torch.no_grad():
            return self._map.inverse(torch.as_tensor(u, dtype=torch.float64)).numpy()

    def of(self, base: BaseSet) -> BaseSet:
        """The base set with x in these coordinates."""
        return base if not self.compressed else dataclasses.replace(base, x=self.to_u(base.x))

    def info(self) -> dict[str, Any]:
        """What the run report records of these coordinates."""
        if not self.compressed:
            return {"x": "original"}
        tail = self._map.tail.numpy()
        return {
            "x": "tail-compressed (gbi_npe.transforms.feature_stats)",
            "heavy_features": int(np.isfinite(tail).sum()),
            "shift": self._map.shift.tolist(),
            "scale": self._map.scale.tolist(),
            "tail": [None if not np.isfinite(t) else float(t) for t in tail],
        }


def _score_model(base: BaseSet, config: RunConfig, run, progress: bool, log: Log):
    """The joint score model, trained (or reused) in ``ScoreCoordinates`` of the base set.

    Returns ``(model, its report, coordinates, the base set in them)``; the
    synthesis must start from that base set and map back with the coordinates.
    """
    coordinates = ScoreCoordinates(base.x)
    score_base = coordinates.of(base)
    model, model_report = fit_surrogate("score", score_base, config, run, progress, log)
    return model, model_report, coordinates, score_base


def synthesize_pairs(
    score_model: gbi_surrogates.JointScoreModel,
    base: BaseSet,
    problem: Problem,
    beta: np.ndarray,
    config: RunConfig,
    stream: str,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Langevin-synthesize one tempered pair per entry of ``beta`` (n,).

    Runs in the score model's standardized coordinates, where its noise levels
    live (see ``gbi_surrogates.score``), and maps the pairs back.
    """
    rng = np.random.default_rng(derive_seed(config.seed, stream))
    start_rows = rng.integers(0, base.theta.shape[0], size=beta.shape[0])
    t_shift, t_scale = score_model.theta_shift, score_model.theta_scale
    x_shift, x_scale = score_model.x_shift, score_model.x_scale
    scale = np.concatenate([t_scale, x_scale])

    def score_fn(theta_u: np.ndarray, x_u: np.ndarray, sigma: float) -> np.ndarray:
        theta = theta_u * t_scale + t_shift
        x = x_u * x_scale + x_shift
        return score_model.score(theta, x, sigma) * scale

    low_u = (problem.low - t_shift) / t_scale
    high_u = (problem.high - t_shift) / t_scale
    start = time.perf_counter()
    theta_u, x_u, diag = gbi_tempering.synthesize(
        score_fn,
        (base.theta[start_rows] - t_shift) / t_scale,
        (base.x[start_rows] - x_shift) / x_scale,
        beta,
        low_u,
        high_u,
        sigmas=score_model.sigmas,
        steps_per_level=config.langevin_steps,
        step_scale=config.langevin_step_scale,
        seed=rng,
        progress=progress,
    )
    theta = np.clip(theta_u * t_scale + t_shift, problem.low, problem.high)
    x = x_u * x_scale + x_shift
    info = {
        "pairs": int(beta.shape[0]),
        "sigmas": diag.sigmas.tolist(),
        "score_norm_mean": diag.score_norm_mean.tolist(),
        "score_norm_max": diag.score_norm_max.tolist(),
        "reflected_fraction": diag.reflected_fraction.tolist(),
        "seconds": time.perf_counter() - start,
    }
    return theta, x, info


#: the fewest synthesized pairs near beta = 1 that ``_synthesis_check`` judges.
MIN_CHECK_PAIRS = 100


def _synthesis_check(x: np.ndarray, beta: np.ndarray, base_x: np.ndarray) -> dict[str, Any]:
    """How far synthesized pairs near beta = 1 stray from the simulations.

    At beta = 1 the tempered joint is the base joint, so pairs synthesized at
    beta in [0.9, 1.1] should place about 1 % of each x feature outside the
    base set's central 99 % range (its 0.5 % and 99.5 % quantiles). The share
    actually outside, over all features, is ``x_outside_near_beta_1``
    (``None`` with fewer than ``MIN_CHECK_PAIRS`` finite such pairs). With at least
    100 pairs its standard error per feature is at most 1 %, so a share above
    5 % is no sampling accident. Both x in the same (monotone) coordinates.
    """
    near = (beta >= 0.9) & (beta <= 1.1) & np.isfinite(x).all(axis=1)
    result: dict[str, Any] = {"pairs_near_beta_1": int(near.sum()), "x_outside_near_beta_1": None}
    if near.sum() >= MIN_CHECK_PAIRS:
        low, high = np.quantile(base_x, [0.005, 0.995], axis=0)
        rows = x[near]
        result["x_outside_near_beta_1"] = float(np.mean((rows < low) | (rows > high)))
    return result


def log_uniform(rng: np.random.Generator, low: float, high: float, n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(low), np.log(high), size=n))


# -- the NPE ----------------------------------------------------------------------------


def _check_converged(history: Any, what: str, tc: gbi_npe.TrainConfig, log: Log) -> bool:
    """Log when training ran into ``max_epochs`` instead of stopping; returns whether it did."""
    if tc.lr_schedule == "cosine":  # a budget, meant to be spent
        return False
    reached = history.best_epoch is not None and not history.stopped_early
    if reached and len(history.train_loss) >= tc.max_epochs:
        log(
            f"warning: {what} trained for all {tc.max_epochs} epochs without its validation "
            f"loss levelling off (best epoch {history.best_epoch + 1}): it may be underfit; "
            "a larger max_epochs would train it further"
        )
        return True
    return False


def fit_posterior(
    problem: Problem,
    x_dim: int,
    config: RunConfig,
    progress: bool,
    fit_fn: Callable[..., Any],
    log: Log | None = None,
    *,
    embedding: gbi_npe.EmbeddingConfig,
    run: RunDirectory | None = None,
    x_reader: tuple[Any, Any] | None = None,
) -> tuple[gbi_npe.Posterior, dict[str, Any]]:
    """Build the posterior network and train it with ``fit_fn(npe, train_config, **snapshot)``.

    ``x_reader`` (an x embedding and its x standardization, ``surrogate_x_reader``)
    is adopted by the network before training (``config.posterior_embedding``).

    With a run directory, ``snapshot`` names ``POSTERIOR_SNAPSHOT`` there
    (``gbi_npe.fit``'s ``snapshot`` and ``snapshot_seconds``): the training
    saves its state at most every ``TRAINING_SNAPSHOT_SECONDS`` and a rerun
    of an interrupted run continues it to the same network (``_snapshotted``).
    """
    log = log or (lambda _: None)

    def build() -> gbi_npe.ConditionalDensityEstimator:
        npe = gbi_npe.make_npe(
            problem.theta_dim,
            x_dim,
            density=_density(config),
            embedding=embedding,
            low=problem.low,
            high=problem.high,
            seed=derive_seed(config.seed, "npe-init") % (2**31),
        )
        if x_reader is not None:  # before a snapshot loads: its optimizer skips fixed weights
            trainable = config.posterior_embedding == "surrogate-init"
            npe.adopt_x_embedding(*x_reader, trainable=trainable)
        return npe

    tc = train_config(config, "npe", config.posterior_epochs or config.max_epochs, progress)
    start = time.perf_counter()

    def train(**snapshot: Any) -> tuple[gbi_npe.ConditionalDensityEstimator, Any]:
        npe = build()
        return npe, fit_fn(npe, tc, **snapshot)

    npe, history = _snapshotted(run, POSTERIOR_SNAPSHOT, "NPE", log, train)
    npe = npe.to("cpu")
    low, high = config.beta_range
    # The trained range is the configured one, whatever betas the data covered.
    npe.record_beta_range(low, high)
    return gbi_npe.Posterior(npe), {
        "history": history.to_dict(),
        "seconds": _seconds(start, history),
        "reached_max_epochs": _check_converged(history, "the NPE", tc, log),
    }


def snis_weights(
    model: Any,
    base: BaseSet,
    config: RunConfig,
    progress: bool = False,
    run: RunDirectory | None = None,
    log: Log | None = None,
):
    """Globally normalized SNIS weights of the base set from the surrogate's scores.

    With a run directory the scores are saved there once computed (the NLE's
    evidence costs ``simulations * nle_contrast`` evaluations) and reused.
    """
    scores, form = matched_scores(model, base, config, progress, run, log)
    return gbi_tempering.SNISWeights(
        scores,
        form=form,
        method=config.stabilization,
        mixing_weight=config.mixing_weight,
        beta_range=config.beta_range,
    )


def check_low_ratios(weights: Any, log: Log | None = None) -> dict[str, Any]:
    """The Markov check of the matched pairs' log-ratios (``gbi_tempering.low_ratios``).

    Logs a warning where some score lies below ``-(log N + 3)``, where for the
    exact ratio the chance of even one of N pairs is at most 5 %:
    the surrogate misjudges those pairs, and below beta = 1 their weights are
    the largest. Returns ``{"low_ratios": ...}`` for the report; ``{}`` for
    raw log-likelihood scores, which the bound does not cover.
    """
    if weights.form != "nre":
        return {}
    low = gbi_tempering.low_ratios(weights.scores)
    if low.count and log is not None:
        log(
            f"warning: {low.count} of {low.n} matched pairs have a log-ratio below "
            f"-(log N + 3) = {low.floor:.1f} (lowest {low.lowest[0]:.1f}); for the exact "
            "ratio the chance of even one is at most 5 % (Markov's inequality): the "
            "surrogate misjudges them, and below beta = 1 the weights lean on them (see the "
            "relative ESS); another surrogate (route b-nre, or auto) may hold there"
        )
    return {"low_ratios": low.to_dict()}


def matched_scores(
    model: Any,
    base: BaseSet,
    config: RunConfig,
    progress: bool = False,
    run: RunDirectory | None = None,
    log: Log | None = None,
) -> tuple[np.ndarray, str]:
    """``scores_of`` the base pairs, cached in ``run`` (``scores_<kind>.npz``)."""

    def compute() -> tuple[np.ndarray, str]:
        if model.kind == "nle" and config.nle_contrast and log is not None:
            contrasts = min(config.nle_contrast, base.theta.shape[0])
            log(f"estimating the evidence of each x from the NLE ({contrasts} prior draws)")
        return scores_of(model, base, config, progress, run, log)

    scores, form = _cached_scores(run, f"scores_{model.kind}.npz", base.theta.shape[0], compute)
    if run is not None:
        run.remove(_EVIDENCE_PARTIAL)
    return scores, form


def _cached_scores(
    run: RunDirectory | None,
    name: str,
    rows: int,
    compute: Callable[[], tuple[np.ndarray, str]],
) -> tuple[np.ndarray, str]:
    """Per-pair scores and their weight form, from ``run``'s file ``name`` if it
    holds ``rows`` of them, else computed by ``compute()`` and saved there."""
    if run is not None and run.has(name):
        stored = run.load_npz(name)
        if stored["scores"].shape == (rows,) and "form" in stored:
            return stored["scores"], str(stored["form"])
    scores, form = compute()
    if run is not None:
        run.save_npz(name, scores=scores, form=np.array(form))
    return scores, form


def contrastive_pool(
    model: Any,
    base: BaseSet,
    config: RunConfig,
    run: RunDirectory | None = None,
    log: Log | None = None,
    log_evidence: np.ndarray | None = None,
    contrast: int | None = None,
) -> ContrastivePool:
    """Route B's contrastive pool: each x with its own theta and M others.

    Row ``(theta, x_i)`` of the pool is drawn, given ``x_i``, from the mixture
    ``(p(theta | x_i) + M p(theta)) / (M + 1) = p(theta) (r + M) / (M + 1)``
    (its own theta, and M other base parameters: prior draws independent of
    ``x_i``), with ``r = p(x_i | theta) / p(x_i)``. Multiple importance
    sampling (balance heuristic) towards the tempered joint
    ``p(theta) p(x | theta)^beta p(x)^(1 - beta)`` (the NRE form's target,
    whose conditionals are the power posteriors) gives the weight

        w(beta) = r^beta / (r + M),    log w = beta s + c,  c = -log(e^s + M),

    with ``s`` the log-ratio, normalized globally over the pool: the NRE's
    (``model.log_ratio``), or an NLE's likelihood over the evidence
    ``log_evidence`` of each x (``model.log_likelihood(theta, x) - log p̂(x)``,
    the evidence Route B-NLE estimates anyway, ``RunConfig.nle_contrast``). With
    M = 0 it is the NRE form ``r^(beta - 1)``. Where beta is small the power
    posterior is broad, the prior draws cover it and carry the weight; where
    beta >= 1 the own theta does. Measured with exact ratios (1500 x, M = 10),
    the effective sample size at beta = 0.1 rises from 0.004 N to 2.1 N on
    slcp, 0.31 N to 10.8 N on gaussian_mixture and 0.04 N to 0.54 N on
    two_moons, and is no lower than the matched pairs' at any beta. With an
    NRE the small-beta weights rest on its log-ratio for pairs far from the
    data, where a cross-entropy classifier saturates (see
    ``RunConfig.pool_contrast``); an NLE is a normalized density of x, whose
    log-likelihood keeps falling there.

    Args:
        model: the NRE (``log_ratio(theta, x)``), or the NLE
            (``log_likelihood(theta, x)``) with ``log_evidence``.
        base: the base set (N pairs).
        config: its ``pool_contrast`` (M) and ``seed`` choose the partners.
        run: caches the pool's scores (``scores_pool.npz``).
        log: progress messages.
        log_evidence: ``log p̂(x_i)`` of every base x, shape (N,); only with an NLE.
        contrast: M, in place of ``config.pool_contrast`` (route auto's ``auto_pool``).

    Returns:
        a ``ContrastivePool``: the pool (theta, x) as a BaseSet, the x index of
        every row (the validation split keeps an x's rows together), its
        weights, and the check of the surrogate's ratios far from the data
        (``gbi_tempering.pool_excess``) at ``pool_check_betas(config)``.
    """
    n = base.theta.shape[0]
    m = config.pool_contrast if contrast is None else contrast
    if m < 1:
        raise ValueError(f"a contrastive pool needs M >= 1 other parameters per x, got {m}")
    rng = np.random.default_rng(derive_seed(config.seed, "pool") % (2**32))
    # M other base parameters per x (never its own: offsets 1..n-1)
    partners = (np.arange(n)[:, None] + rng.integers(1, n, size=(n, m))) % n
    theta_index = np.concatenate([np.arange(n)[:, None], partners], axis=1).ravel()
    x_index = np.repeat(np.arange(n), m + 1)
    pool = BaseSet(
        theta=base.theta[theta_index],
        x=base.x[x_index],
        n_requested=base.n_requested,
        n_dropped=base.n_dropped,
        n_reused=base.n_reused,
        seconds=base.seconds,
    )

    def compute() -> tuple[np.ndarray, str]:
        if log is not None:
            log(f"scoring the contrastive pool ({n} x {m + 1} pairs)")
        if log_evidence is None:
            return model.log_ratio(pool.theta, pool.x), "pool"
        return model.log_likelihood(pool.theta, pool.x) - log_evidence[x_index], "pool"

    scores, form = _cached_scores(run, "scores_pool.npz", theta_index.shape[0], compute)
    settings = dict(
        method=config.stabilization,
        mixing_weight=config.mixing_weight,
        beta_range=config.beta_range,
    )
    weights = gbi_tempering.SNISWeights(
        scores, offsets=-np.logaddexp(scores, np.log(m)), form=form, **settings
    )
    own = theta_index == x_index  # partners are never an x's own theta
    excess = gbi_tempering.pool_excess(scores[own], scores[~own], pool_check_betas(config))
    if config.pool_relative_ess:
        # the own-theta row of each x is its matched pair
        pair_of_row = np.where(own, x_index, -1)
        weights = _switch_to_matched(weights, scores, pair_of_row, config, settings, log)
    return ContrastivePool(pool, x_index, weights, excess)


class ContrastivePool(NamedTuple):
    """What ``contrastive_pool`` returns."""

    #: the pool's (theta, x) rows, N (M + 1) of them
    pairs: BaseSet
    #: the base x index of every row, shape (rows,)
    groups: np.ndarray
    #: the rows' weights for every beta
    weights: gbi_tempering.SNISWeights | gbi_tempering.SwitchedWeights
    #: the check of the surrogate's ratios far from the data, at ``pool_check_betas``
    excess: gbi_tempering.PoolExcess


def pool_check_betas(config: RunConfig) -> np.ndarray:
    """The temperatures of the pool check: the range's lowest (where the pool
    matters most, and where route auto reads it) and the reported ones above."""
    low, reported = config.beta_range[0], report_betas(config)
    return np.concatenate([[low], reported[reported > low]])


def excess_summary(excess: gbi_tempering.PoolExcess) -> str:
    """One line on the pool check at its lowest temperature."""
    return (
        f"at beta {excess.beta[0]:.3g} the prior draws carry exp({excess.excess[0]:.2f}) "
        f"times their share of the pool's weight (± {excess.standard_error[0]:.2f} in the "
        "exponent; 1 for exact ratios)"
    )


#: temperatures on which ``_switch_to_matched`` looks for the switch
_SWITCH_GRID = 64


def _switch_to_matched(
    pool_weights: gbi_tempering.SNISWeights,
    pool_scores: np.ndarray,
    pair_of_row: np.ndarray,
    config: RunConfig,
    settings: dict[str, Any],
    log: Log | None,
) -> gbi_tempering.SNISWeights | gbi_tempering.SwitchedWeights:
    """The pool's weights below the first temperature (on a log grid over the
    range) at which the matched pairs' own weights ``r^(beta - 1)`` reach
    ``config.pool_relative_ess``, theirs from there on; the pool's alone where
    they never do. ``pool_scores`` and ``pair_of_row`` (shape (rows,)) give each
    pool row's score and, for an own-theta row, the index of its matched pair
    (every pair has exactly one such row), else -1."""
    own_rows = np.flatnonzero(pair_of_row >= 0)
    own_rows = own_rows[np.argsort(pair_of_row[own_rows])]  # ordered by matched pair
    matched = gbi_tempering.SNISWeights(pool_scores[own_rows], form="nre", **settings)
    grid = np.geomspace(*config.beta_range, _SWITCH_GRID)
    enough = matched.diagnostics(grid, warn=False).relative_ess >= config.pool_relative_ess
    if not enough.any():
        if log is not None:
            log(
                f"contrastive pool: the matched pairs' relative ESS stays below "
                f"{config.pool_relative_ess:g} over the whole range; the pool serves every beta"
            )
        return pool_weights
    beta_switch = float(grid[np.argmax(enough)])
    pair = pair_of_row[pool_weights.kept]  # matched pair of each kept pool row, or -1
    matched_position = np.cumsum(matched.kept) - 1
    high_index = np.full(pair.shape, -1, dtype=np.int64)
    keep = pair >= 0
    keep[keep] = matched.kept[pair[keep]]
    high_index[keep] = matched_position[pair[keep]]
    if log is not None:
        log(
            f"contrastive pool: the pool serves beta < {beta_switch:.3g}, the matched pairs "
            f"(relative ESS >= {config.pool_relative_ess:g} from there) the rest"
        )
    return gbi_tempering.SwitchedWeights(pool_weights, matched, beta_switch, high_index)


def route_b(
    kind: str,
    problem: Problem,
    base: BaseSet,
    config: RunConfig,
    run: RunDirectory | None,
    progress: bool,
    log: Log,
    report: dict[str, Any],
    embedding: gbi_npe.EmbeddingConfig,
) -> gbi_npe.Posterior:
    model, report["surrogate"] = fit_surrogate(kind, base, config, run, progress, log, embedding)
    if config.pool_contrast:
        log_evidence = None
        if kind == "nle":  # log p̂(x_i) = log p̂(x_i | theta_i) - its log-ratio
            ratios, _ = matched_scores(model, base, config, progress, run, log)
            log_evidence = model.log_likelihood(base.theta, base.x) - ratios
        pool = contrastive_pool(model, base, config, run, log, log_evidence)
        pairs, groups, weights = pool.pairs, pool.groups, pool.weights
        extra, what = {"pool_rows": int(pairs.theta.shape[0])}, "pool of "
        extra["pool_below_beta"] = getattr(weights, "beta_switch", None)
        extra["pool_excess"] = pool.excess.to_dict()
        log("contrastive pool: " + excess_summary(pool.excess))
        if pool.excess.excess[0] > config.pool_max_excess:
            log(
                f"warning: that is more than exp({config.pool_max_excess:g}): the surrogate's "
                "ratios far from the data are too large, and the small-beta posteriors "
                "trained on the pool will come out too broad (route auto checks this and "
                "falls back to Route A pairs; or train without --pool-contrast)"
            )
    else:
        pairs, groups = base, None
        weights = snis_weights(model, base, config, progress, run, log)
        extra, what = check_low_ratios(weights, log), ""
    diag = weights.diagnostics(report_betas(config))
    report["weights"] = {"form": weights.form, **extra, **diag.to_dict()}
    report["simulations"]["dropped_nonfinite_scores"] = weights.n_dropped
    x_reader = surrogate_x_reader(model, config, log) if kind == "nre" else None
    log(f"training the beta-conditioned NPE (route b-{kind}, {what}{weights.n} weighted pairs)")
    posterior, report["npe"] = fit_weighted_posterior(
        problem,
        pairs,
        weights,
        config,
        progress,
        log,
        groups=groups,
        embedding=embedding,
        run=run,
        x_reader=x_reader,
    )
    return posterior


def fit_weighted_posterior(
    problem: Problem,
    base: BaseSet,
    weights: gbi_tempering.SNISWeights | gbi_tempering.SwitchedWeights,
    config: RunConfig,
    progress: bool,
    log: Log | None = None,
    groups: np.ndarray | None = None,
    *,
    embedding: gbi_npe.EmbeddingConfig,
    run: RunDirectory | None = None,
    x_reader: tuple[Any, Any] | None = None,
) -> tuple[gbi_npe.Posterior, dict[str, Any]]:
    """The NPE on the kept base pairs, beta drawn log-uniformly, SNIS weights per beta.

    ``groups`` (one label per pair) keeps pairs with one label on one side of
    the validation split; ``run`` keeps the training's snapshots and
    ``x_reader`` is the x embedding to adopt (``fit_posterior``).
    """
    kept = weights.kept
    beta_dist = gbi_npe.LogUniformBeta(*config.beta_range)

    def fit_fn(npe, tc, **snapshot):
        return gbi_npe.fit(
            npe,
            base.theta[kept],
            base.x[kept],
            beta_dist,
            log_weights_fn=weights.log_weights_fn,
            config=tc,
            groups=None if groups is None else groups[kept],
            **snapshot,
        )

    return fit_posterior(
        problem,
        base.x.shape[1],
        config,
        progress,
        fit_fn,
        log,
        embedding=embedding,
        run=run,
        x_reader=x_reader,
    )


def surrogate_x_reader(model: Any, config: RunConfig, log: Log) -> tuple[Any, Any] | None:
    """The NRE's trained x embedding and x standardization, for a posterior network
    that reads x as the NRE does (``config.posterior_embedding``); None for ``"own"``."""
    if config.posterior_embedding in (None, "own"):  # None: unresolved, see RunConfig
        return None
    fixed = "fixed" if config.posterior_embedding == "surrogate" else "trained on"
    log(f"the posterior network reads x with the NRE's embedding ({fixed})")
    network = model.network
    return network.embedding, network.standardize.x


def route_a(
    problem: Problem,
    base: BaseSet,
    config: RunConfig,
    run: RunDirectory | None,
    progress: bool,
    log: Log,
    report: dict[str, Any],
    embedding: gbi_npe.EmbeddingConfig,
) -> gbi_npe.Posterior:
    score_model, report["surrogate"], coordinates, score_base = _score_model(
        base, config, run, progress, log
    )
    rng = np.random.default_rng(derive_seed(config.seed, "route-a-beta"))
    beta = log_uniform(rng, *config.beta_range, config.n_synthetic)
    theta, x, beta, report["synthesis"] = _cached_synthesis(
        run,
        "synthesized.npz",
        score_model,
        score_base,
        problem,
        beta,
        config,
        progress,
        log,
        coordinates,
    )
    log(f"training the beta-conditioned NPE (route a, {theta.shape[0]} synthesized pairs)")

    def fit_fn(npe, tc, **snapshot):
        return gbi_npe.fit(npe, theta, x, beta, config=tc, **snapshot)

    posterior, report["npe"] = fit_posterior(
        problem, base.x.shape[1], config, progress, fit_fn, log, embedding=embedding, run=run
    )
    return posterior


def _cached_synthesis(
    run, name, score_model, base, problem, beta, config, progress, log, coordinates
):
    """Synthesized (theta, x, beta, info), finite rows only; saved and reused under ``name``.

    ``base`` and the score model are in ``coordinates``; the pairs returned and
    saved are in the original ones.
    """
    if run is not None and run.has(name):
        log(f"reusing the synthesized pairs in {run.file(name)}")
        stored = run.load_npz(name)
        info = run.load_json(name.replace(".npz", ".json"))
        return stored["theta"], stored["x"], stored["beta"], info
    log(f"Langevin synthesis of {beta.shape[0]} tempered pairs")
    theta, u, info = synthesize_pairs(score_model, base, problem, beta, config, name, progress)
    info |= _synthesis_check(u, beta, base.x)
    if info["x_outside_near_beta_1"] is not None and info["x_outside_near_beta_1"] > 0.05:
        log(
            f"warning: of the pairs synthesized at beta in [0.9, 1.1], where they should "
            f"look like the simulations, {100 * info['x_outside_near_beta_1']:.1f} % of the "
            "x values fall outside the simulations' central 99 % range (about 1 % expected): "
            "the score model or the Langevin synthesis is off (route b-nre needs neither)"
        )
    with np.errstate(over="ignore"):
        x = coordinates.to_x(u)
    info["coordinates"] = coordinates.info()
    finite = np.all(np.isfinite(x), axis=1) & np.all(np.isfinite(theta), axis=1)
    info["dropped_nonfinite"] = int((~finite).sum())
    theta, x, beta = theta[finite], x[finite], beta[finite]
    if run is not None:
        run.save_npz(name, theta=theta, x=x, beta=beta)
        run.save_json(name.replace(".npz", ".json"), info)
    return theta, x, beta, info


def route_auto(
    problem: Problem,
    base: BaseSet,
    config: RunConfig,
    run: RunDirectory | None,
    progress: bool,
    log: Log,
    report: dict[str, Any],
    embedding: gbi_npe.EmbeddingConfig,
) -> gbi_npe.Posterior:
    """Route B-NRE where its weights hold; where they fail, its contrastive pool
    if the NRE's ratios hold far from the data (``config.pool_max_excess``),
    else ``config.auto_fallback``: the failing weights all the same (as route
    b-nre), or Route A pairs."""
    nre, report["surrogate"] = fit_surrogate("nre", base, config, run, progress, log, embedding)
    weights = snis_weights(nre, base, config, run=run)
    report["weights"] = {
        **weights.diagnostics(report_betas(config), warn=False).to_dict(),
        **check_low_ratios(weights, log),
    }
    low, high = config.beta_range
    edges = np.geomspace(low, high, config.auto_grid + 1)
    centers = np.sqrt(edges[:-1] * edges[1:])
    cell_diag = weights.diagnostics(centers, warn=False)
    k_hat = np.nan_to_num(cell_diag.k_hat, nan=0.0)
    # A cell fails only when both diagnostics say so: few effective pairs AND a
    # heavy weight tail. k-hat alone is too strict for a weighted fit that is
    # smoothed across beta: on two_moons at beta = 0.1 (10k, relative ESS 0.07,
    # k-hat 0.75) the B-NRE posterior reached C2ST 0.586 where Route A gave 0.961.
    failing = (cell_diag.relative_ess < config.auto_min_relative_ess) & (
        k_hat > config.auto_max_k_hat
    )
    fallback = "Route A pairs" if config.auto_fallback == "a" else "the SNIS weights all the same"
    decision: dict[str, Any] = {
        "fallback": config.auto_fallback,
        "cells": [
            {
                "beta_low": float(a),
                "beta_high": float(b),
                "beta_center": float(c),
                "relative_ess": float(r),
                "k_hat": float(k),
                "weights_fail": bool(f),
                "route": "a" if f and config.auto_fallback == "a" else "b-nre",
            }
            for a, b, c, r, k, f in zip(
                edges[:-1],
                edges[1:],
                centers,
                cell_diag.relative_ess,
                cell_diag.k_hat,
                failing,
                strict=True,
            )
        ],
        "rule": (
            f"where relative ESS < {config.auto_min_relative_ess} and PSIS k-hat > "
            f"{config.auto_max_k_hat}: "
            + (
                f"the NRE's contrastive pool (M = {config.auto_pool}) if the pool check "
                f"(pool_excess at beta {config.beta_range[0]:g}) <= {config.pool_max_excess:g}, "
                f"else {fallback}"
                if config.auto_pool
                else fallback
            )
            + "; SNIS-weighted base set elsewhere"
        ),
    }
    report["auto"] = decision
    kept = weights.kept
    theta_b, x_b = base.theta[kept], base.x[kept]
    x_reader = surrogate_x_reader(nre, config, log)

    def train_weighted(pairs: BaseSet, pair_weights: Any, groups: Any = None):
        posterior, report["npe"] = fit_weighted_posterior(
            problem,
            pairs,
            pair_weights,
            config,
            progress,
            log,
            groups=groups,
            embedding=embedding,
            run=run,
            x_reader=x_reader,
        )
        return posterior

    if not failing.any():
        decision["summary"] = "the SNIS weights hold over the whole range: pure Route B-NRE"
        log(decision["summary"])
        return train_weighted(base, weights)
    bad = centers[failing]
    cells = ", ".join(
        f"[{a:.3g}, {b:.3g}]" for a, b in zip(edges[:-1][failing], edges[1:][failing], strict=True)
    )
    if config.auto_pool:
        pool = contrastive_pool(nre, base, config, run, log, contrast=config.auto_pool)
        decision["pool_excess"] = pool.excess.to_dict()
        check = excess_summary(pool.excess)
        if pool.excess.excess[0] <= config.pool_max_excess:
            for cell, fails in zip(decision["cells"], failing, strict=True):
                if fails:
                    cell["route"] = "b-nre pool"
            switch = getattr(pool.weights, "beta_switch", None)
            if switch is None:
                served = "every beta"
            elif switch <= config.beta_range[0]:
                served = "no beta (the matched pairs' relative ESS reaches pool_relative_ess)"
            else:
                served = f"beta < {switch:.3g}"
            decision["pool_below_beta"] = switch
            decision["summary"] = (
                f"the SNIS weights fail in {int(failing.sum())} of {config.auto_grid} "
                f"temperature cells (beta in {cells}); the NRE's contrastive pool (M = "
                f"{config.auto_pool}) holds there ({check}, at most exp("
                f"{config.pool_max_excess:g}) allowed) and serves {served}, the matched "
                "pairs the rest"
            )
            log("auto: " + decision["summary"])
            return train_weighted(pool.pairs, pool.weights, pool.groups)
        log(
            f"auto: the NRE's contrastive pool fails the check ({check}, more than exp("
            f"{config.pool_max_excess:g})): {fallback} where the weights fail"
        )
    pool_failed = (
        f"; the NRE's contrastive pool failed its check there (excess "
        f"{pool.excess.excess[0]:.2f} ± {pool.excess.standard_error[0]:.2f} at beta "
        f"{pool.excess.beta[0]:g}, at most {config.pool_max_excess:g} allowed)"
        if config.auto_pool
        else ""
    )
    if config.auto_fallback == "weights":
        decision["summary"] = (
            f"the SNIS weights fail in {int(failing.sum())} of {config.auto_grid} "
            f"temperature cells (beta in {cells}){pool_failed}; trained on the SNIS-weighted "
            "base set at every beta all the same, as route b-nre (auto_fallback 'weights'; "
            "'a' takes Route A pairs there)"
        )
        log("auto: " + decision["summary"])
        return train_weighted(base, weights)
    decision["summary"] = (
        f"Route A pairs for {int(failing.sum())} of {config.auto_grid} temperature cells "
        f"(beta in {cells}), SNIS-weighted base set for the other {int((~failing).sum())}"
        + pool_failed
    )
    log("auto: " + decision["summary"])
    score_model, report["score_surrogate"], coordinates, score_base = _score_model(
        base, config, run, progress, log
    )
    # Each kept base row serves ONE healthy cell, drawn at random, at that cell's
    # centre (fit normalizes the SNIS weights within each centre's rows); every
    # failing cell gets as many Route A pairs as a healthy cell has rows. The
    # NPE so trains on about N (1 + failing / healthy) rows, not N per cell.
    rng = np.random.default_rng(derive_seed(config.seed, "auto-beta"))
    good_cells = np.flatnonzero(~failing)
    n_base = theta_b.shape[0]
    per_cell = max(1, n_base // max(1, good_cells.size))
    beta_a = np.concatenate(
        [
            log_uniform(rng, a, b, per_cell)
            for a, b in zip(edges[:-1][failing], edges[1:][failing], strict=True)
        ]
    )
    theta_a, x_a, beta_a, report["synthesis"] = _cached_synthesis(
        run,
        "synthesized_auto.npz",
        score_model,
        score_base,
        problem,
        beta_a,
        config,
        progress,
        log,
        coordinates,
    )
    if good_cells.size:
        cell_of_row = good_cells[rng.permutation(n_base) % good_cells.size]
        beta_b = centers[cell_of_row]
        lw_good = weights.log_weights(centers[good_cells])  # (healthy cells, n_base)
        row_in_cells = np.searchsorted(good_cells, cell_of_row)
        log_w_b = lw_good[row_in_cells, np.arange(n_base)]
    else:
        beta_b, log_w_b = np.empty(0), np.empty(0)
        theta_b, x_b = theta_b[:0], x_b[:0]
    theta_rows = np.concatenate([theta_b, theta_a])
    x_rows = np.concatenate([x_b, x_a])
    beta_rows = np.concatenate([beta_b, beta_a])
    # every cell failing leaves Route A pairs alone: equal weights, none to pass
    log_w_rows = np.concatenate([log_w_b, np.zeros(beta_a.shape[0])]) if good_cells.size else None
    decision["beta_route_a"] = bad.tolist()
    log(f"training the beta-conditioned NPE (auto, {theta_rows.shape[0]} rows)")
    fixed = {"beta_sampling": "distribution", "per_temperature": False}
    decision["posterior_settings"] = fixed  # what the network trained with, over the config's
    if any(getattr(config, name) != value for name, value in fixed.items()):
        # each row has its beta: no distribution to tilt, no weights per temperature
        log(
            "auto: rows with a fixed beta each train without ESS-tilted temperatures "
            "or per-temperature stopping"
        )
        config = dataclasses.replace(config, **fixed)

    def fit_rows(npe, tc, **snapshot):
        return gbi_npe.fit(
            npe, theta_rows, x_rows, beta_rows, log_weights=log_w_rows, config=tc, **snapshot
        )

    posterior, report["npe"] = fit_posterior(
        problem,
        base.x.shape[1],
        config,
        progress,
        fit_rows,
        log,
        embedding=embedding,
        run=run,
        x_reader=x_reader,
    )
    return posterior
