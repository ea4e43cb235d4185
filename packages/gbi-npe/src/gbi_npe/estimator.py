"""Conditional density estimators: the generic contract and the NPE case.

``ConditionalDensityEstimator`` is a density of ``inputs`` given ``context``:

    log_prob(inputs (b, d), context (b, c)) -> (b,)
    sample(n, context (m, c), generator)    -> (m, n, d)

It is assembled from three parts: an ``InputTransform`` (optional box logit
and standardization), a ``ContextEncoder`` (standardization, embedding, beta
features) and a core density (``SplineFlow`` or ``MixtureDensityNetwork``)
picked by the type of the density config (``CORE_BUILDERS``).

The NPE case (``make_npe``) is the same object with inputs = theta and
context = ``[x, beta]``; the generic case (``make_conditional_estimator``)
serves e.g. an NLE (inputs = x, context = theta). Tensors in and out are
float64; the networks run in float32.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from .config import (
    DensityConfig,
    EmbeddingConfig,
    EstimatorSpec,
    MDNConfig,
    SplineFlowConfig,
)
from .context import ContextEncoder, custom_output_features
from .flows import SplineFlow
from .mdn import MixtureDensityNetwork
from .transforms import (
    InputTransform,
    feature_stats,
    shared_feature_stats,
    standardization_stats,
)

CoreBuilder = Callable[[int, int, DensityConfig], nn.Module]

#: density config type -> constructor ``(features, context_features, config) -> core``.
CORE_BUILDERS: dict[type, CoreBuilder] = {
    SplineFlowConfig: SplineFlow,
    MDNConfig: MixtureDensityNetwork,
}

#: rows pushed through the network at once when sampling.
DEFAULT_CHUNK_ROWS = 1 << 18


class _Piece(nn.Module):
    """Another set of trained weights of an estimator's context encoder and core."""

    def __init__(self, context_encoder: nn.Module, core: nn.Module) -> None:
        super().__init__()
        self.context_encoder = context_encoder
        self.core = core


class ConditionalDensityEstimator(nn.Module):
    """q(inputs | context), with fixed transforms around a learned core.

    Build it with ``make_npe`` or ``make_conditional_estimator`` (or directly
    from an ``EstimatorSpec``); train it with ``gbi_npe.fit`` /
    ``gbi_npe.fit_conditional``, which also set the standardization.

    Args:
        spec: dimensions, density, embedding, beta features, box.
        embedding_net: the user module when ``spec.embedding.kind == "custom"``.

    Attributes:
        spec: the ``EstimatorSpec`` (saved in file headers).
        input_transform: box logit + standardization of the inputs.
        context_encoder: raw context -> network features.
        core: the learned density of standardized inputs.
        pieces: other trained weights of (context_encoder, core), each serving
            a range of temperatures (``set_temperature_pieces``); empty for
            one set of weights, the usual case.
    """

    def __init__(self, spec: EstimatorSpec, embedding_net: nn.Module | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.input_transform = InputTransform(spec.inputs_features, spec.low, spec.high)
        self.context_encoder = ContextEncoder(spec, embedding_net)
        builder = CORE_BUILDERS[type(spec.density)]
        self.core = builder(
            spec.inputs_features, self.context_encoder.output_features, spec.density
        )
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("beta_bounds", torch.full((2,), math.nan, dtype=torch.float64))
        self.pieces = nn.ModuleList()
        # set by ``adopt_x_embedding``: x's standardization is not refitted
        self._x_standardization_adopted = False

    # -- facts -------------------------------------------------------------------------
    @property
    def inputs_features(self) -> int:
        return self.spec.inputs_features

    @property
    def context_features(self) -> int:
        return self.spec.context_features

    @property
    def beta_conditioned(self) -> bool:
        return self.spec.beta_conditioned

    @property
    def is_fitted(self) -> bool:
        """True once the standardization has been set (by a first ``fit``)."""
        return bool(self.fitted)

    @property
    def x_embedding_fixed(self) -> bool:
        """True when x's embedding has weights and none of them trains (an
        adopted embedding, ``adopt_x_embedding(..., trainable=False)``): a
        beta-conditioned training then embeds its x once (``log_prob_embedded``)."""
        params = list(self.context_encoder.embedding.parameters())
        return bool(params) and not any(p.requires_grad for p in params)

    @property
    def beta_range(self) -> tuple[float, float] | None:
        """(beta_min, beta_max) seen in training, or ``None`` (not trained / not beta)."""
        low, high = (float(v) for v in self.beta_bounds)
        if math.isnan(low):
            return None
        return low, high

    @property
    def device(self) -> torch.device:
        return self.beta_bounds.device

    # -- standardization -----------------------------------------------------------------
    @torch.no_grad()
    def set_standardization(
        self,
        inputs: np.ndarray,
        context: np.ndarray,
        weights: np.ndarray | None = None,
        beta_sample: np.ndarray | None = None,
    ) -> None:
        """Set the standardization from (weighted) training data and mark as fitted.

        Args:
            inputs: shape (N, d), inside the box if there is one.
            context: shape (N, x_features): the ``x`` part of the context only.
            weights: shape (N,), non-negative (normalized here), or ``None``.
            beta_sample: temperatures representative of training (k,), for the
                beta-feature statistics; required iff beta-conditioned.
        """
        device = self.device
        unbounded = self.input_transform.unbounded(
            torch.as_tensor(inputs, dtype=torch.float64, device=device)
        )
        # Heavy-tailed features (a simulator that sometimes blows up) are
        # standardized robustly and compressed in their tails (``feature_stats``).
        self.input_transform.standardize.set(*feature_stats(unbounded.cpu().numpy(), weights))
        # A stencil embedding reads x as one quantity on a grid: one shared scale.
        x_stats = shared_feature_stats if self.spec.embedding.kind == "stencil" else feature_stats
        if not self._x_standardization_adopted:
            self.context_encoder.x_standardize.set(
                *x_stats(context, weights, tail_threshold=self.spec.embedding.tail_threshold)
            )
        encoder = self.context_encoder
        if encoder.beta_standardize is not None:
            if beta_sample is None:
                raise ValueError("a beta-conditioned estimator needs beta_sample")
            features = encoder.raw_beta_features(torch.as_tensor(beta_sample, dtype=torch.float64))
            encoder.beta_standardize.set(*standardization_stats(features.numpy()))
        self.fitted.fill_(True)

    @torch.no_grad()
    def adopt_x_embedding(
        self, embedding: nn.Module, x_standardize: nn.Module, *, trainable: bool
    ) -> None:
        """Read x as another trained network does: its x embedding and standardization.

        For a network whose x embedding has this estimator's configuration, such
        as a ratio estimator trained on the same simulations: the embedding's
        weights and the x standardization (a ``Standardize`` with ``shift``,
        ``scale`` and ``tail``) are copied, and ``set_standardization`` leaves
        x's alone from then on. With ``trainable=False`` the embedding's
        parameters stop requiring gradients: training fits the rest of the
        network only and runs no backward pass through the embedding. Neither
        choice is stored with the weights: apply it again to a rebuilt
        estimator before resuming its training.

        Raises:
            ValueError: this estimator reads x as it is (identity embedding), or
                the two embeddings' parameters differ in names or shapes, or the
                standardizations in width.
        """
        target = self.context_encoder.embedding
        if isinstance(target, nn.Identity):
            raise ValueError("this estimator reads x as it is (identity): no x embedding to adopt")
        mine, theirs = target.state_dict(), embedding.state_dict()
        shapes = {k: tuple(v.shape) for k, v in mine.items()}
        if shapes != {k: tuple(v.shape) for k, v in theirs.items()}:
            raise ValueError(
                "the x embedding to adopt does not match this estimator's: parameters "
                f"{sorted(theirs)} against {sorted(mine)} (built from another embedding "
                "configuration?)"
            )
        standardize = self.context_encoder.x_standardize
        stats = [getattr(x_standardize, name, None) for name in ("shift", "scale", "tail")]
        if any(not torch.is_tensor(v) or v.shape != standardize.shift.shape for v in stats):
            raise ValueError(
                f"the x standardization to adopt must hold shift, scale and tail of shape "
                f"{tuple(standardize.shift.shape)}"
            )
        target.load_state_dict(theirs)
        standardize.set(*(v.detach().cpu().numpy() for v in stats))
        target.requires_grad_(trainable)
        self._x_standardization_adopted = True

    @torch.no_grad()
    def record_beta_range(self, low: float, high: float) -> None:
        """Widen the recorded training range of beta to include [low, high]."""
        current = self.beta_range
        if current is not None:
            low, high = min(low, current[0]), max(high, current[1])
        self.beta_bounds.copy_(torch.tensor([low, high], dtype=torch.float64))

    # -- temperature pieces -------------------------------------------------------------
    @property
    def temperature_cells(self) -> int:
        """Temperature cells served by their own weights (0: one set of weights for all)."""
        return 0 if not self.pieces else int(self.piece_of_cell.shape[0])

    def clear_temperature_pieces(self) -> None:
        """Back to one set of weights (the main ones) for every temperature."""
        self.pieces = nn.ModuleList()
        for name in ("log_edges", "piece_of_cell"):
            self._buffers.pop(name, None)

    def add_temperature_pieces(self, count: int, cells: int) -> None:
        """Make room for ``count`` other weight sets over ``cells`` temperature cells.

        The layout step of ``set_temperature_pieces`` (and of loading a saved
        estimator that has pieces): copies of the current encoder and core,
        and the cell buffers, to be filled by ``load_state_dict``.
        """
        if not self.beta_conditioned:
            raise ValueError("temperature pieces need a beta-conditioned estimator")
        if count < 1 or cells < 2:
            raise ValueError(f"need count >= 1 and cells >= 2, got {count} and {cells}")
        self.pieces = nn.ModuleList(
            _Piece(copy.deepcopy(self.context_encoder), copy.deepcopy(self.core))
            for _ in range(count)
        )
        device = self.device
        # cell c holds the temperatures with log_edges[c - 1] < log(beta) <= log_edges[c]
        self.register_buffer(
            "log_edges", torch.zeros(cells - 1, dtype=torch.float64, device=device)
        )
        self.register_buffer("piece_of_cell", torch.zeros(cells, dtype=torch.long, device=device))

    @torch.no_grad()
    def set_temperature_pieces(
        self, grid: Sequence[float], cell_states: Sequence[dict[str, torch.Tensor] | None]
    ) -> int:
        """Serve each temperature of ``grid`` with its own trained weights.

        Early stopping per temperature: a beta-conditioned network trained on
        many temperatures is often best at different epochs for different
        ones (where the weights leave few effective pairs it overfits early;
        where they leave many it keeps improving). ``cell_states[g]`` is the
        ``state_dict`` of this estimator that was best at ``grid[g]``, or
        ``None`` for the current weights; states given as the same object
        share one piece. A temperature is served by the weights of the nearest
        grid point in log(beta) (cells meet at the geometric midpoints).

        Args:
            grid: increasing positive temperatures, shape (G,), G >= 2.
            cell_states: one entry per grid point.

        Returns:
            the number of weight sets now in use (1 + pieces).
        """
        grid_a = np.asarray(grid, dtype=np.float64)
        if grid_a.ndim != 1 or grid_a.size != len(cell_states) or grid_a.size < 2:
            raise ValueError("need a grid of G >= 2 temperatures and one state per temperature")
        if not (np.all(grid_a > 0) and np.all(np.diff(grid_a) > 0)):
            raise ValueError(f"the grid must be positive and increasing, got {grid_a}")
        self.clear_temperature_pieces()
        distinct: list[dict[str, torch.Tensor]] = []
        piece_of_cell = []
        for state in cell_states:
            if state is None:
                piece_of_cell.append(0)
                continue
            for k, seen in enumerate(distinct):
                if seen is state:
                    piece_of_cell.append(k + 1)
                    break
            else:
                distinct.append(state)
                piece_of_cell.append(len(distinct))
        if not distinct:
            return 1
        self.add_temperature_pieces(len(distinct), grid_a.size)
        for piece, state in zip(self.pieces, distinct, strict=True):
            for name in ("context_encoder", "core"):
                prefix = name + "."
                getattr(piece, name).load_state_dict(
                    {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
                )
        log_grid = np.log(grid_a)
        self.log_edges.copy_(torch.as_tensor(0.5 * (log_grid[1:] + log_grid[:-1])))
        self.piece_of_cell.copy_(torch.as_tensor(piece_of_cell))
        return 1 + len(distinct)

    def _parts(self, beta: torch.Tensor) -> list[tuple[nn.Module, nn.Module, torch.Tensor | None]]:
        """(context encoder, core, rows) serving each group of rows; rows None: all."""
        if not self.pieces:
            return [(self.context_encoder, self.core, None)]
        cell = torch.bucketize(torch.log(beta.to(torch.float64)), self.log_edges)
        piece = self.piece_of_cell[cell]
        out = []
        for k in torch.unique(piece).tolist():
            rows = torch.nonzero(piece == k).squeeze(1)
            owner = self if k == 0 else self.pieces[k - 1]
            out.append((owner.context_encoder, owner.core, rows))
        return out

    def _beta_of(self, context: torch.Tensor) -> torch.Tensor:
        return context[:, self.spec.x_features]

    # -- densities -----------------------------------------------------------------------
    def log_prob(self, inputs: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """log q(inputs | context), including the Jacobian of the fixed transforms.

        Args:
            inputs: shape (b, d).
            context: shape (b, c) (for NPE: ``[x, beta]``).

        Returns:
            shape (b,), float64; ``-inf`` for inputs outside the box.
        """
        if not self.pieces:
            return self._log_prob_features(inputs, self.context_encoder(context))
        out = torch.empty(inputs.shape[0], dtype=torch.float64, device=inputs.device)
        for encoder, core, rows in self._parts(self._beta_of(context)):
            out[rows] = self._log_prob_features(inputs[rows], encoder(context[rows]), core)
        return out

    def log_prob_embedded(self, inputs: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``log_prob`` for a context whose x is already embedded, with the main weights.

        Args:
            inputs: shape (b, d).
            context: shape (b, e + 1): ``context_encoder.embed_x(x)`` (e features)
                and beta in the last column.

        Returns:
            shape (b,), float64.
        """
        if not self.beta_conditioned:
            raise ValueError("log_prob_embedded needs a beta-conditioned estimator")
        h_x = context[:, :-1].to(torch.float32)
        return self._log_prob_features(inputs, self.context_encoder.with_beta(h_x, context[:, -1]))

    def log_prob_at_betas(
        self,
        inputs: torch.Tensor,
        x: torch.Tensor,
        betas: Sequence[float] | np.ndarray,
        *,
        x_embedded: bool = False,
    ) -> torch.Tensor:
        """log q(inputs | x, beta_g) for every temperature of a grid, x embedded once.

        Equal to ``log_prob`` with the context ``[x, beta_g]`` for each g, but
        the embedding of x (the costly part for a stencil) runs once.

        Args:
            inputs: shape (b, d).
            x: shape (b, x_features); with ``x_embedded``, already
                ``context_encoder.embed_x(x)``, shape (b, e), read with the main
                weights (no temperature pieces).
            betas: shape (G,), positive.

        Returns:
            shape (G, b), float64.
        """
        if not self.beta_conditioned:
            raise ValueError("log_prob_at_betas needs a beta-conditioned estimator")
        if x_embedded and self.pieces:
            raise ValueError("an embedded x is read with the main weights alone: no pieces")
        embedded: dict[int, torch.Tensor] = {}  # x embedded once per set of weights
        rows = []
        for beta in betas:
            beta_col = torch.full((x.shape[0],), float(beta), dtype=torch.float64, device=x.device)
            ((encoder, core, _),) = self._parts(beta_col[:1])
            if id(encoder) not in embedded:
                embedded[id(encoder)] = x.to(torch.float32) if x_embedded else encoder.embed_x(x)
            h = encoder.with_beta(embedded[id(encoder)], beta_col)
            rows.append(self._log_prob_features(inputs, h, core))
        return torch.stack(rows)

    def _log_prob_features(
        self, inputs: torch.Tensor, h: torch.Tensor, core: nn.Module | None = None
    ) -> torch.Tensor:
        core = self.core if core is None else core
        inside = self.input_transform.in_support(inputs)
        safe = inputs.to(torch.float64)
        # (traced by torch.compile without the shortcut: the same values, no host sync)
        if self.input_transform.box is not None and (
            torch.compiler.is_compiling() or not bool(inside.all())
        ):
            centre = 0.5 * (self.input_transform.box.low + self.input_transform.box.high)
            safe = torch.where(inside[:, None], safe, centre)
        y, log_det = self.input_transform(safe)
        log_q = core.log_prob(y.to(torch.float32), h).to(torch.float64) + log_det
        return torch.where(inside, log_q, torch.full_like(log_q, -math.inf))

    def _draw_noise(self, m: int, n: int, generator: torch.Generator | None) -> torch.Tensor:
        # Drawn on the CPU, all at once: the same seed gives the same base draws on
        # any device and for any chunk size.
        noise = torch.randn(
            (m, n, self.core.noise_features), generator=generator, dtype=torch.float32
        )
        return noise.to(self.device)

    def sample_and_log_prob(
        self,
        n: int,
        context: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        with_log_prob: bool = True,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Draw ``n`` inputs for each context row, with their log density.

        Args:
            n: samples per context row.
            context: shape (m, c).
            generator: a CPU ``torch.Generator`` (the randomness); ``None`` uses
                torch's global generator.
            with_log_prob: compute log q of the draws (free for flows).
            chunk_rows: at most this many rows go through the network at once;
                results do not depend on it.

        Returns:
            ``inputs`` (m, n, d) float64, inside the box; log q (m, n) float64
            or ``None``.
        """
        m = context.shape[0]
        noise = self._draw_noise(m, n, generator)
        if not self.pieces:
            return self._sample_rows(
                noise, self.context_encoder(context), self.core, with_log_prob, chunk_rows
            )
        out = torch.empty((m, n, self.inputs_features), dtype=torch.float64, device=self.device)
        log_q = (
            torch.empty((m, n), dtype=torch.float64, device=self.device) if with_log_prob else None
        )
        for encoder, core, rows in self._parts(self._beta_of(context)):
            part, part_log_q = self._sample_rows(
                noise[rows], encoder(context[rows]), core, with_log_prob, chunk_rows
            )
            out[rows] = part
            if log_q is not None and part_log_q is not None:
                log_q[rows] = part_log_q
        return out, log_q

    def _sample_rows(
        self,
        noise: torch.Tensor,
        h: torch.Tensor,
        core: nn.Module,
        with_log_prob: bool,
        chunk_rows: int,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Push base noise (m, n, k) through ``core`` given features h (m, e), in chunks."""
        m, n, d = noise.shape[0], noise.shape[1], self.inputs_features
        out = torch.empty((m, n, d), dtype=torch.float64, device=self.device)
        log_q = (
            torch.empty((m, n), dtype=torch.float64, device=self.device) if with_log_prob else None
        )
        for (i0, i1), (j0, j1) in _blocks(m, n, chunk_rows):
            y, lq = core.sample_from_noise(noise[i0:i1, j0:j1], h[i0:i1], with_log_prob)
            inputs, log_det = self.input_transform.inverse(y.reshape(-1, d))
            out[i0:i1, j0:j1] = inputs.reshape(i1 - i0, j1 - j0, d)
            if log_q is not None and lq is not None:
                log_q[i0:i1, j0:j1] = lq.to(torch.float64) + log_det.reshape(i1 - i0, j1 - j0)
        return out, log_q

    def sample(
        self,
        n: int,
        context: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> torch.Tensor:
        """Draw ``n`` inputs for each context row: context (m, c) -> (m, n, d) float64."""
        return self.sample_and_log_prob(
            n, context, generator, with_log_prob=False, chunk_rows=chunk_rows
        )[0]


def _blocks(m: int, n: int, chunk_rows: int):
    """(observation slice, sample slice) pairs covering an (m, n) grid in chunks."""
    chunk_rows = max(1, int(chunk_rows))
    if n >= chunk_rows:
        for i in range(m):
            for j in range(0, n, chunk_rows):
                yield (i, i + 1), (j, min(n, j + chunk_rows))
    else:
        per = max(1, chunk_rows // n)
        for i in range(0, m, per):
            yield (i, min(m, i + per)), (0, n)


def build_estimator(
    spec: EstimatorSpec, embedding_net: nn.Module | None = None, *, seed: int = 0
) -> ConditionalDensityEstimator:
    """Build an estimator from its spec, with weights initialized from ``seed``.

    The initialization uses a forked torch RNG, so global random state is left
    untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ConditionalDensityEstimator(spec, embedding_net)


def _embedding_config(
    embedding: EmbeddingConfig | nn.Module, x_features: int
) -> tuple[EmbeddingConfig, nn.Module | None]:
    if isinstance(embedding, nn.Module):
        features = custom_output_features(embedding, x_features)
        name = f"{type(embedding).__module__}.{type(embedding).__qualname__}"
        return EmbeddingConfig(kind="custom", output_features=features, module_name=name), embedding
    if not isinstance(embedding, EmbeddingConfig):
        raise ValueError(
            f"embedding must be an EmbeddingConfig or a torch.nn.Module, got {type(embedding)}"
        )
    if embedding.kind == "custom":
        raise ValueError("for a custom embedding, pass the torch.nn.Module itself as embedding=")
    return embedding, None


def _box(
    low: np.ndarray | None, high: np.ndarray | None
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    if low is None and high is None:
        return None, None
    if low is None or high is None:
        raise ValueError("low and high must be given together (a box prior) or both omitted")
    low_a = np.atleast_1d(np.asarray(low, dtype=np.float64))
    high_a = np.atleast_1d(np.asarray(high, dtype=np.float64))
    return tuple(low_a.tolist()), tuple(high_a.tolist())


def make_npe(
    theta_dim: int,
    x_dim: int,
    *,
    density: DensityConfig | None = None,
    embedding: EmbeddingConfig | nn.Module | None = None,
    beta_features: tuple[str, ...] = ("log_beta", "beta"),
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    seed: int = 0,
) -> ConditionalDensityEstimator:
    """A beta-conditioned posterior estimator q(theta | x, beta).

    Args:
        theta_dim: dimension of theta.
        x_dim: dimension of x.
        density: ``SplineFlowConfig()`` (default) or ``MDNConfig()``.
        embedding: ``EmbeddingConfig()`` (identity, default), an MLP config, or a
            ``torch.nn.Module`` mapping (b, x_dim) float32 to (b, e). A custom
            module is trained with the rest; its weights are saved, its code is
            not: pass it again (freshly built) to ``load_estimator``.
        beta_features: features of beta fed to the network.
        low: box prior lower corner, shape (theta_dim,) (``None``: unbounded).
        high: box prior upper corner, shape (theta_dim,).
        seed: weight initialization seed.

    Example:
        >>> npe = make_npe(2, 3, low=[-1, -1], high=[1, 1])
        >>> npe.context_features  # x and beta
        4
    """
    embedding_config, module = _embedding_config(embedding or EmbeddingConfig(), x_dim)
    box_low, box_high = _box(low, high)
    spec = EstimatorSpec(
        inputs_features=theta_dim,
        context_features=x_dim + 1,
        density=density or SplineFlowConfig(),
        embedding=embedding_config,
        beta_features=tuple(beta_features),
        low=box_low,
        high=box_high,
    )
    if not spec.beta_features:
        raise ValueError("make_npe needs at least one beta feature (e.g. ('log_beta',))")
    return build_estimator(spec, module, seed=seed)


def make_conditional_estimator(
    inputs_dim: int,
    context_dim: int,
    *,
    density: DensityConfig | None = None,
    embedding: EmbeddingConfig | nn.Module | None = None,
    low: np.ndarray | None = None,
    high: np.ndarray | None = None,
    seed: int = 0,
) -> ConditionalDensityEstimator:
    """A generic estimator q(inputs | context), e.g. an NLE q(x | theta).

    Inputs without a box (``low = high = None``) are modelled on R^d with no
    bijection. Arguments as in ``make_npe``; the embedding applies to the
    whole context.
    """
    embedding_config, module = _embedding_config(embedding or EmbeddingConfig(), context_dim)
    box_low, box_high = _box(low, high)
    spec = EstimatorSpec(
        inputs_features=inputs_dim,
        context_features=context_dim,
        density=density or SplineFlowConfig(),
        embedding=embedding_config,
        low=box_low,
        high=box_high,
    )
    return build_estimator(spec, module, seed=seed)
